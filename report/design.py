"""The run design, taken from measurement (Kalibera & Jones, ISMM 2013), and run-to-run agreement.

``variance_rows`` splits each measured cell's log-latency variance into within- and between-process
parts and gives Kalibera & Jones's cost-optimal samples per process for it; ``agreement_rows`` asks,
for two runs of the same matrix, whether run 1's 95% intervals (p50, speedup vs fp32) contain run 2's
point estimates. ``odbench design RUN [RUN2]`` prints both as Markdown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odbench.stats import intervals
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, lineage_root
from odbench.bench.run_folder import RunFolder
from odbench.report.tables import cell_key, speedup


@dataclass(frozen=True)
class VarianceRow:
    cell_id: str
    processes: int
    samples_per_process: float
    within_sd: float  # log scale: ~ the CV of one sample within a process
    between_sd: float  # log scale: ~ the CV of the process means beyond what within explains
    sample_ms: float
    process_cost_s: float
    optimal_samples: int


def measured(results: list[Result]) -> list[Result]:
    return [r for r in results if r.verdict not in NOT_MEASURED and r.runtime not in HARNESS_RUNTIMES and len(r.process_samples) >= 2]


def variance_rows(results: list[Result]) -> list[VarianceRow]:
    rows = []
    for r in measured(results):
        within, between = intervals.variance_components(r.process_samples)
        per = [p for p in r.processes if p.samples_ms]
        sample_ms = float(np.mean(r.samples_ms))
        walls = [p.wall_s - p.measure_s for p in per if p.wall_s]
        process_cost = float(np.mean(walls)) if walls else math.nan  # start-up, imports, session, warm-up, parity
        rows.append(VarianceRow(r.cell_id, len(per), float(np.mean([len(p.samples_ms) for p in per])), math.sqrt(within),
                                math.sqrt(between), sample_ms, process_cost,
                                intervals.cost_optimal_samples(within, between, process_cost, sample_ms / 1e3) if process_cost == process_cost else 0))
    return rows


@dataclass(frozen=True)
class AgreementRow:
    cell_id: str
    p50_1: float
    p50_lo: float
    p50_hi: float
    p50_2: float
    speedup_1: tuple[float, float, float] | None
    speedup_2: float | None

    @property
    def p50_covered(self) -> bool:
        return self.p50_lo <= self.p50_2 <= self.p50_hi

    @property
    def speedup_covered(self) -> bool | None:
        if self.speedup_1 is None or self.speedup_2 is None:
            return None
        return self.speedup_1[1] <= self.speedup_2 <= self.speedup_1[2]


def _speedups(run: Path) -> dict[str, intervals.Ratio]:
    folder = RunFolder.open(run)
    results, variants = folder.results(), folder.variants()
    by_key = {cell_key(r.variant_id, r): r for r in results}
    out = {}
    for r in measured(results):
        s = speedup(by_key.get(cell_key(lineage_root(r.variant_id, variants), r)), r)
        if s is not None:
            out[r.cell_id] = s
    return out


def agreement_rows(run1: Path, run2: Path) -> list[AgreementRow]:
    one = {r.cell_id: r for r in measured(RunFolder.open(run1).results())}
    two = {r.cell_id: r for r in measured(RunFolder.open(run2).results())}
    s1, s2 = _speedups(run1), _speedups(run2)
    rows = []
    for cid in sorted(one.keys() & two.keys()):
        a, b = one[cid].stats, two[cid].stats
        sp1 = (s1[cid].ratio, s1[cid].lo, s1[cid].hi) if cid in s1 else None
        rows.append(AgreementRow(cid, a["p50"], a["p50_lo"], a["p50_hi"], b["p50"], sp1, s2[cid].ratio if cid in s2 else None))
    return rows


def design_markdown(run1: Path, run2: Path | None = None) -> str:
    """`odbench design RUN [RUN2]`: the variance split and, with RUN2, the run-to-run agreement, as Markdown."""
    out: list[str] = []
    run1 = Path(run1)
    out.append("| cell | processes | samples/process | within sd (log) | between sd (log) | ms/sample | s/process besides samples | optimal samples/process |")
    out.append("|---|---|---|---|---|---|---|---|")
    for v in variance_rows(RunFolder.open(run1).results()):
        out.append(f"| `{v.cell_id}` | {v.processes} | {v.samples_per_process:.0f} | {v.within_sd:.3f} | {v.between_sd:.3f} | "
              f"{v.sample_ms:.3f} | {v.process_cost_s:.2f} | {v.optimal_samples if v.optimal_samples < 10**8 else 'any'} |")
    if run2 is not None:
        rows = agreement_rows(run1, Path(run2))
        out.append("\n| cell | run 1 p50 [95% CI] | run 2 p50 | covered | run 1 speedup [95% CI] | run 2 speedup | covered |")
        out.append("|---|---|---|---|---|---|---|")
        for a in rows:
            sp = f"{a.speedup_1[0]:.3f} [{a.speedup_1[1]:.3f}, {a.speedup_1[2]:.3f}]" if a.speedup_1 else ""
            out.append(f"| `{a.cell_id}` | {a.p50_1:.4g} [{a.p50_lo:.4g}, {a.p50_hi:.4g}] | {a.p50_2:.4g} | {a.p50_covered} | {sp} | "
                  f"{'' if a.speedup_2 is None else f'{a.speedup_2:.3f}'} | {'' if a.speedup_covered is None else a.speedup_covered} |")
        p50 = [a.p50_covered for a in rows]
        sp = [a.speedup_covered for a in rows if a.speedup_covered is not None]
        out.append(f"\np50 coverage: {sum(p50)}/{len(p50)} = {np.mean(p50):.0%}; speedup coverage: {sum(sp)}/{len(sp)} = "
              f"{np.mean(sp) if sp else float('nan'):.0%}")
    return "\n".join(out)
