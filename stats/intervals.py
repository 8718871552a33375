"""Intervals and tests that count processes, not samples, as the replicates.

Samples inside one process are not independent: a fresh process lands on other memory, other
frequencies and another thread placement, and its whole distribution shifts (Kalibera & Jones,
"Rigorous Benchmarking in Reasonable Time", ISMM 2013). Every statement here is therefore made
from per-process summaries, with k = number of processes.

The quantity a latency budget speaks of is the percentile of the *population* of processes: the
latency a query sees in a randomly started process (the mixture of the per-process distributions).

* ``fit`` and ``quantile_bounds``: the one-sided bounds of that percentile from a generalized pivot
  (Weerahandi 1993) over normal process offsets on the log scale and the pooled within-process
  shape; ``tolerance_factor`` checks the pivot against the exact normal tolerance factor;
  ``processes_to_decide`` sizes a design from a fit. What guards the pivot's assumptions is in
  stats/robust.py; how the gate combines them, in verdicts/gate.py;
* ``percentile_interval``: the two-sided interval of a percentile, for tables;
* ``log_mean_interval``: the interval of the geometric mean of per-process values (a median, a
  throughput), and ``ratio_interval`` the Welch interval of the ratio of two cells' (speedups);
* ``between_cv``: the between-process CV of the medians with its chi-square interval;
* ``variance_components`` and ``cost_optimal_samples``: Kalibera & Jones's cost-optimal number of
  samples per process.

The error rates these keep are shown by simulation in tests/stats/test_intervals.py and, through the
gate, tests/verdicts/test_simulation.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import stats as sps
from scipy.special import ndtr
from scipy.stats import qmc

Processes = Sequence[Sequence[float]]


def _arrays(processes: Processes) -> list[np.ndarray]:
    out = [np.sort(np.asarray(p, dtype=np.float64)) for p in processes]
    return [a for a in out if a.size]


def _tq(confidence: float, k: int) -> float:
    """One-sided Student quantile on k - 1 degrees of freedom (inf when k < 2: nothing can be said)."""
    return float(sps.t.ppf(confidence, k - 1)) if k >= 2 else math.inf


_DRAWS = 2**15
# the within-process shape is kept as this many quantiles of the residuals
_RESIDUAL_POINTS = 400
KURTOSIS_MIN_K = 20
# a sample of processes often misses the heavy tail its population has (docs/statistics.md)
KURTOSIS_FLOOR = 5.0


@dataclass(frozen=True)
class Fit:
    """Log latency as ``mu + b_i + e``: process offsets b_i ~ N(0, sigma_b^2), within-process residuals e.

    ``centres`` are the per-process log medians, ``residuals`` every sample's log latency minus its
    own process's log median, sorted (the within-process shape, shared by all processes).
    """

    centres: np.ndarray
    residuals: np.ndarray
    pooled: np.ndarray  # every sample, sorted
    logs: tuple[np.ndarray, ...] = ()  # each process's log latencies, sorted

    @property
    def k(self) -> int:
        return int(self.centres.size)

    @property
    def s(self) -> float:
        return float(self.centres.std(ddof=1)) if self.k >= 2 else math.nan


def fit(processes: Processes) -> Fit:
    arrays = _arrays(processes)
    if not arrays:
        raise ValueError("no samples")
    logs = [np.log(a) for a in arrays]
    centres = np.array([np.median(x) for x in logs])
    residuals = np.sort(np.concatenate([x - c for x, c in zip(logs, centres)]))
    return Fit(centres, residuals, np.sort(np.concatenate(arrays)), tuple(logs))


def _offset(residuals: np.ndarray, sigmas: np.ndarray, q: np.ndarray | float) -> np.ndarray:
    """For each (sigma, q) pair: the q-quantile of e + sigma*Z, Z ~ N(0, 1) (the population of
    processes), by bisection on P(e + sigma Z > x) = mean over residuals of Phi((e - x) / sigma)."""
    q = np.broadcast_to(np.asarray(q, dtype=np.float64), sigmas.shape)
    n = residuals.size
    e = residuals if n <= _RESIDUAL_POINTS else np.quantile(residuals, (np.arange(_RESIDUAL_POINTS) + 0.5) / _RESIDUAL_POINTS)
    sig = np.maximum(sigmas, 1e-12)[:, None]
    lo = np.full(sigmas.shape, float(e[0]) - 9 * float(sigmas.max()) - 1e-9)
    hi = np.full(sigmas.shape, float(e[-1]) + 9 * float(sigmas.max()) + 1e-9)
    for _ in range(24):
        mid = (lo + hi) / 2
        over = ndtr((e[None, :] - mid[:, None]) / sig).mean(axis=1) > 1 - q
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    out = (lo + hi) / 2
    return np.where(sigmas > 0, out, np.quantile(residuals, q))


@lru_cache(maxsize=8)
def _uniforms(k: int) -> np.ndarray:
    """Fixed-seed quasi-random points in the unit cube (smaller error than iid draws): the same
    data always give the same bounds."""
    return qmc.Sobol(3, scramble=True, seed=20131003 + k).random(_DRAWS)


@lru_cache(maxsize=256)
def _pivots(k: int, df: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draws of Z ~ N(0, 1) and U ~ chi2(df) (df = k - 1 unless given), one U per draw shared by the
    mean's and the spread's pivots."""
    pts = _uniforms(k)
    return sps.norm.ppf(pts[:, 0]), sps.chi2.ppf(pts[:, 1], k - 1 if df is None else df)


