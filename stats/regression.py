"""The run-against-run regression check's statistics: a permutation test on per-process log medians
against a shifted null, and Holm's step-down correction over the cells of a run.

Permutation test: under "the current build is at most ``shift`` slower" on the log scale, the
current run's log medians minus log(1 + shift) and the baseline's are exchangeable (processes are
the replicates, each run's processes drawn afresh), so the permutation distribution of the
difference of means gives an exact p-value for any process counts and any distribution of the
process offsets (Good, "Permutation, Parametric and Bootstrap Tests of Hypotheses", 3rd ed., 2005,
ch. 3). Welch's t was chosen against it by simulation (docs/statistics.md): Welch is liberal with
unequal counts (2.8% at 10 vs 2, 5.1% for bimodal offsets at 10 vs 3, nominal 1%).

Holm's step-down (Holm 1979, "A simple sequentially rejective multiple test procedure", Scand. J.
Statist. 6) keeps the family-wise error rate, the chance of any false REGRESSION in a run, at alpha
whatever the dependence between cells.
"""
from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations
from typing import Sequence

import numpy as np

EXACT_LIMIT = 20_000  # enumerate every split up to this many, else draw
DRAWS = 20_000
_SCREEN = 1_000  # a first batch of draws: a p-value far above any level stops there


@lru_cache(maxsize=256)
def _splits(n: int, n1: int, draws: int) -> tuple[np.ndarray, bool]:
    """(rows of the n1 indices chosen of n, exact): every split when there are few enough, else
    ``draws`` uniform random ones from a fixed seed."""
    if math.comb(n, n1) <= EXACT_LIMIT:
        return np.array(list(combinations(range(n), n1)), dtype=np.intp).reshape(-1, n1), True
    rng = np.random.default_rng(1979 + 1000 * n + n1 + draws)
    return np.argsort(rng.random((draws, n)), axis=1)[:, :n1], False


def permutation_p(current: Sequence[float], baseline: Sequence[float], shift: float = 0.0, stop_above: float = 0.05) -> float:
    """One-sided p-value of "current <= baseline * (1 + shift)" from per-process values (medians),
    the statistic being the difference of mean logs. Exact (enumerated) for small counts; with more
    splits than EXACT_LIMIT, DRAWS random ones from a fixed seed, p = (1 + #>=) / (1 + draws)
    (Phipson & Smyth 2010, "Permutation p-values should never be zero", SAGMB 9). A first screen of
    draws returns early when p is clearly over ``stop_above``."""
    x = np.log(np.asarray(current, dtype=np.float64)) - math.log1p(shift)
    y = np.log(np.asarray(baseline, dtype=np.float64))
    if x.size < 1 or y.size < 1:
        return math.nan
    z = np.concatenate([x, y])
    n1, n = x.size, z.size
    observed = x.mean() - y.mean() - 1e-9 * max(1.0, float(np.abs(z).max()))  # ties count as extreme
    total = z.sum()

    def p_of(draws: int) -> float:
        rows, exact = _splits(n, n1, draws)
        s = z[rows].sum(axis=1)
        hits = int(((s / n1 - (total - s) / (n - n1)) >= observed).sum())
        return hits / rows.shape[0] if exact else (1 + hits) / (1 + rows.shape[0])

    if math.comb(n, n1) > EXACT_LIMIT:
        p = p_of(_SCREEN)
        if p > 2 * stop_above:
            return p
    return p_of(DRAWS)


def smallest_p(n1: int, n2: int) -> float:
    """The smallest p-value a permutation test of n1 vs n2 processes can give."""
    c = math.comb(n1 + n2, n1)
    return 1 / c if c <= EXACT_LIMIT else 1 / (1 + DRAWS)


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down: which hypotheses are rejected with family-wise error <= alpha (NaN: never)."""
    p = [math.inf if not p_ == p_ else p_ for p_ in p_values]  # NaN -> never rejected
    order = sorted(range(len(p)), key=p.__getitem__)
    m, reject = len(p), [False] * len(p)
    for rank, i in enumerate(order):
        if p[i] > alpha / (m - rank):
            break
        reject[i] = True
    return reject


def holm_level(rank: int, m: int, alpha: float) -> float:
    """The level the rank-th smallest of m p-values (rank from 0) is held to."""
    return alpha / (m - rank)
