"""stats/summary.py: one summary per cell, from its processes."""
import math

import numpy as np
import pytest

from odbench.bench import stability
from odbench.stats import summary as stats


def test_summary_of_processes_has_intervals_that_hold_the_point():
    rng = np.random.default_rng(0)
    procs = [rng.lognormal(0, 0.1, 300) * f for f in (1.0, 1.05, 0.97, 1.02, 0.99)]
    s = stats.summarize(procs, items_per_inference=10)
    for q in stats.PERCENTILES:
        assert s[f"p{q}_lo"] <= s[f"p{q}"] <= s[f"p{q}_hi"]
    assert s["p50"] <= s["p90"] <= s["p95"] <= s["p99"]
    assert s["processes"] == 5 and s["n"] == 1500
    assert 0.01 < s["between_cv"] < 0.1 and s["between_cv_lo"] < s["between_cv"] < s["between_cv_hi"]
    per_process = [10 / (p.mean() / 1e3) for p in procs]
    assert s["throughput"] == pytest.approx(math.exp(np.mean(np.log(per_process))))
    assert s["throughput_lo"] < s["throughput"] < s["throughput_hi"]


def test_one_process_has_no_interval():
    s = stats.summarize([np.linspace(1, 2, 100)])
    assert math.isnan(s["p50_lo"]) and math.isnan(s["between_cv"])


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        stats.summarize([])


def test_pyperf_warnings():
    x = np.ones(100) * 2.0
    x[0] = 5.0
    w = stability.stability_warnings(x)
    assert any("max is" in m for m in w)
    assert stability.stability_warnings(np.ones(100) * 2.0) == []
    assert any("under 1 ms" in m for m in stability.stability_warnings(np.ones(100) * 0.2))
