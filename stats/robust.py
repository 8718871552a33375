"""What the gate checks besides the pivot (stats/intervals.py), so that its promise does not rest on
log-normal process offsets alone.

The pivot assumes every process's log latency is ``mu + b_i + e``: one normal group of offsets b_i
and one within-process shape e shared by all. Three things here guard that assumption:

* ``shape_check``: the run's own processes, tested. Shapiro-Wilk (Shapiro & Wilk 1965, Biometrika
  52; Royston's algorithm in scipy) on the per-process log medians (groups of processes, heavy-tailed
  offsets, one slow process); and each process's fraction of samples in the pooled within-process
  tail against the median process's, scaled by the larger of a robust spread (1.4826 MAD, which
  absorbs autocorrelation within processes) and the binomial sd, Bonferroni over processes (a
  process or group whose tail differs: spikes, another placement). A rejection makes the timing
  check INCONCLUSIVE with the reason: the gate does not judge a population it cannot model.
* ``exceedance_bounds``: a bound that needs no model of the offsets or the tails. The population's
  exceedance at a budget B (the fraction of a fresh process's queries over B) is the mean over
  processes of each one's exceedance; its bound is Student's t over the k per-process fractions,
  their variance floored by the binomial variance of a finite run. The gate needs it to agree with
  the pivot, which keeps a tail that differs between processes from passing or failing on the pivot.
* ``min_processes``: a group of processes no run has drawn cannot be tested or bounded. If every
  group that differs makes up at least ``min_group`` of fresh processes, k processes miss one with
  probability at most (1 - min_group)^k; a PASS needs k large enough that this is under its share
  of the error rate. This is the assumption that remains, and it is stated with every verdict.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps

from odbench.stats.intervals import Fit

SHAPE_ALPHA = 0.005  # each of the two Shapiro-Wilk tests; a false rejection costs a decision, not an error
MIN_TAIL_SAMPLES = 10  # the tail width is read where at least this many samples per process lie above


def min_processes(min_group: float, alpha: float) -> int:
    """Processes needed so that a group of at least ``min_group`` of processes goes unseen with
    probability <= alpha: the smallest k with (1 - min_group)^k <= alpha."""
    if not 0 < min_group < 1:
        raise ValueError("min_group must be in (0, 1)")
    return max(2, math.ceil(math.log(alpha) / math.log1p(-min_group)))


def unseen_probability(min_group: float, k: int) -> float:
    return (1 - min_group) ** k


def _shapiro(x: np.ndarray) -> float:
    if x.size < 3 or float(np.ptp(x)) <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return 1.0  # too few, or every process alike: nothing to reject
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sps.shapiro(x).pvalue)


def tail_fractions(f: Fit, q: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(per-process fraction of residuals over the pooled residuals' level-quantile, sample counts,
    level), the level q capped where MIN_TAIL_SAMPLES of a process's samples lie above it."""
    n = np.array([x.size for x in f.logs], dtype=np.float64)
    level = min(q / 100.0, 1 - MIN_TAIL_SAMPLES / float(n.min()))
    cut = float(np.quantile(f.residuals, level))
    over = np.array([x.size - np.searchsorted(x - c, cut, side="right") for x, c in zip(f.logs, f.centres)])
    return over / n, n, level


def _tail_outliers(f: Fit, q: float, alpha: float) -> tuple[int, float, float]:
    """(processes whose tail fraction stands out, the worst one's fraction, the typical one): robust z
    against the median process, scale max(1.4826 MAD, binomial sd), two-sided, Bonferroni over k
    against Student's t on k - 1 df."""
    frac, n, level = tail_fractions(f, q)
    mid = float(np.median(frac))
    binom_sd = np.sqrt(max(mid, 1.0 / n.min()) * (1 - mid) / n)
    scale = np.maximum(1.4826 * float(np.median(np.abs(frac - mid))), binom_sd)
    z = np.abs(frac - mid) / scale
    limit = float(sps.t.isf(alpha / (2 * f.k), f.k - 1))  # t, not normal: the MAD of k values is itself noisy
    worst = int(np.argmax(z))
    return int((z > limit).sum()), float(frac[worst]), mid


def shape_check(f: Fit, q: float, alpha: float = SHAPE_ALPHA) -> str:
    """'' when the processes look like the pivot's model, else why not (one line)."""
    if f.k < 3:
        return ""
    p_med = _shapiro(f.centres)
    if p_med < alpha:
        slow = math.expm1(float(f.centres.max() - np.median(f.centres)))
        return (f"the per-process medians are not one normal group (Shapiro-Wilk p={p_med:.2g} < {alpha:g}; slowest "
                f"process {slow:+.0%} from the median one): processes fall into groups or have heavy-tailed offsets")
    if min(x.size for x in f.logs) <= 2 * MIN_TAIL_SAMPLES:
        return ""
    count, worst, mid = _tail_outliers(f, q, alpha)
    if count:
        return (f"the per-process tails differ: {count} of {f.k} processes have {worst:.1%} of samples in the pooled tail, the "
                f"median process {mid:.1%} (robust z, Bonferroni at {alpha:g}): some processes spike or sit elsewhere")
    return ""


def exceedance_bounds(f: Fit, limit: float, confidence: float) -> tuple[float, float]:
    """One-sided (lower, upper) ``confidence`` bounds of the population's fraction of queries over
    ``limit``: Student's t on k - 1 df over the per-process fractions, variance floored by the
    binomial variance of their sample counts. NaN with one process."""
    k = f.k
    if k < 2:
        return math.nan, math.nan
    bound = math.log(limit)
    frac = np.array([1.0 - np.searchsorted(x, bound, side="right") / x.size for x in f.logs])
    n = np.array([x.size for x in f.logs], dtype=np.float64)
    m = float(frac.mean())
    var = max(float(frac.var(ddof=1)), float((m * (1 - m) / n).mean()))
    half = float(sps.t.ppf(confidence, k - 1)) * math.sqrt(var / k)
    return max(0.0, m - half), min(1.0, m + half)
