"""Latency budgets inside pytest, for pytest-benchmark users.

    @pytest.mark.latency_budget(p95_ms=10, p99_ms=25)
    def test_ranker(benchmark):
        benchmark.pedantic(session.run, args=(feed,), rounds=1000, iterations=1)

After the test body, the raw samples of its ``benchmark`` fixture are judged with MLPerf's
early-stopping rule (stats/earlystop.py): FAIL fails the test with the reason,
INCONCLUSIVE skips it saying how many more samples are needed (``--budget-strict`` makes
that a failure), PASS passes. Enabled by the ``pytest11`` entry point ``odbench_budgets``.
"""
from __future__ import annotations

import numpy as np
import pytest

from odbench.stats import earlystop


def pytest_addoption(parser):
    parser.addoption("--budget-strict", action="store_true", help="odbench: an INCONCLUSIVE latency budget fails the test")


def pytest_configure(config):
    config.addinivalue_line("markers", "latency_budget(p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None, confidence=0.99): "
                            "judge the benchmark's samples against absolute latency budgets (odbench)")


def _samples_ms(benchmark) -> np.ndarray:
    stats = getattr(benchmark, "stats", None)
    data = getattr(getattr(stats, "stats", None), "data", None)
    if not data:
        return np.array([])
    timer = getattr(benchmark, "_timer", None)
    scale = 1e-6 if getattr(timer, "__name__", "").endswith("_ns") else 1e3
    return np.asarray(data, dtype=np.float64) * scale


def judge_budget(samples_ms: np.ndarray, confidence: float = 0.99, **limits_ms: float) -> list[tuple[str, earlystop.PercentileVerdict]]:
    out = []
    for key, limit in sorted(limits_ms.items()):
        if limit is None:
            continue
        if not (key.startswith("p") and key.endswith("_ms")):
            raise ValueError(f"latency_budget: unknown budget {key!r}; use p50_ms, p90_ms, p95_ms or p99_ms")
        p = int(key[1:-3]) / 100
        out.append((f"p{key[1:-3]}<={limit:g}ms", earlystop.judge(len(samples_ms), int((samples_ms > limit).sum()), p, confidence)))
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    marker = item.get_closest_marker("latency_budget")
    if marker is None:
        return result
    benchmark = item.funcargs.get("benchmark")
    if benchmark is None:
        raise pytest.UsageError(f"{item.nodeid}: @latency_budget needs the test to use the `benchmark` fixture")
    kwargs = dict(marker.kwargs)
    confidence = kwargs.pop("confidence", 0.99)
    verdicts = judge_budget(_samples_ms(benchmark), confidence, **kwargs)
    failed = [f"{name}: {v.reason}" for name, v in verdicts if v.verdict == "FAIL"]
    unsure = [f"{name}: {v.reason}" for name, v in verdicts if v.verdict == "INCONCLUSIVE"]
    if failed:
        pytest.fail("latency budget FAILED: " + "; ".join(failed), pytrace=False)
    if unsure:
        msg = "latency budget INCONCLUSIVE: " + "; ".join(unsure)
        if item.config.getoption("--budget-strict"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return result
