"""Per-cell statistics and stability checks (pyperf's warnings, MEASUREMENT.md)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
UNSTABLE_BLOCK_CV = 0.05  # CV of block medians above this marks a cell UNSTABLE
N_BLOCKS = 5


def summarize(samples_ms: Sequence[float]) -> dict[str, float]:
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no samples")
    out = {f"p{p}": float(np.percentile(x, p)) for p in PERCENTILES}
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    out.update(
        mean=mean,
        stdev=stdev,
        cv=stdev / mean if mean > 0 else float("nan"),
        min=float(x.min()),
        max=float(x.max()),
        block_median_cv=block_median_cv(x),
    )
    return out


def block_median_cv(samples_ms: Sequence[float], blocks: int = N_BLOCKS) -> float:
    """CV of the medians of ``blocks`` consecutive chunks of the run.

    A stand-in for pyperf's CV of per-process medians within one process: it catches
    drift and interference (a CPU hog halfway through) that a single median hides.
    """
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size < blocks * 5:
        return float("nan")
    medians = np.array([np.median(c) for c in np.array_split(x, blocks)])
    return float(medians.std(ddof=1) / medians.mean()) if medians.mean() > 0 else float("nan")


def stability_warnings(stats: dict[str, float]) -> list[str]:
    """pyperf's checks: stdev >= 10% of mean, min/max >= 50% off the mean."""
    warnings = []
    mean = stats["mean"]
    if mean <= 0:
        return ["non-positive mean latency"]
    if stats["cv"] >= 0.10:
        warnings.append(f"stdev is {stats['cv']:.0%} of the mean (>= 10%)")
    if (mean - stats["min"]) / mean >= 0.5:
        warnings.append(f"min is {(mean - stats['min']) / mean:.0%} below the mean (>= 50%)")
    if (stats["max"] - mean) / mean >= 0.5:
        warnings.append(f"max is {(stats['max'] - mean) / mean:.0%} above the mean (>= 50%)")
    return warnings


def process_median_cv(medians: Sequence[float]) -> float:
    m = np.asarray(medians, dtype=np.float64)
    if m.size < 2 or m.mean() <= 0:
        return float("nan")
    return float(m.std(ddof=1) / m.mean())


def is_unstable(stats: dict[str, float]) -> tuple[bool, str]:
    cv = stats.get("process_median_cv", float("nan"))
    if np.isfinite(cv):  # several processes: MEASUREMENT.md's rule
        if cv > UNSTABLE_BLOCK_CV:
            return True, f"CV of per-process medians is {cv:.1%} (> {UNSTABLE_BLOCK_CV:.0%})"
        return False, ""
    cv = stats.get("block_median_cv", float("nan"))
    if np.isfinite(cv) and cv > UNSTABLE_BLOCK_CV:
        return True, f"median drifts across the run: CV of {N_BLOCKS} block medians is {cv:.1%} (> {UNSTABLE_BLOCK_CV:.0%})"
    return False, ""
