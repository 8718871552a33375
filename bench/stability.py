"""pyperf's stability warnings for one process's samples (numpy only: the cell process imports this,
and must not pay for scipy at every start)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def stability_warnings(samples_ms: Sequence[float]) -> list[str]:
    """pyperf's checks on one process: stdev >= 10% of the mean, min/max >= 50% off the mean,
    and a mean under 1 ms (timer and harness overhead weigh more there)."""
    x = np.asarray(samples_ms, dtype=np.float64)
    mean = float(x.mean())
    if mean <= 0:
        return ["non-positive mean latency"]
    warnings = []
    cv = float(x.std(ddof=1)) / mean if x.size > 1 else 0.0
    if cv >= 0.10:
        warnings.append(f"stdev is {cv:.0%} of the mean (>= 10%)")
    if (mean - x.min()) / mean >= 0.5:
        warnings.append(f"min is {(mean - x.min()) / mean:.0%} below the mean (>= 50%)")
    if (x.max() - mean) / mean >= 0.5:
        warnings.append(f"max is {(x.max() - mean) / mean:.0%} above the mean (>= 50%)")
    if mean < 1.0:
        warnings.append(f"mean {mean:.3f} ms is under 1 ms: harness overhead is a larger share (see the null cell)")
    return warnings


# Other work above this share of the machine while a figure was timed is worth a warning: measured on the Intel
# Xeon VM (docs/measurement.md), neighbours on the other vCPU moved MiniLM fp32 from 1.6 ms to 6-11 ms while
# int8-dyn stayed at 1 ms, so even a paired ratio moved (1.65x quiet, 10x beside them). Housekeeping is < 1%.
NEIGHBOUR_SHARE = 0.10
STEAL_SHARE = 0.05
# /proc/stat counts in ticks of 10 ms (USER_HZ 100): over a shorter window one tick of a neighbour is a large share
# (a 0.024 s null cell read 20%: one tick), so shorter windows are recorded, never warned on; at 0.2 s on 2 CPUs a tick is 2.5%.
MIN_WINDOW_S = 0.2


def neighbour_warnings(share: dict) -> list[str]:
    """A warning when other processes (``others``) or the hypervisor (``steal``) took a share of the CPUs while
    the samples were timed (bench/provenance.cpu_share)."""
    others, steal = share.get("others", 0.0), share.get("steal", 0.0)
    if share.get("window_s", MIN_WINDOW_S) < MIN_WINDOW_S or (others < NEIGHBOUR_SHARE and steal < STEAL_SHARE):
        return []
    return [f"other work used {others:.0%} of the CPUs while this was timed (steal {steal:.0%}): neighbours move "
            "latencies, and paired ratios when they hit members unequally"]
