"""Paired comparisons: two (or more) models timed inside the same fresh process, round by round.

On a shared VM a fresh process's whole latency distribution shifts by 10-25% (the placement it gets for
its life), and everything that runs in that process shares the shift. A ratio taken *inside* a process
cancels it; the process stays the unit of replication (Kalibera & Jones, "Rigorous Benchmarking in
Reasonable Time", ISMM 2013), so each process gives one number, the log ratio of the two members'
medians, and the interval is taken across processes. This is duet benchmarking (Bulej et al., "Duet
Benchmarking: Improving Measurement Accuracy in the Cloud", ICPE 2020) at the finest grain, with the
members' order randomised every round as in randomized multiple interleaved trials (Abedi & Brecht,
"Conducting Repeatable Experiments in Highly Variable Cloud Computing Environments", ICPE 2017).

The effect is ``ratio = candidate time / base time`` (> 1: the candidate is slower); a speedup is its
inverse. The estimate is Hodges-Lehmann's over the k per-process log ratios and its bounds are the signed-rank
test's (Hodges & Lehmann 1963): they assume independent processes with ratios symmetric about their centre, not
normal ones, because whole processes intermittently run far off the others (seen for real) and a t interval on
the mean let one of them decide. The
seeded simulation (verdicts/paired_simulation.py) shows the rates it keeps. Isolated designs (``decide_isolated``)
keep Welch's t.

Verdicts (``decide``), with an equivalence margin ``m`` the user sets (default 3%):

* SAME: the two-one-sided-tests interval (level 1 - 2 * alpha_same) lies inside [1/(1+m), 1+m];
* SLOWER / FASTER: the one-sided bound at level 1 - alpha excludes 1 (and SAME does not hold: an effect
  that is surely there but smaller than the margin is SAME, with its interval shown);
* INCONCLUSIVE otherwise, with about how many processes would decide it.

A sequential design (``sequential``) looks after each batch of processes and stops once decided; the error
rates are split over its looks (Bonferroni), so false SLOWER stays <= alpha whatever the stopping.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps

DEFAULT_MARGIN = 0.03
ALPHA = 0.01  # false SLOWER (and false FASTER), one-sided, over all looks
ALPHA_SAME = 0.05  # false SAME (TOST) when the true effect sits at the margin, over all looks
LEVEL = 0.95  # the interval shown (over all looks)
MIN_PROCESSES = 3  # fewer processes never decide: two can agree by chance to a zero-width interval


class PairedVerdict(StrEnum):
    FASTER = "FASTER"
    SLOWER = "SLOWER"
    SAME = "SAME"
    INCONCLUSIVE = "INCONCLUSIVE"


class Design(StrEnum):
    PAIRED = "paired"  # members in one process, taking turns round by round
    ISOLATED = "isolated"  # members in separate processes (cross-runtime, run against run)


@lru_cache(maxsize=4096)
def _t(p: float, df: float) -> float:
    return float(sps.t.ppf(p, df))


def log_ratio(base_samples, cand_samples) -> np.ndarray | float:
    """log(median(candidate) / median(base)) of one process (or, for arrays, along the last axis)."""
    b = np.median(np.asarray(base_samples, dtype=np.float64), axis=-1)
    c = np.median(np.asarray(cand_samples, dtype=np.float64), axis=-1)
    out = np.log(c) - np.log(b)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class Effect:
    """A comparison's answer: ``ratio`` = candidate time / base time, with its 95% interval."""

    ratio: float
    lo: float
    hi: float
    verdict: PairedVerdict
    k: int  # processes (paired) or the smaller side's processes (isolated)
    sd: float  # sd of the per-process log ratios (paired) or the standard error (isolated)
    margin: float = DEFAULT_MARGIN
    design: Design = Design.PAIRED
    look: int = 1
    looks: int = 1
    decide_lo: float = math.nan  # the bounds the verdict used (its look's level)
    decide_hi: float = math.nan
    processes_to_decide: int | None = None  # INCONCLUSIVE: about how many processes would decide it

    @property
    def percent(self) -> float:
        return (self.ratio - 1) * 100

    @property
    def speedup(self) -> tuple[float, float, float]:
        """base time / candidate time, with its interval."""
        return 1 / self.ratio, 1 / self.hi, 1 / self.lo

    @property
    def half_width(self) -> float:
        """The interval's half-width as a fraction of the estimate (log scale)."""
        return (math.log(self.hi) - math.log(self.lo)) / 2 if self.lo > 0 and self.hi > 0 else math.nan

    def text(self) -> str:
        return (f"{self.percent:+.1f}% [{(self.lo - 1) * 100:+.1f}%, {(self.hi - 1) * 100:+.1f}%] -> {self.verdict} "
                f"(margin ±{self.margin:.0%}, {self.design} design, {self.k} processes)")


