"""Latency budgets inside pytest (the pytest11 plugin), exercised in a real pytest run."""
import numpy as np
import pytest

from odbench.bench.pytest_budgets import judge_budget

pytest_plugins = ["pytester"]

TEST_FILE = '''
import time
import pytest

def work():
    time.sleep(0.0002)

@pytest.mark.latency_budget(p95_ms=50)
def test_meets_budget(benchmark):
    benchmark.pedantic(work, rounds=200, iterations=1)

@pytest.mark.latency_budget(p95_ms=0.001)
def test_misses_budget(benchmark):
    benchmark.pedantic(work, rounds=200, iterations=1)

@pytest.mark.latency_budget(p99_ms=50)
def test_too_few_samples(benchmark):
    benchmark.pedantic(work, rounds=50, iterations=1)
'''


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_budget_verdicts_in_a_pytest_run(pytester):
    pytester.makepyfile(test_budgets=TEST_FILE)
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", "--benchmark-disable-gc")
    res.assert_outcomes(passed=1, failed=1, skipped=1)
    out = res.stdout.str()
    assert "latency budget FAILED: p95<=0.001ms" in out
    assert "latency budget INCONCLUSIVE: p99<=50ms" in out and "more samples" in out
    strict = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--budget-strict", "-k", "too_few")
    strict.assert_outcomes(failed=1)


def test_judge_budget_units_and_errors():
    samples = np.full(200, 1.0)
    ((name, v),) = judge_budget(samples, p95_ms=2.0)
    assert name == "p95<=2ms" and v.verdict == "PASS"
    try:
        judge_budget(samples, p97=2.0)
    except ValueError as exc:
        assert "unknown budget" in str(exc)
    else:
        raise AssertionError("expected ValueError")
