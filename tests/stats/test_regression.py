"""stats/regression.py: the permutation test's exactness and level, and Holm's step-down."""
import math

import numpy as np
import pytest

from odbench.stats import regression as rs


def test_permutation_p_is_exact_for_small_counts():
    # 3 vs 3, the current clearly slower: only the observed split is as extreme, 1 of C(6,3) = 20
    assert rs.permutation_p([2.0, 2.1, 2.2], [1.0, 1.1, 1.2]) == pytest.approx(1 / 20)
    assert rs.smallest_p(3, 3) == pytest.approx(1 / 20) and rs.smallest_p(10, 10) == pytest.approx(1 / 20_001)
    # shifted null: 1.5x slower is not "more than 60% slower"
    assert rs.permutation_p([1.5, 1.55, 1.6], [1.0, 1.02, 1.04], shift=0.6) > 0.5


def test_holm_step_down():
    assert rs.holm([0.001, 0.02, 0.004, math.nan], 0.01) == [True, False, False, False]
    assert rs.holm([0.001, 0.004, 0.0049], 0.015) == [True, True, True]
    assert rs.holm([], 0.01) == []


@pytest.mark.parametrize("n1, n2", [(10, 2), (10, 3), (3, 10)])
def test_level_holds_with_unequal_counts_and_bimodal_offsets(n1, n2):
    """Welch's t gave 2.8% (10 vs 2) and 5.1% (bimodal, 10 vs 3) at nominal 1%. 1,000 runs: at most
    1% + 2 binomial SEs (1.63%)."""
    rng = np.random.default_rng(n1 * 100 + n2)
    runs, hits = 1000, 0
    for _ in range(runs):
        draw = lambda k: np.exp(np.where(rng.random(k) < 0.3, math.log(1.3), 0.0) + rng.normal(0, 0.02, k))  # noqa: E731
        hits += rs.permutation_p(draw(n1), draw(n2), stop_above=0.01) < 0.01
    assert hits / runs <= 0.01 + 2 * math.sqrt(0.01 * 0.99 / runs)