def spread_df(centres: np.ndarray) -> float:
    """Degrees of freedom of the chi-square pivot for the offsets' spread, lowered for heavy tails:
    var(ln s^2) ~ (kurtosis - (k - 3) / k) / (k - 1) with Bonett's kurtosis estimate (Bonett 2006,
    "Approximate confidence interval for standard deviation of nonnormal distributions", CSDA 50),
    matched to chi2's 2 / df; never above k - 1 (the normal's). Rounded to a quarter for caching.
    The kurtosis is floored at KURTOSIS_FLOOR: with t3 offsets, 64 processes whose sample looked
    light-tailed gave 1.5% false PASS at a look whose rate is 0.5% (600 runs); with the floor, 0 of 600,
    at about 1.5% more width for normal offsets. Below KURTOSIS_MIN_K processes: k - 1 (too few to
    tell, and the gate needs 57 processes for a PASS)."""
    k = centres.size
    if k < KURTOSIS_MIN_K:
        return float(k - 1)
    trim = 1 / (2 * math.sqrt(k - 4))
    m = float(sps.trim_mean(centres, trim))
    ss = float(((centres - centres.mean()) ** 2).sum())
    if ss <= 0:
        return float(k - 1)
    kurt = max(KURTOSIS_FLOOR, k * float(((centres - m) ** 4).sum()) / ss**2)
    df = 2 * (k - 1) / max(kurt - (k - 3) / k, 1e-9)
    return float(min(k - 1, max(1.0, round(4 * df) / 4)))


@lru_cache(maxsize=64)
def _levels(k: int, n: int, q: float) -> np.ndarray:
    """Per draw, the level of the within-process shape that stands for its q-quantile: (J + 1/2) / n,
    J ~ Binomial(n, q), the fiducial distribution of a quantile from n samples (its c-quantile gives
    the binomial order-statistic bound, as in MLPerf's rule; Hannig 2009, "On generalized fiducial
    inference", Statistica Sinica 19). It carries the finite sampling of the tail into the bounds;
    n counts samples as independent, which within-process autocorrelation makes optimistic."""
    j = sps.binom.ppf(_uniforms(k)[:, 2], n, q)
    return np.clip((j + 0.5) / n, 0.5 / n, 1 - 0.5 / n)


