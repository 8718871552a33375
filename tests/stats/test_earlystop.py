"""The verdict maths against the numbers MLPerf LoadGen publishes (early stopping, minimum query counts)."""
import pytest

from odbench.stats import earlystop


@pytest.mark.parametrize("p, minimum", [(0.90, 64), (0.95, 130), (0.99, 662)])
def test_mlperf_minimum_sample_counts(p, minimum):
    assert earlystop.min_samples(p) == minimum


@pytest.mark.parametrize("p, zero_overage_min", [(0.90, 44), (0.95, 90), (0.99, 459)])
def test_formula_alone_with_no_sample_over_budget(p, zero_overage_min):
    assert earlystop.h(0, p) == zero_overage_min


@pytest.mark.parametrize("n, p, allowed", [(1000, 0.95, 34), (1000, 0.99, 2), (2000, 0.95, 77), (2000, 0.99, 9)])
def test_most_samples_allowed_over_budget(n, p, allowed):
    assert earlystop.max_overages(n, p) == allowed
    assert earlystop.judge(n, allowed, p).verdict == "PASS"
    assert earlystop.judge(n, allowed + 1, p).verdict != "PASS"


def test_inconclusive_below_the_minimum_even_with_no_overage():
    v = earlystop.judge(129, 0, 0.95)
    assert v.verdict == "INCONCLUSIVE" and v.more_samples == 1 and "1 more samples" in v.reason
    assert earlystop.judge(130, 0, 0.95).verdict == "PASS"
    assert earlystop.judge(0, 0, 0.99).verdict == "INCONCLUSIVE"


def test_confident_fail_and_the_grey_zone():
    assert earlystop.judge(1000, 80, 0.95).verdict == "FAIL"  # 8% over a 5% tail: clearly failing
    grey = earlystop.judge(1000, 50, 0.95)  # 5% over: cannot tell either way
    assert grey.verdict == "INCONCLUSIVE" and grey.more_samples > 0
    assert earlystop.judge(100, 100, 0.95).verdict == "FAIL"
