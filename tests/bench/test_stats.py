import numpy as np
import pytest

from bench import stats


def test_percentiles_match_numpy():
    x = np.random.default_rng(0).lognormal(0, 0.3, 1000)
    s = stats.summarize(x)
    for p in (50, 90, 95, 99):
        assert s[f"p{p}"] == pytest.approx(np.percentile(x, p))
    assert s["mean"] == pytest.approx(x.mean())
    assert s["cv"] == pytest.approx(x.std(ddof=1) / x.mean())
    assert s["min"] == x.min() and s["max"] == x.max()


def test_summarize_refuses_zero_samples():
    with pytest.raises(ValueError, match="no samples"):
        stats.summarize([])


def test_steady_run_is_stable_and_a_step_change_is_not():
    rng = np.random.default_rng(1)
    steady = 1.0 + 0.01 * rng.standard_normal(1000)
    assert not stats.is_unstable(stats.summarize(steady))[0]
    # a CPU hog arrives halfway: the second half runs 40% slower
    hogged = np.concatenate([steady[:500], 1.4 * steady[500:]])
    unstable, why = stats.is_unstable(stats.summarize(hogged))
    assert unstable and "block medians" in why


def test_pyperf_style_warnings():
    x = np.array([1.0] * 99 + [5.0])
    w = stats.stability_warnings(stats.summarize(x))
    assert any("max is" in m for m in w)
    assert stats.stability_warnings(stats.summarize(np.ones(100))) == []


def test_process_median_cv_decides_when_there_are_several_processes():
    s = stats.summarize(np.ones(100))
    s["process_median_cv"] = stats.process_median_cv([1.0, 1.0, 1.3])
    unstable, why = stats.is_unstable(s)
    assert unstable and "per-process medians" in why
    s["process_median_cv"] = stats.process_median_cv([1.0, 1.01, 0.99])
    assert not stats.is_unstable(s)[0]