def _quantile_draws(f: Fit, q: float) -> np.ndarray:
    """Generalized pivotal draws of the population's log q-quantile mu + h(sigma_b) (Weerahandi 1993;
    Krishnamoorthy & Mathew 2003, "Inferences on the means of lognormal distributions using
    generalized p-values and generalized confidence intervals", JSPI 115): with one U ~ chi2(df)
    per draw, sigma_b* = s sqrt(df / U) and mu* = ybar - Z sigma_b* / sqrt(k), df = k - 1 for
    normal offsets (then the bound is the exact normal tolerance bound, the noncentral t), fewer
    when the offsets' kurtosis says their spread is less certain (``spread_df``); h at a level
    drawn for the finite tail (``_levels``)."""
    k, s = f.k, f.s
    df = spread_df(f.centres)
    z, u = _pivots(k, df)
    sig = s * np.sqrt(df / u) if s > 0 else np.zeros(_DRAWS)
    lev = _levels(k, f.residuals.size, q)
    sgrid = np.unique(np.quantile(sig, np.linspace(0, 1, 7)))
    lgrid = np.unique(np.quantile(lev, np.linspace(0, 1, 5)))
    h = _offset(f.residuals, np.repeat(sgrid, lgrid.size), np.tile(lgrid, sgrid.size)).reshape(sgrid.size, lgrid.size)
    by_level = np.array([np.interp(sig, sgrid, h[:, j]) for j in range(lgrid.size)])  # (levels, draws)
    if lgrid.size == 1:
        hs = by_level[0]
    else:
        i = np.clip(np.searchsorted(lgrid, lev) - 1, 0, lgrid.size - 2)
        w = np.clip((lev - lgrid[i]) / (lgrid[i + 1] - lgrid[i]), 0.0, 1.0)
        cols = np.arange(_DRAWS)
        hs = (1 - w) * by_level[i, cols] + w * by_level[i + 1, cols]
    return f.centres.mean() - z * sig / math.sqrt(k) + hs


def tolerance_factor(k: int, p: float, confidence: float) -> float:
    """The pivot's one-sided normal tolerance factor (mean + factor * sd bounds the p-quantile with
    ``confidence``): the exact value is noncentral t(k - 1, z_p sqrt(k)) / sqrt(k)."""
    z, u = _pivots(k)
    draws = np.sqrt((k - 1) / u) * (float(sps.norm.ppf(p)) - z / math.sqrt(k))
    return float(np.quantile(draws, confidence))


def quantile_bounds(f: Fit, q: float, confidence: float) -> tuple[float, float]:
    """One-sided ``confidence`` (lower, upper) bounds of the population's q-th percentile, from the
    generalized pivot over the process offsets and the pooled within-process shape. NaN with 1
    process. The finite sampling of the within-process tail is not in this bound: the gate pairs it
    with MLPerf's order-statistic rule on the pooled samples and with the bound on the processes'
    exceedances (stats/robust.py)."""
    if f.k < 2:
        return math.nan, math.nan
    d = _quantile_draws(f, q / 100.0)
    return float(np.exp(np.quantile(d, 1 - confidence))), float(np.exp(np.quantile(d, confidence)))


def processes_to_decide(f: Fit, q: float, budget: float, confidence: float, cap: int = 64) -> int:
    """Processes in all that would likely decide, if new ones look like these; 0 if not within ``cap``.
    The bounds narrow as processes are added, so the smallest deciding count is found by bisection."""
    if f.k < 2 or not f.s > 0:
        return 0
    ks = [k for k in (*range(f.k + 1, 16), 20, 24, 32, 48, 64, 80, 96, 128) if k <= cap]

    def decides(k: int) -> bool:
        lo, hi = quantile_bounds(Fit(_spread(f, k), f.residuals, f.pooled, f.logs), q, confidence)
        return hi < budget or lo > budget

    if not ks or not decides(ks[-1]):
        return 0
    a, b = 0, len(ks) - 1  # ks[b] decides
    while a < b:
        mid = (a + b) // 2
        a, b = (a, mid) if decides(ks[mid]) else (mid + 1, b)
    return ks[b]


def _spread(f: Fit, k: int) -> np.ndarray:
    """k centres with the observed mean and sd (to ask: what would k such processes decide?)."""
    z = sps.norm.ppf((np.arange(k) + 0.5) / k)
    z = (z - z.mean()) / z.std(ddof=1)
    return f.centres.mean() + f.s * z


def pooled_percentile(processes: Processes, q: float) -> float:
    """The population percentile: each process weighs the same, whatever its sample count."""
    arrays = _arrays(processes)
    x = np.concatenate(arrays)
    w = np.concatenate([np.full(a.size, 1.0 / a.size) for a in arrays])
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order]) / len(arrays)
    return float(x[order][min(np.searchsorted(cw, q / 100.0, side="left"), x.size - 1)])


