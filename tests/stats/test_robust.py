"""stats/robust.py: the assumption checks, the exceedance bound and the process floor."""
import math

import numpy as np
import pytest

from odbench.stats import intervals, robust


def test_min_processes_sees_a_group_with_the_stated_probability():
    assert robust.min_processes(0.10, 0.0025) == 57  # 0.9^57 = 0.25%
    assert robust.unseen_probability(0.10, 57) <= 0.0025 < robust.unseen_probability(0.10, 56)
    assert robust.min_processes(0.30, 0.0025) == 17
    with pytest.raises(ValueError):
        robust.min_processes(0.0, 0.01)


def test_shape_check_accepts_one_normal_group_and_rejects_groups_and_differing_tails():
    rng = np.random.default_rng(1)
    one = [rng.lognormal(rng.normal(0, 0.1), 0.1, 200) for _ in range(60)]
    assert robust.shape_check(intervals.fit(one), 95) == ""
    groups = [p * (1.3 if i % 3 == 0 else 1.0) for i, p in enumerate(rng.lognormal(0, 0.08, (60, 200)))]
    assert "not one normal group" in robust.shape_check(intervals.fit(groups), 95)
    spiky = [rng.lognormal(0, 0.08, 200) for _ in range(60)]
    for p in spiky[:12]:
        p[rng.random(200) < 0.10] *= 2.0
    assert "tails differ" in robust.shape_check(intervals.fit(spiky), 95)


def test_exceedance_bounds_hold_the_mean_fraction_and_the_binomial_floor():
    rng = np.random.default_rng(2)
    procs = [rng.lognormal(0, 0.1, 400) for _ in range(20)]
    f = intervals.fit(procs)
    limit = float(np.exp(0.1 * 1.645))  # every process's own p95
    lo, hi = robust.exceedance_bounds(f, limit, 0.99)
    assert lo < 0.05 < hi and hi - lo < 0.03
    same = [np.linspace(1, 2, 100)] * 5  # identical processes: the binomial floor keeps a width
    lo, hi = robust.exceedance_bounds(intervals.fit(same), 1.9, 0.99)
    assert lo < 0.09 < hi and hi - lo > 0.02
    assert all(math.isnan(x) for x in robust.exceedance_bounds(intervals.fit(procs[:1]), limit, 0.99))
