"""Run until decided, without optional stopping: add a batch of fresh processes to each INCONCLUSIVE
cell and judge again. Each batch is a new look that the gate judges at half the error rate of the
previous one (verdicts/gate.py ``look_confidence``), so the rate summed over all looks stays the stated
one however many batches are added; a cell is never simply rerun until it passes."""
from __future__ import annotations

from typing import Callable

from odbench.bench.executors.local import merge_processes, run_process
from odbench.verdicts.gate import CellVerdict, GateVerdict
from odbench.core.records import NOT_MEASURED
from odbench.bench.run_folder import RunFolder

MAX_LOOKS = 4


def extend(store: RunFolder, verdicts: list[CellVerdict], max_processes: int, on_result: Callable | None = None) -> int:
    """Add processes to every INCONCLUSIVE cell whose checks say how many would decide it; returns
    how many cells were extended. ``max_processes`` caps the processes a cell may have in all."""
    want: dict[str, int] = {}
    for v in verdicts:
        if v.verdict == GateVerdict.INCONCLUSIVE:
            more = max((c.more_samples for c in v.checks), default=0)
            if more:
                want[v.cell_id] = max(want.get(v.cell_id, 0), more)
    extended = 0
    for cell_id, more in want.items():
        prior = store.get(cell_id)
        have = len(prior.processes)
        add = min(more, max_processes - have)
        if add <= 0 or prior.looks >= MAX_LOOKS:
            continue
        spec = store.get_spec(cell_id)
        parts = []
        for k in range(have + 1, have + add + 1):
            part = run_process(spec, k)
            parts.append(part)
            if part.verdict in NOT_MEASURED:
                break
        result = merge_processes(spec, parts, prior=prior)
        store.put(result)
        extended += 1
        if on_result:
            on_result(result)
    return extended