def percentile_interval(processes: Processes, q: float, level: float = 0.95) -> tuple[float, float, float]:
    """(point, lo, hi) for the population's q-th percentile, two-sided ``level``; NaN bounds with one process."""
    f = fit(processes)
    lo, hi = quantile_bounds(f, q, 1 - (1 - level) / 2)
    return pooled_percentile(processes, q), lo, hi


def log_mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean of per-process values with its Student-t interval on the log scale."""
    y = np.log(np.asarray(values, dtype=np.float64))
    g = float(np.exp(y.mean()))
    if y.size < 2:
        return g, math.nan, math.nan
    half = _tq(1 - (1 - level) / 2, y.size) * y.std(ddof=1) / math.sqrt(y.size)
    return g, float(np.exp(y.mean() - half)), float(np.exp(y.mean() + half))


@dataclass(frozen=True)
class Ratio:
    """a / b of two cells' geometric-mean per-process values, Welch interval on the log scale."""

    ratio: float
    lo: float
    hi: float
    p_greater: float  # one-sided p-value of "a > b" (log scale, Welch)
    p_less: float
    df: float


def ratio_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Ratio:
    """Welch's t on log per-process values: the ratio a/b, its interval, one-sided p-values."""
    x, y = np.log(np.asarray(a, dtype=np.float64)), np.log(np.asarray(b, dtype=np.float64))
    d = x.mean() - y.mean()
    if x.size < 2 or y.size < 2:
        return Ratio(float(np.exp(d)), math.nan, math.nan, math.nan, math.nan, math.nan)
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    if se == 0:
        p = 0.0 if d != 0 else 0.5
        return Ratio(float(np.exp(d)), float(np.exp(d)), float(np.exp(d)), p if d > 0 else 1 - p, p if d < 0 else 1 - p, math.inf)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(sps.t.ppf(1 - (1 - level) / 2, df)) * se
    tstat = d / se
    return Ratio(float(np.exp(d)), float(np.exp(d - half)), float(np.exp(d + half)),
                 float(sps.t.sf(tstat, df)), float(sps.t.cdf(tstat, df)), float(df))


def between_cv(medians: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Between-process CV of the per-process medians (log-scale sd), with its chi-square interval."""
    y = np.log(np.asarray(medians, dtype=np.float64))
    k = y.size
    if k < 2:
        return math.nan, math.nan, math.nan
    s2 = y.var(ddof=1)
    a = (1 - level) / 2
    lo2, hi2 = s2 * (k - 1) / sps.chi2.ppf(1 - a, k - 1), s2 * (k - 1) / sps.chi2.ppf(a, k - 1)
    cv = lambda v: math.sqrt(math.expm1(v))  # noqa: E731 - lognormal CV from the log variance
    return cv(s2), cv(lo2), cv(hi2)


def variance_components(processes: Processes) -> tuple[float, float]:
    """(within, between) variance of log latency: one-way random-effects ANOVA (method of moments).

    ``within`` is the variance of one sample around its process's mean; ``between`` the variance of
    the process means beyond what ``within`` explains (floored at 0).
    """
    logs = [np.log(np.asarray(p, dtype=np.float64)) for p in processes if len(p)]
    k = len(logs)
    n = np.array([x.size for x in logs], dtype=np.float64)
    means = np.array([x.mean() for x in logs])
    within = float(sum(((x - x.mean()) ** 2).sum() for x in logs) / (n.sum() - k))
    if k < 2:
        return within, math.nan
    n0 = (n.sum() - (n**2).sum() / n.sum()) / (k - 1)
    ms_between = float((n * (means - np.average(means, weights=n)) ** 2).sum() / (k - 1))
    return within, max(0.0, (ms_between - within) / n0)


def cost_optimal_samples(within: float, between: float, process_cost_s: float, sample_cost_s: float) -> int:
    """Kalibera & Jones's cost-optimal samples per process: sqrt(c_process * S_within / (c_sample * S_between)).

    Fewer samples and more processes when processes differ; many samples in few processes when
    they agree. ``between`` 0 means any count: return a large one (the caller caps it by time).
    """
    if between <= 0:
        return 10**9
    return max(1, math.ceil(math.sqrt(process_cost_s * within / (sample_cost_s * between))))
