"""MLPerf LoadGen's early-stopping rule for percentile latency budgets.

With N samples, t of them over budget, target percentile p and confidence c (MLPerf's 0.99;
the gate passes its own, stricter, per look):

* h(t) is the smallest count h with I_p(h, t + 1) <= 1 - c (I: the regularized
  incomplete beta). A run PASSES when the samples under budget are at least h(t),
  i.e. N >= h(t) + t, and N is at least MLPerf's minimum query count h(1) + 1
  (p90/p95/p99: 64/130/662 at c = 99%; 72/146/740 at 99.5%; 79/161/818 at 99.75%, the
  confidence the gate's bounds use at its first look, verdicts/gate.py). We use MLPerf's
  minimum rather than the formula's zero-overage minimum (44/90/459 at 99%): a run that
  misses its minimums never passes.
* a confident FAIL when P(Binomial(N, 1 - p) >= t) <= 1 - c: seeing this many
  over-budget samples would be unlikely if the true percentile met the budget.
* anything between is INCONCLUSIVE; ``more_samples`` says how many more samples,
  all under budget, would turn it into a PASS.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from scipy.special import betainc
from scipy.stats import binom

CONFIDENCE = 0.99


@lru_cache(maxsize=4096)
def h(t: int, p: float, confidence: float = CONFIDENCE) -> int:
    """Smallest h with I_p(h, t+1) <= 1 - confidence (I_p decreases in h)."""
    if not 0 < p < 1 or t < 0:
        raise ValueError("need 0 < p < 1 and t >= 0")
    lo, hi = 1, 1
    while betainc(hi, t + 1, p) > 1 - confidence:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if betainc(mid, t + 1, p) <= 1 - confidence:
            hi = mid
        else:
            lo = mid + 1
    return lo


def min_samples(p: float, confidence: float = CONFIDENCE) -> int:
    """MLPerf's minimum query count: h(1) + 1."""
    return h(1, p, confidence) + 1


def max_overages(n: int, p: float, confidence: float = CONFIDENCE) -> int:
    """Most over-budget samples a run of n samples may have and still pass (-1: none can pass)."""
    if n < min_samples(p, confidence):
        return -1
    t = -1
    while n >= h(t + 1, p, confidence) + t + 1:
        t += 1
    return t


@dataclass(frozen=True)
class PercentileVerdict:
    verdict: str  # PASS | FAIL | INCONCLUSIVE
    n: int
    over: int
    percentile: float
    more_samples: int
    reason: str


def judge(n: int, over: int, p: float, confidence: float = CONFIDENCE) -> PercentileVerdict:
    name = f"p{p * 100:g}"
    if n == 0:
        return PercentileVerdict("INCONCLUSIVE", 0, 0, p, min_samples(p, confidence), "no samples")
    need = max(h(over, p, confidence) + over, min_samples(p, confidence))
    if n >= need:
        return PercentileVerdict("PASS", n, over, p, 0, f"{over}/{n} samples over budget; at most {max_overages(n, p, confidence)} "
                                                        f"allowed for {name} at {confidence:.1%} confidence")
    if over > 0 and binom.sf(over - 1, n, 1 - p) <= 1 - confidence:
        return PercentileVerdict("FAIL", n, over, p, 0,
                                 f"{over}/{n} samples over budget: {name} exceeds it with {confidence:.1%} confidence")
    return PercentileVerdict(
        "INCONCLUSIVE", n, over, p, need - n,
        f"{over}/{n} samples over budget: cannot decide {name} at {confidence:.1%} confidence; "
        f"needs {need - n} more samples (all under budget) to pass",
    )
