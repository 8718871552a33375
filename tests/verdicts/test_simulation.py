"""The stated error rates, shown by seeded simulation (numpy only, no processes).

Latencies carry a per-process random offset (between-process CV 0, 3, 10, 20%) and a spiky tail
within each process (verdicts/simulation.py). Binomial margin: with 2,000 runs at a true rate of 1%,
an observed rate above 1% + 2.33 * sqrt(0.01 * 0.99 / 2000) = 1.52% would be a real excess.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from odbench.stats import earlystop, intervals

from odbench.verdicts import gate, simulation
from odbench.core.records import TIMING_PRESETS

RUNS = 2000
MARGIN = 0.01 + 2.33 * math.sqrt(0.01 * 0.99 / RUNS)
DEFAULT, GATE = TIMING_PRESETS["default"], TIMING_PRESETS["gate"]


@pytest.mark.parametrize("cv", [0.0, 0.03, 0.10, 0.20])
@pytest.mark.parametrize("q", [95, 99])
def test_false_pass_at_the_true_percentile_stays_under_1_percent(cv, q):
    r = simulation.gate_rates(cv, q, DEFAULT.processes, DEFAULT.min_samples, RUNS, seed=q)
    assert r.false_pass <= MARGIN, r


@pytest.mark.parametrize("cv", [0.0, 0.03, 0.10, 0.20])
def test_false_regression_when_nothing_changed_stays_under_1_percent(cv):
    assert simulation.regression_rates(cv, DEFAULT.processes, DEFAULT.min_samples, RUNS) <= MARGIN
    assert simulation.regression_rates(cv, 2, DEFAULT.min_samples, RUNS, seed=1) <= MARGIN  # even with 2 processes


def test_power_to_flag_a_20_percent_slowdown_at_10_percent_cv_with_the_gate_design():
    assert simulation.regression_rates(0.10, GATE.processes, GATE.min_samples, 500, slowdown=0.20, seed=3) >= 0.90


def test_the_gate_design_decides_budgets_20_percent_away_at_3_percent_cv():
    assert simulation.gate_rates(0.03, 95, GATE.processes, GATE.min_samples, 400, seed=4).decided_20 >= 0.90


@pytest.mark.parametrize("q", [90, 95, 99])
def test_with_no_between_process_variation_a_pass_needs_at_most_1_5x_mlperf_counts(q):
    """Where MLPerf's rule passes at its minimum count (no sample over budget: the budget is above
    every spike), 3 processes holding 1.5x that count in all pass too."""
    k = 3
    n = math.ceil(1.5 * earlystop.min_samples(q / 100) / k)
    rng = np.random.default_rng(q)
    budget = 5 * simulation.true_percentile(50, 0.0)
    c = gate.look_confidence(0.99, 1)
    passed = [gate.judge_percentile(simulation.draw(rng, k, n, 0.0), q, budget, c).verdict == "PASS" for _ in range(200)]
    assert np.mean(passed) >= 0.95


def test_percentile_interval_covers_the_true_percentile():
    rng = np.random.default_rng(7)
    for cv in (0.0, 0.10):
        truth = simulation.true_percentile(95, cv)
        covered = [lo <= truth <= hi for lo, hi in
                   (intervals.percentile_interval(simulation.draw(rng, 5, 200, cv), 95)[1:] for _ in range(300))]
        assert np.mean(covered) >= 0.92, cv


def test_speedup_interval_covers_the_true_ratio():
    rng = np.random.default_rng(8)
    covered = []
    for _ in range(500):
        a = [float(np.median(p)) for p in simulation.draw(rng, 5, 200, 0.10, scale=1.5)]
        b = [float(np.median(p)) for p in simulation.draw(rng, 5, 200, 0.10)]
        r = intervals.ratio_interval(a, b)
        covered.append(r.lo <= 1.5 <= r.hi)
    assert np.mean(covered) >= 0.93
