"""The paired design's figures for the tables (bench/paired_plan.py stores the groups under RUN/paired/).

``lookup`` is report/tables.py's ``PairedLookup``: a speedup between two variants that shared comparison
processes is the inverse of the Hodges-Lehmann estimate over the per-process log ratios of medians, with the
signed-rank interval across processes (stats/paired.py; 6 processes at least for a 95% interval);
``speedup_of`` falls back to the isolated figure for any other pair (two runtimes, no group).
``extra_columns`` keeps the isolated figure beside it in the CSV, adds the speedup vs the parent variant, and
each member's ``paired_p50_ms`` and ``pairing_cost`` (its paired median over its isolated median, minus 1:
what sharing a process with the other members cost it).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from odbench.bench import paired_run
from odbench.core.paired import PairedResult
from odbench.core.records import HARNESS_RUNTIMES, Result, Variant, Verdict
from odbench.stats import paired

EXTRA_COLUMNS = ["speedup_vs_fp32_isolated", "speedup_vs_fp32_isolated_lo", "speedup_vs_fp32_isolated_hi",
                 "speedup_vs_parent", "speedup_vs_parent_lo", "speedup_vs_parent_hi", "speedup_vs_ort_design",
                 "paired_processes", "paired_p50_ms", "pairing_cost"]

Index = dict[tuple, tuple[PairedResult, str]]


def _key(variant_id: str, r: Result) -> tuple:
    return (variant_id, r.runtime, tuple(sorted(r.runtime_options.items())), r.profile, r.scenario)


def load_index(run_dir: Path) -> Index:
    """(variant, runtime, options, profile, scenario) -> (its group's result, its member key), measured groups only."""
    out = {}
    for res in paired_run.load_all(run_dir):
        if res.verdict != Verdict.OK or len(res.processes) < 2:
            continue
        where = (res.spec.profile.get("name"), res.spec.scenario)
        for m in res.spec.members:
            out[(m.variant_id, m.runtime, tuple(sorted(m.runtime_options.items())), *where)] = (res, m.key)
    return out


def paired_effect(index: Index, base_variant: str, r: Result) -> paired.Effect | None:
    """cand (r) / base time in the processes both shared; None when they shared none."""
    a, b = index.get(_key(base_variant, r)), index.get(_key(r.variant_id, r))
    if a is None or b is None or a[0] is not b[0] or a[1] == b[1]:
        return None
    ratios = [paired.log_ratio(p.samples_ms[a[1]], p.samples_ms[b[1]]) for p in a[0].processes
              if a[1] in p.samples_ms and b[1] in p.samples_ms]
    if len(ratios) < 2:
        return None
    try:
        return paired.decide(ratios)
    except ValueError as exc:  # a zero or NaN sample: the row keeps the isolated figure, and says why on stderr
        print(f"[paired] {r.variant_id} vs {base_variant}: {exc}; the isolated figure is shown", file=sys.stderr)
        return None


def lookup(index: Index):
    """report/tables.PairedLookup over ``index``: (base variant id, cell) -> (speedup, lo, hi) or None."""

    def speedup(base_variant: str, r: Result):
        e = paired_effect(index, base_variant, r)
        return e.speedup if e is not None else None

    return speedup


def _f(v: float | None) -> str:
    return "" if v is None or v != v else f"{v:.3g}"


def extra_columns(r: Result, variants: dict[str, Variant], index: Index, isolated) -> dict[str, str]:
    """EXTRA_COLUMNS of one row; ``isolated``: the isolated speedup vs fp32 (stats/intervals.Ratio) or None."""
    out = {c: "" for c in EXTRA_COLUMNS}
    if r.runtime in HARNESS_RUNTIMES:
        return out
    if isolated is not None:
        out.update(speedup_vs_fp32_isolated=_f(isolated.ratio), speedup_vs_fp32_isolated_lo=_f(isolated.lo),
                   speedup_vs_fp32_isolated_hi=_f(isolated.hi))
    v = variants.get(r.variant_id)
    pe = paired_effect(index, v.parent, r) if v is not None and v.parent else None
    if pe is not None:
        s, lo, hi = pe.speedup
        out.update(speedup_vs_parent=_f(s), speedup_vs_parent_lo=_f(lo), speedup_vs_parent_hi=_f(hi))
    mine = index.get(_key(r.variant_id, r))
    if mine is not None:
        meds = [float(np.median(p.samples_ms[mine[1]])) for p in mine[0].processes if mine[1] in p.samples_ms]
        geo = float(np.exp(np.mean(np.log(meds))))
        out.update(paired_processes=str(len(meds)), paired_p50_ms=_f(geo))
        if r.process_medians_ms:
            out["pairing_cost"] = f"{geo / math.exp(float(np.mean(np.log(r.process_medians_ms)))) - 1:+.1%}"
    out["speedup_vs_ort_design"] = "isolated"  # two runtimes never share a comparison process (docs/paired.md)
    return out