def t_interval(log_ratios: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """(ratio, lo, hi): geometric mean of exp(log ratio) with Student's t interval across processes."""
    y = np.asarray(log_ratios, dtype=np.float64)
    if y.size < 2:
        g = float(np.exp(y.mean())) if y.size else math.nan
        return g, math.nan, math.nan
    half = _t(1 - (1 - level) / 2, y.size - 1) * y.std(ddof=1) / math.sqrt(y.size)
    return float(np.exp(y.mean())), float(np.exp(y.mean() - half)), float(np.exp(y.mean() + half))


def _verdict(mean: float, se: float, df: float, margin: float, alpha: float, alpha_same: float) -> tuple[PairedVerdict, float, float]:
    edge = math.log1p(margin)
    if not (se > 0 and df > 0 and math.isfinite(se) and math.isfinite(mean)):  # a zero-width interval decides nothing
        return PairedVerdict.INCONCLUSIVE, math.nan, math.nan
    q_same, q = _t(1 - alpha_same, df), _t(1 - alpha, df)
    if -edge < mean - q_same * se and mean + q_same * se < edge:
        return PairedVerdict.SAME, math.exp(mean - q * se), math.exp(mean + q * se)
    lo, hi = mean - q * se, mean + q * se
    if lo > 0:
        return PairedVerdict.SLOWER, math.exp(lo), math.exp(hi)
    if hi < 0:
        return PairedVerdict.FASTER, math.exp(lo), math.exp(hi)
    return PairedVerdict.INCONCLUSIVE, math.exp(lo), math.exp(hi)


def processes_needed(sd: float, margin: float = DEFAULT_MARGIN, looks: int = 1, alpha_same: float = ALPHA_SAME) -> int:
    """About how many processes make the SAME interval of an effect of 0 half as wide as the margin."""
    if not sd > 0:
        return MIN_PROCESSES
    if margin <= 0:  # no number of processes shows SAME within a zero margin
        return 0
    z = float(sps.norm.ppf(1 - alpha_same / looks))
    # / 0.955: the Hodges-Lehmann estimate's efficiency against the mean under normal ratios
    return max(MIN_PROCESSES, math.ceil((2 * z * sd / math.log1p(margin)) ** 2 / 0.955))


@lru_cache(maxsize=256)
def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(T <= t), t = 0..n(n+1)/2, of Wilcoxon's signed-rank statistic under a null symmetric about 0 (exact)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return np.cumsum(counts) / 2.0**n


@lru_cache(maxsize=4096)
def _excluded(n: int, alpha: float) -> int:
    """How many ordered Walsh averages a one-sided bound at level 1 - alpha passes over: the largest j with
    P(T <= j - 1) <= alpha (Hodges-Lehmann's interval from the signed-rank test; 0: no bound)."""
    cdf = _signed_rank_cdf(n)
    return int(np.searchsorted(cdf, alpha, side="right"))


def shifted_p(log_ratios: Sequence[float], shift: float) -> float:
    """One-sided p-value of "the centre of the per-process log ratios is at most log(1 + shift)" (Wilcoxon's
    signed-rank test, exact null distribution; the dual of ``hl_bounds``: the lower bound at level 1 - a exceeds
    log(1 + shift) exactly when this p is <= a, ties aside). ``shift`` < -1 is not a ratio: ValueError."""
    if shift <= -1:
        raise ValueError(f"shift {shift} is not a relative change above -100%")
    d = np.asarray(log_ratios, dtype=np.float64) - math.log1p(shift)
    d = d[d != 0]  # a process exactly at the shift carries no sign (Wilcoxon's zero rule)
    n = int(d.size)
    if n == 0:
        return 1.0
    a = np.abs(d)
    ranks = np.empty(n)
    ranks[np.argsort(a, kind="stable")] = np.arange(1, n + 1)
    if np.unique(a).size < n:  # mid-ranks for ties: T may then be a half-integer; round down (conservative)
        ranks = sps.rankdata(a)
    t = math.floor(float(ranks[d > 0].sum()) + 1e-9)
    cdf = _signed_rank_cdf(n)
    return 1.0 if t <= 0 else float(1.0 - cdf[t - 1])


@lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n)


