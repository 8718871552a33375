"""Run until decided: resample INCONCLUSIVE cells with the samples the gate asked for, up to a bound."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from bench.executors.local import run_cell
from bench.gate import CellVerdict
from bench.store import ResultStore


def resample(store: ResultStore, verdicts: list[CellVerdict], max_samples: int, max_time_s: float,
             on_result: Callable | None = None) -> int:
    """Rerun each INCONCLUSIVE cell that needs more samples; returns how many were rerun."""
    need: dict[str, int] = {}
    for v in verdicts:
        if v.verdict == "INCONCLUSIVE":
            more = max((c.more_samples for c in v.checks), default=0)
            if more:
                need[v.cell_id] = max(need.get(v.cell_id, 0), more)
    rerun = 0
    for cell_id, more in need.items():
        old = store.get(cell_id)
        spec = store.get_spec(cell_id)
        target = min(max_samples, math.ceil((old.n_samples + more) * 1.2))
        if target <= old.n_samples:
            continue
        per_sample_s = (old.stats.get("mean", 1.0) or 1.0) / 1e3
        timing = dataclasses.replace(
            spec.timing, min_samples=target, max_samples=max(spec.timing.max_samples, target), min_time_s=min(spec.timing.min_time_s, max_time_s),
            max_time_s=min(max_time_s, max(spec.timing.max_time_s, target * per_sample_s * 1.3)),
        )
        spec = dataclasses.replace(spec, timing=timing, timeout_s=spec.timeout_s + timing.max_time_s)
        store.put_spec(spec)
        result = run_cell(spec)
        store.put(result)
        rerun += 1
        if on_result:
            on_result(result)
    return rerun
