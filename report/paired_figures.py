"""The table's relative figures from the paired design (bench/paired_plan.py), with the isolated ones beside.

A speedup between two variants that shared comparison processes is the paired one: the inverse of the geometric
mean of per-process ratios of medians, with Student's t across processes (stats/paired.py). Otherwise (no group,
two runtimes) it is the isolated one: the ratio of two sets of separate processes (Welch). ``*_design`` says which.
``paired_p50_ms`` is the member's median in the paired processes; ``pairing_cost`` its ratio to the isolated
median minus 1 (what sharing a process with the other members cost it).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from odbench.bench import paired_run
from odbench.core.paired import PairedResult
from odbench.core.records import Result, Verdict
from odbench.stats import paired

PAIRED_COLUMNS = ["speedup_vs_fp32_design", "speedup_vs_fp32_isolated", "speedup_vs_fp32_isolated_lo", "speedup_vs_fp32_isolated_hi",
                  "speedup_vs_parent", "speedup_vs_parent_lo", "speedup_vs_parent_hi", "speedup_vs_ort_design",
                  "paired_processes", "paired_p50_ms", "pairing_cost"]


def _key(variant_id: str, r: Result) -> tuple:
    return (variant_id, r.runtime, tuple(sorted(r.runtime_options.items())), r.profile, r.scenario)


def load_index(run_dir: Path) -> dict[tuple, tuple[PairedResult, str]]:
    """(variant, runtime, options, profile, scenario) -> (its group's result, its member key), measured groups only."""
    out = {}
    for res in paired_run.load_all(run_dir):
        if res.verdict != Verdict.OK or len(res.processes) < 2:
            continue
        where = (res.spec.profile.get("name"), res.spec.scenario)
        for m in res.spec.members:
            out[(m.variant_id, m.runtime, tuple(sorted(m.runtime_options.items())), *where)] = (res, m.key)
    return out


def paired_effect(index: dict, base_variant: str, r: Result) -> paired.Effect | None:
    """cand (r) / base time in the processes both shared; None when they shared none."""
    a, b = index.get(_key(base_variant, r)), index.get(_key(r.variant_id, r))
    if a is None or b is None or a[0] is not b[0] or a[1] == b[1]:
        return None
    ratios = [paired.log_ratio(p.samples_ms[a[1]], p.samples_ms[b[1]]) for p in a[0].processes
              if a[1] in p.samples_ms and b[1] in p.samples_ms]
    return paired.decide(ratios) if len(ratios) >= 2 else None


def _f(v: float | None) -> str:
    return "" if v is None or v != v else f"{v:.3g}"


def columns(r: Result, root: str, parent: str | None, index: dict, isolated) -> dict[str, str]:
    """The speedup columns (overriding the isolated ones where the pair was measured paired) and PAIRED_COLUMNS."""
    out = {c: "" for c in PAIRED_COLUMNS}
    if isolated is not None:
        out.update(speedup_vs_fp32_isolated=_f(isolated.ratio), speedup_vs_fp32_isolated_lo=_f(isolated.lo),
                   speedup_vs_fp32_isolated_hi=_f(isolated.hi), speedup_vs_fp32_design="isolated")
        out["speedup_vs_fp32 [95% CI]"] = f"{_f(isolated.ratio)} [{_f(isolated.lo)}, {_f(isolated.hi)}] isolated"
    e = paired_effect(index, root, r)
    if e is not None:
        s, lo, hi = e.speedup
        out.update({"speedup_vs_fp32": _f(s), "speedup_vs_fp32_lo": _f(lo), "speedup_vs_fp32_hi": _f(hi),
                    "speedup_vs_fp32_design": "paired", "speedup_vs_fp32 [95% CI]": f"{_f(s)} [{_f(lo)}, {_f(hi)}] paired"})
    pe = paired_effect(index, parent, r) if parent else None
    if pe is not None:
        s, lo, hi = pe.speedup
        out.update(speedup_vs_parent=_f(s), speedup_vs_parent_lo=_f(lo), speedup_vs_parent_hi=_f(hi))
    mine = index.get(_key(r.variant_id, r))
    if mine is not None:
        meds = [float(np.median(p.samples_ms[mine[1]])) for p in mine[0].processes if mine[1] in p.samples_ms]
        geo = float(np.exp(np.mean(np.log(meds))))
        out.update(paired_processes=str(len(meds)), paired_p50_ms=_f(geo))
        iso = r.process_medians_ms
        if iso:
            out["pairing_cost"] = f"{geo / math.exp(float(np.mean(np.log(iso)))) - 1:+.1%}"
    out["speedup_vs_ort_design"] = "isolated"
    return out
