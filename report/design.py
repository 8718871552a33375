"""The run design, taken from measurement (Kalibera & Jones, ISMM 2013), and run-to-run agreement.

``variance_rows`` splits each measured cell's log-latency variance into within- and between-process
parts and gives Kalibera & Jones's cost-optimal samples per process for it; ``standardized_rows``
tests the intervals on two runs of the same matrix: each cell's difference between the runs (p50,
speedup vs fp32 from isolated processes, and the paired speedup where the run has comparison groups),
scaled by both runs' standard errors, should follow Student's t; ``agreement`` gives the fraction
within its 95% band and the Kolmogorov-Smirnov distance of the whole set.
``odbench design RUN [RUN2]`` prints both as Markdown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as sps

from odbench.bench.run_folder import RunFolder
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, lineage_root
from odbench.report import paired_figures
from odbench.report.tables import cell_key, speedup
from odbench.stats import intervals


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
                                intervals.cost_optimal_samples(within, between, process_cost, sample_ms / 1e3)
                                if process_cost == process_cost else 0))
    return rows


@dataclass(frozen=True)
class Standardized:
    """One cell's estimate in two runs, its difference scaled by both runs' standard errors.

    ``t`` = (log x1 - log x2) / sqrt(se1^2 + se2^2), each se read off its run's 95% interval as
    half-width / t(0.975, df); if the intervals are right, ``t`` follows Student's t on the Welch df
    ``df`` and ``u`` (its probability integral transform) is uniform. One run's interval containing
    the other's point is no such test: with 5 processes it happens about 88% of the time even for
    exact intervals."""

    cell_id: str
    what: str  # "p50", "speedup" (isolated processes) or "paired speedup"
    x1: float
    x2: float
    t: float
    df: float

    @property
    def u(self) -> float:
        return float(sps.t.cdf(self.t, self.df))

    @property
    def within(self) -> bool:
        return abs(self.t) <= float(sps.t.ppf(0.975, self.df))


def _se(lo: float, hi: float, df: float) -> float:
    return (math.log(hi) - math.log(lo)) / (2 * float(sps.t.ppf(0.975, df)))


def _standardize(cell_id: str, what: str, x1: float, se1: float, k1: float, x2: float, se2: float, k2: float) -> Standardized | None:
    if not all(map(math.isfinite, (x1, x2, se1, se2))) or se1 <= 0 or se2 <= 0 or min(k1, k2) < 2:
        return None
    v1, v2 = se1**2, se2**2
    df = (v1 + v2) ** 2 / (v1**2 / (k1 - 1) + v2**2 / (k2 - 1))
    return Standardized(cell_id, what, x1, x2, (math.log(x1) - math.log(x2)) / math.sqrt(v1 + v2), df)


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


def _paired_speedups(run: Path) -> dict[str, tuple[float, float, float, int]]:
    """cell -> (paired speedup over its fp32 root, lo, hi, processes), for cells whose group shared processes."""
    folder = RunFolder.open(run)
    results, variants, index = folder.results(), folder.variants(), paired_figures.load_index(Path(run))
    out = {}
    for r in measured(results):
        root = lineage_root(r.variant_id, variants)
        e = paired_figures.paired_effect(index, root, r) if root != r.variant_id else None
        if e is not None:
            out[r.cell_id] = (*e.speedup, e.k)
    return out


def standardized_rows(run1: Path, run2: Path) -> list[Standardized]:
    """Every cell measured in both runs: its p50, and its speedup over its fp32 baseline where it has one, from
    isolated processes and from the paired design (its Hodges-Lehmann interval read as a t interval on k-1 df)."""
    one = {r.cell_id: r for r in measured(RunFolder.open(run1).results())}
    two = {r.cell_id: r for r in measured(RunFolder.open(run2).results())}
    s1, s2 = _speedups(run1), _speedups(run2)
    p1, p2 = _paired_speedups(run1), _paired_speedups(run2)
    rows = []
    for cid in sorted(one.keys() & two.keys()):
        a, b = one[cid].process_samples, two[cid].process_samples  # the intervals as this code computes them now
        (x1, lo1, hi1), (x2, lo2, hi2) = intervals.percentile_interval(a, 50), intervals.percentile_interval(b, 50)
        rows.append(_standardize(cid, "p50", x1, _se(lo1, hi1, len(a) - 1), len(a), x2, _se(lo2, hi2, len(b) - 1), len(b)))
        if cid in s1 and cid in s2:
            r1, r2 = s1[cid], s2[cid]
            rows.append(_standardize(cid, "speedup", r1.ratio, _se(r1.lo, r1.hi, r1.df), r1.df + 1,
                                     r2.ratio, _se(r2.lo, r2.hi, r2.df), r2.df + 1))
        if cid in p1 and cid in p2:
            (x1, lo1, hi1, k1), (x2, lo2, hi2, k2) = p1[cid], p2[cid]
            rows.append(_standardize(cid, "paired speedup", x1, _se(lo1, hi1, k1 - 1), k1, x2, _se(lo2, hi2, k2 - 1), k2))
    return [r for r in rows if r is not None]


@dataclass(frozen=True)
class Agreement:
    what: str
    n: int
    within: int  # |t| under its 97.5% point: expected 95% of n
    within_lo: float  # 95% Clopper-Pearson interval of the fraction
    within_hi: float
    ks: float  # Kolmogorov-Smirnov distance of the u's from uniform
    ks_p: float


def agreement(rows: list[Standardized], what: str) -> Agreement | None:
    sel = [r for r in rows if r.what == what]
    if not sel:
        return None
    n, k = len(sel), sum(r.within for r in sel)
    ci = sps.binomtest(k, n).proportion_ci(0.95, method="exact")
    ks = sps.kstest([r.u for r in sel], "uniform")
    return Agreement(what, n, k, float(ci.low), float(ci.high), float(ks.statistic), float(ks.pvalue))


def design_markdown(run1: Path, run2: Path | None = None) -> str:
    """`odbench design RUN [RUN2]`: the variance split and, with RUN2, the run-to-run agreement, as Markdown."""
    out: list[str] = []
    run1 = Path(run1)
    out.append("| cell | processes | samples/process | within sd (log) | between sd (log) | ms/sample | s/process besides samples | "
               "optimal samples/process |")
    out.append("|---|---|---|---|---|---|---|---|")
    for v in variance_rows(RunFolder.open(run1).results()):
        out.append(f"| `{v.cell_id}` | {v.processes} | {v.samples_per_process:.0f} | {v.within_sd:.3f} | {v.between_sd:.3f} | "
              f"{v.sample_ms:.3f} | {v.process_cost_s:.2f} | {v.optimal_samples if v.optimal_samples < 10**8 else 'any'} |")
    if run2 is not None:
        rows = standardized_rows(run1, Path(run2))
        out.append("\n| cell | estimate | run 1 | run 2 | standardized difference t | Welch df | within ±t(0.975) |")
        out.append("|---|---|---|---|---|---|---|")
        for r in rows:
            out.append(f"| `{r.cell_id}` | {r.what} | {r.x1:.4g} | {r.x2:.4g} | {r.t:+.2f} | {r.df:.1f} | {r.within} |")
        for what in ("p50", "speedup", "paired speedup"):
            a = agreement(rows, what)
            if a:
                out.append(f"\n{what}: {a.within}/{a.n} within ±t(0.975, df) (expected 95%; 95% CI of the fraction "
                           f"[{a.within_lo:.0%}, {a.within_hi:.0%}]); KS distance of t's CDF values from uniform {a.ks:.3f} "
                           f"(p = {a.ks_p:.2g})")
    return "\n".join(out)