def _walsh(y: np.ndarray) -> np.ndarray:
    i, j = _pairs(y.size)
    return np.sort((y[i] + y[j]) / 2)


def hl_bounds(walsh: np.ndarray, n: int, alpha: float) -> tuple[float, float]:
    """One-sided (lower, upper) bounds of the centre of the per-process log ratios, each at level 1 - alpha
    (Hodges & Lehmann 1963 with Wilcoxon's signed-rank distribution). They assume independent processes whose
    ratios are symmetric about their centre, not normal: a process that runs far off the others moves a bound by
    one Walsh average, not by its distance."""
    j = _excluded(n, alpha)
    if j == 0:
        return -math.inf, math.inf
    return float(walsh[j - 1]), float(walsh[walsh.size - j])


def _verdict_hl(y: np.ndarray, margin: float, alpha: float, alpha_same: float) -> tuple[PairedVerdict, float, float]:
    edge = math.log1p(margin)
    w = _walsh(y)
    s_lo, s_hi = hl_bounds(w, y.size, alpha_same)
    lo, hi = hl_bounds(w, y.size, alpha)
    if -edge < s_lo and s_hi < edge:
        return PairedVerdict.SAME, math.exp(lo), math.exp(hi)
    if lo > 0:
        return PairedVerdict.SLOWER, math.exp(lo), math.exp(hi)
    if hi < 0:
        return PairedVerdict.FASTER, math.exp(lo), math.exp(hi)
    return PairedVerdict.INCONCLUSIVE, math.exp(lo), math.exp(hi)


def decide(log_ratios: Sequence[float], margin: float = DEFAULT_MARGIN, look: int = 1, looks: int = 1,
           alpha: float = ALPHA, alpha_same: float = ALPHA_SAME) -> Effect:
    """The paired verdict from per-process log ratios (``log_ratio``), at look ``look`` of ``looks``."""
    y = np.asarray(log_ratios, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{int((~np.isfinite(y)).sum())} of {y.size} per-process log ratios are not finite "
                         "(a zero, negative or NaN sample): the comparison cannot be judged")
    k = int(y.size)
    # The interval shown holds over every look (Bonferroni, like the verdict's own error rates): a 95% interval
    # taken at the look where the data chose to stop covers less than 95%.
    # The estimate is Hodges-Lehmann's (the median of the Walsh averages), its interval the signed-rank test's:
    # whole processes intermittently run 10-50% off the others (seen for real, docs/paired.md), and a t interval
    # on the mean let one such process move both the estimate and the verdict.
    w = _walsh(y) if k else y
    lo_b, hi_b = hl_bounds(w, k, (1 - LEVEL) / 2 / looks) if k else (math.nan, math.nan)
    ratio = float(np.exp(np.median(w))) if k else math.nan  # the Hodges-Lehmann estimate
    lo, hi = (math.exp(lo_b) if math.isfinite(lo_b) else math.nan), (math.exp(hi_b) if math.isfinite(hi_b) else math.nan)
    if k < MIN_PROCESSES:
        return Effect(ratio, lo, hi, PairedVerdict.INCONCLUSIVE, k, math.nan, margin, Design.PAIRED, look, looks,
                      processes_to_decide=MIN_PROCESSES)
    sd = float(y.std(ddof=1))
    if not sd > 0:  # identical ratios carry no evidence of their spread
        return Effect(ratio, lo, hi, PairedVerdict.INCONCLUSIVE, k, sd, margin, Design.PAIRED, look, looks,
                      processes_to_decide=None)
    verdict, dlo, dhi = _verdict_hl(y, margin, alpha / looks, alpha_same / looks)
    need = (processes_needed(sd, margin, looks, alpha_same) or None) if verdict == PairedVerdict.INCONCLUSIVE else None
    return Effect(ratio, lo, hi, verdict, k, sd, margin, Design.PAIRED, look, looks, dlo, dhi, need)


