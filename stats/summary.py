"""A cell's statistics, computed in one place from its processes (stats/intervals.py for the intervals).

Every percentile is the population's (each process weighs the same) with its 95% interval, the
process being the unit of replication; throughput is the geometric mean of the per-process
throughputs with its interval; ``between_cv`` is the between-process CV of the medians with its
interval; ``cv`` and the pyperf-style warnings describe the spread within processes.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from odbench.stats import intervals

PERCENTILES = (50, 90, 95, 99)
LEVEL = 0.95  # the level of every interval a table or report shows


def summarize(processes: Sequence[Sequence[float]], items_per_inference: int = 1) -> dict[str, float]:
    """p50..p99 with ``_lo``/``_hi``, mean, within-process cv, min, max, between_cv, throughput (items/s)."""
    procs = [np.asarray(p, dtype=np.float64) for p in processes if len(p)]
    if not procs:
        raise ValueError("no samples")
    f = intervals.fit(procs)
    out: dict[str, float] = {"processes": float(len(procs)), "n": float(sum(p.size for p in procs))}
    for q in PERCENTILES:
        lo, hi = intervals.quantile_bounds(f, q, 1 - (1 - LEVEL) / 2)
        out[f"p{q}"] = intervals.pooled_percentile(procs, q)
        out[f"p{q}_lo"], out[f"p{q}_hi"] = lo, hi
    pooled = np.concatenate(procs)
    means = np.array([p.mean() for p in procs])
    within_cv = [p.std(ddof=1) / p.mean() for p in procs if p.size > 1 and p.mean() > 0]
    out.update(mean=float(means.mean()), cv=float(np.mean(within_cv)) if within_cv else math.nan,
               min=float(pooled.min()), max=float(pooled.max()))
    out["between_cv"], out["between_cv_lo"], out["between_cv_hi"] = intervals.between_cv([np.median(p) for p in procs], LEVEL)
    tp, lo, hi = intervals.log_mean_interval(items_per_inference / (means / 1e3), LEVEL)
    out["throughput"], out["throughput_lo"], out["throughput_hi"] = tp, lo, hi
    return out
