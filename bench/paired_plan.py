"""The run's comparison groups: every relative figure of a run from the paired design.

After the isolated cells (which keep every absolute figure: percentiles, throughput, memory, the gate), each
(model, runtime with its options, profile, scenario) whose cells measured two or more variants becomes one
comparison group (bench/paired_cell.py): all its variants in each process, taking turns (core/paired.py). The
speedups vs fp32 and vs the parent variant come from these groups (report/paired_figures.py). Variants on two
runtimes never share a process (they interfere: docs/paired.md), so the speedup vs ONNX Runtime stays with the
isolated design, and the table says so.

The groups' processes are interleaved in a seeded random order, like the cells' (Kalibera & Jones 2013), and
each group is stored after each of its processes, so an interrupted run resumes.
"""
from __future__ import annotations

import random
from typing import Callable

from odbench.bench import paired_run
from odbench.core.paired import PairedMember, PairedResult, PairedSpec
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, CellSpec, Result, Verdict

# Paired processes per group, by timing preset: the simulation (verdicts/paired_simulation.py) sizes compare's
# looks; a run's figures are intervals, not verdicts, and 5 processes keep `make run` within its budget.
# 8: the signed-rank interval (stats/paired.py) needs >= 6 processes to reach 95% at all; 8 leave it a little room
PAIRED_PROCESSES = {"smoke": 0, "default": 8, "gate": 16}
# Per process: 0.5 s warm-up, then rounds for 1-2 s (at least 100 rounds unless 2 s runs out).
PAIRED_TIMING = dict(warmup_s=0.5, min_rounds=100, min_time_s=1.0, max_time_s=2.0)


def _group_key(c: CellSpec) -> tuple:
    return (c.model, c.runtime, tuple(sorted(c.runtime_options.items())), c.profile_name, c.scenario)


def plan_groups(cells: list[CellSpec], results: dict[str, Result], seed: int = 0) -> list[PairedSpec]:
    """One PairedSpec per (model, runtime + options, profile, scenario) with >= 2 measured variants."""
    groups: dict[tuple, list[CellSpec]] = {}
    for c in cells:
        r = results.get(c.cell_id)
        if c.runtime in HARNESS_RUNTIMES or c.measured_on == "functional-emulation" or r is None or r.verdict in NOT_MEASURED:
            continue
        groups.setdefault(_group_key(c), []).append(c)
    specs = []
    for members in groups.values():
        if len({c.variant_id for c in members}) < 2:
            continue
        first = members[0]
        specs.append(PairedSpec(
            model=first.model, scenario=first.scenario, profile=first.profile,
            members=tuple(PairedMember(c.variant_id, c.variant_path, c.variant_sha256, c.runtime, dict(c.runtime_options))
                          for c in members),
            feeds=first.feeds, items_per_inference=first.items_per_inference, seed=seed,
            timeout_s=max(first.timeout_s, 120.0 + 30.0 * len(members)), **PAIRED_TIMING))
    return specs


def run_groups(specs: list[PairedSpec], run_dir, processes: int, seed: int = 0,
               log: Callable[[str], None] = print) -> list[PairedResult]:
    """``processes`` processes per group, interleaved in a seeded order; resumes from what is stored."""
    stored = {r.group_id: r for r in paired_run.load_all(run_dir)}
    results: dict[str, PairedResult] = {}
    for s in specs:
        prior = stored.get(s.group_id)
        results[s.group_id] = prior if prior is not None and prior.spec == s else PairedResult(s, Verdict.OK)
    order = [(s.group_id, k) for s in specs for k in range(1, processes + 1)]
    random.Random(seed).shuffle(order)
    by_id = {s.group_id: s for s in specs}
    for gid, k in order:
        res = results[gid]
        if res.verdict != Verdict.OK or any(p.index == k for p in res.processes):
            continue
        try:
            part = paired_run.run_paired_process(by_id[gid], k)
            res = res.replace(processes=res.processes + (part,), finished_at=part.started_at)
        except paired_run.ProcessFailed as exc:
            res = res.replace(verdict=exc.verdict, reason=str(exc))
        results[gid] = res
        paired_run.save(run_dir, res)
        log(f"  paired {res.verdict} {gid} process {k}/{processes}" + (f": {res.reason[:160]}" if res.reason else ""))
    return [results[s.group_id] for s in specs]