def decide_isolated(base_medians: Sequence[float], cand_medians: Sequence[float], margin: float = DEFAULT_MARGIN,
                    alpha: float = ALPHA, alpha_same: float = ALPHA_SAME) -> Effect:
    """The same verdicts from two sets of separate processes (Welch's t on the log per-process medians):
    for members that cannot share a process (two runtimes, two runtime versions, two runs)."""
    x, y = np.asarray(base_medians, dtype=np.float64), np.asarray(cand_medians, dtype=np.float64)
    if not (np.all(np.isfinite(x) & (x > 0)) and np.all(np.isfinite(y) & (y > 0))):
        raise ValueError("a per-process median is zero, negative or not finite: the comparison cannot be judged")
    x, y = np.log(x), np.log(y)
    d = float(y.mean() - x.mean()) if x.size and y.size else math.nan
    k = int(min(x.size, y.size))
    if k < 2:
        return Effect(math.exp(d), math.nan, math.nan, PairedVerdict.INCONCLUSIVE, k, math.nan, margin, Design.ISOLATED)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if se > 0 else float(x.size + y.size - 2)
    half = _t(1 - (1 - LEVEL) / 2, df) * se
    verdict, dlo, dhi = _verdict(d, se, df, margin, alpha, alpha_same)
    return Effect(math.exp(d), math.exp(d - half), math.exp(d + half), verdict, k, se, margin, Design.ISOLATED,
                  decide_lo=dlo, decide_hi=dhi)


@dataclass(frozen=True)
class Sequential:
    """Looks at these cumulative process counts; stops at the first decided look."""

    schedule: tuple[int, ...] = (10, 20, 40, 80)
    margin: float = DEFAULT_MARGIN
    alpha: float = ALPHA
    alpha_same: float = ALPHA_SAME

    def __post_init__(self) -> None:
        if not self.schedule or self.schedule[0] < 2 or list(self.schedule) != sorted(set(self.schedule)):
            raise ValueError(f"a look schedule is increasing process counts >= 2, got {self.schedule}")


def sequential(design: Sequential, draw: Callable[[int], Sequence[float]]) -> tuple[Effect, list[float]]:
    """Run ``design``: ``draw(n)`` runs n more processes and returns their log ratios. Returns the effect at
    the look that decided (or the last) and every log ratio drawn."""
    ratios: list[float] = []
    looks = len(design.schedule)
    effect = None
    for j, n in enumerate(design.schedule, 1):
        ratios += [float(v) for v in draw(n - len(ratios))]
        effect = decide(ratios, design.margin, j, looks, design.alpha, design.alpha_same)
        if effect.verdict != PairedVerdict.INCONCLUSIVE:
            break
    assert effect is not None
    return effect, ratios


def with_design(effect: Effect, design: Design) -> Effect:
    return replace(effect, design=design)


def design_difference(paired_figure: tuple[float, float, float], isolated_figure: tuple[float, float, float],
                      level: float = LEVEL) -> tuple[float, float, float]:
    """The paired figure over the isolated one (each ``(estimate, lo, hi)`` at 95%, a ratio or a speedup alike),
    with its interval from both intervals' standard errors (each read off its log half-width as a normal one).
    The designs agree when it holds 1. Asking instead for each estimate inside the other's interval fails for
    unbiased designs whenever one interval is far narrower than the other (a paired ±0.3% against an isolated
    ±2%): the isolated estimate's own noise lands it outside."""
    z95, z = float(sps.norm.ppf(0.975)), float(sps.norm.ppf(0.5 + level / 2))

    def se(lo: float, hi: float) -> float:
        return (math.log(hi) - math.log(lo)) / (2 * z95)

    d = math.log(paired_figure[0]) - math.log(isolated_figure[0])
    half = z * math.hypot(se(*paired_figure[1:]), se(*isolated_figure[1:]))
    return math.exp(d), math.exp(d - half), math.exp(d + half)
