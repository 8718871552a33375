"""stats/paired.py: the per-process log ratio, the interval across processes and the verdicts."""
from __future__ import annotations

import math

import numpy as np
import pytest

from odbench.stats import paired
from odbench.stats.paired import PairedVerdict, Sequential


def _ratios(mean: float, sd: float, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(0.0, 1.0, k)
    return mean + sd * (y - y.mean()) / y.std(ddof=1)  # exactly this mean and sd


def test_log_ratio_is_the_log_of_the_ratio_of_medians_per_process():
    base, cand = [1.0, 2.0, 3.0, 100.0, 2.0], [2.2, 2.0, 2.4, 1.0, 9.0]
    assert paired.log_ratio(base, cand) == pytest.approx(math.log(2.2 / 2.0))
    arr = paired.log_ratio(np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), np.array([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]))
    assert arr == pytest.approx([math.log(2), 0.0])


def test_interval_is_student_t_across_processes():
    y = _ratios(0.05, 0.02, 10)
    ratio, lo, hi = paired.t_interval(y)
    half = 2.2621571627 * 0.02 / math.sqrt(10)  # t(0.975, 9)
    assert ratio == pytest.approx(math.exp(0.05))
    assert (lo, hi) == pytest.approx((math.exp(0.05 - half), math.exp(0.05 + half)))


@pytest.mark.parametrize("mean,sd,k,expected", [
    (0.0, 0.01, 10, PairedVerdict.SAME),
    (0.05, 0.02, 10, PairedVerdict.SLOWER),
    (-0.05, 0.02, 10, PairedVerdict.FASTER),
    (0.0, 0.10, 10, PairedVerdict.INCONCLUSIVE),
    (0.015, 0.002, 20, PairedVerdict.SAME),  # surely slower, but by less than the margin: SAME
])
def test_verdicts(mean, sd, k, expected):
    e = paired.decide(_ratios(mean, sd, k))
    assert e.verdict == expected
    assert e.lo < e.ratio < e.hi
    assert (e.processes_to_decide is not None) == (expected == PairedVerdict.INCONCLUSIVE)


def test_margin_is_the_users():
    y = _ratios(0.04, 0.005, 10)
    assert paired.decide(y, margin=0.03).verdict == PairedVerdict.SLOWER
    assert paired.decide(y, margin=0.06).verdict == PairedVerdict.SAME


def test_a_later_look_needs_a_stricter_bound():
    y = _ratios(0.03, 0.04, 10)  # t = 2.37: past the one-sided 5% bound (1.83) at one look, not at 1.25% (2.72)
    one, four = paired.decide(y, look=1, looks=1, alpha=0.05), paired.decide(y, look=1, looks=4, alpha=0.05)
    assert one.verdict == PairedVerdict.SLOWER and four.verdict == PairedVerdict.INCONCLUSIVE
    assert four.decide_lo < one.decide_lo


def test_sequential_stops_at_the_first_decided_look():
    calls = []

    def draw(n):
        calls.append(n)
        return list(_ratios(0.0, 0.02 if len(calls) == 1 else 0.005, n, seed=len(calls)))

    effect, ratios = paired.sequential(Sequential((4, 8, 16)), draw)
    assert calls == [4, 4] and len(ratios) == 8 and effect.look == 2 and effect.looks == 3


def test_schedule_must_increase():
    with pytest.raises(ValueError):
        Sequential((10, 5))


def test_isolated_design_uses_welch_on_log_medians():
    rng = np.random.default_rng(1)
    base = np.exp(rng.normal(0.0, 0.01, 10))
    e = paired.decide_isolated(base, base * 1.10)
    assert e.design == paired.Design.ISOLATED and e.verdict == PairedVerdict.SLOWER
    assert e.ratio == pytest.approx(1.10)


def test_a_zero_width_interval_or_too_few_processes_never_decides():
    """Two processes that agree exactly, or identical ratios, carry no evidence of their spread."""
    assert paired.decide([0.05, 0.05]).verdict == paired.PairedVerdict.INCONCLUSIVE
    assert paired.decide([0.0, 0.0, 0.0]).verdict == paired.PairedVerdict.INCONCLUSIVE
    assert paired.decide([0.05, 0.051]).verdict == paired.PairedVerdict.INCONCLUSIVE  # k < MIN_PROCESSES
    assert paired.decide_isolated([1.0] * 3, [1.1] * 3).verdict == paired.PairedVerdict.INCONCLUSIVE


def test_non_finite_ratios_are_an_error_not_a_verdict():
    with pytest.raises(ValueError, match="not finite"):
        paired.decide([0.01, float("nan"), 0.02])
    with pytest.raises(ValueError, match="zero, negative or not finite"):
        paired.decide_isolated([1.0, 0.0, 1.1], [1.0, 1.1, 1.2])


def test_the_interval_shown_widens_with_the_looks():
    y = [0.01, 0.03, 0.02, 0.015, 0.025, 0.02, 0.018, 0.022, 0.027, 0.012]
    one, four = paired.decide(y, look=1, looks=1), paired.decide(y, look=1, looks=4)
    assert four.lo < one.lo < one.ratio < one.hi < four.hi
