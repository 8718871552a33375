"""The paired design's error rates and power, by seeded simulation of the real decision code
(verdicts/paired_simulation.py -> stats/paired.py). Margins: 2 binomial standard errors at the trial count."""
from __future__ import annotations

import pytest

from odbench.verdicts import paired_simulation as sim
from odbench.verdicts.paired_simulation import Row


def _se(p: float, n: int) -> float:
    return sim.binomial_se(p, n)


TRIALS = 600


@pytest.mark.parametrize("row", [Row(0.06, 0.25, 0.0), Row(0.02, 0.0, 0.0)], ids=lambda r: r.label())
def test_identical_models_are_same_and_rarely_slower(row):
    r = sim.simulate(row, TRIALS, seed=11)
    assert r["slower"] <= 0.01 + 2 * _se(0.01, TRIALS)
    assert r["same"] >= 0.95 - 2 * _se(0.95, TRIALS)


@pytest.mark.parametrize("row", [Row(0.06, 0.25, 0.05), Row(0.02, 0.10, 0.05)], ids=lambda r: r.label())
def test_a_five_percent_slowdown_is_flagged(row):
    r = sim.simulate(row, TRIALS, seed=12)
    assert r["slower"] >= 0.90 - 2 * _se(0.90, TRIALS)
    assert r["faster"] == 0.0 and r["same"] <= 0.05 + 2 * _se(0.05, TRIALS)


def test_at_three_times_the_spread_it_says_inconclusive_rather_than_guess():
    """At a per-process log-ratio sd of 0.18 no affordable design reaches the targets (docs/paired.md):
    the error rates still hold, and the undecided comparisons are INCONCLUSIVE."""
    n = 400
    same = sim.simulate(Row(0.18, 0.25, 0.0), n, seed=13)
    slow = sim.simulate(Row(0.18, 0.25, 0.05), n, seed=14)
    assert same["slower"] <= 0.01 + 2 * _se(0.01, n) and same["faster"] <= 0.01 + 2 * _se(0.01, n)
    assert slow["faster"] <= 0.01 + 2 * _se(0.01, n)
    assert slow["inconclusive"] > 0.5


@pytest.mark.slow
def test_the_table_holds_its_targets_at_the_measured_spread():
    """Every row at the measured spread (sd 0.02-0.06); the 3x rows are the quick test's and docs/paired.md's."""
    trials = 1000
    for i, row in enumerate(r for r in sim.ROWS if r.ratio_sd <= 0.06):
        r = sim.simulate(row, trials, seed=100 + i)
        if row.effect == 0.0:
            assert r["slower"] <= 0.01 + 2 * _se(0.01, trials), row.label()
            assert r["faster"] <= 0.01 + 2 * _se(0.01, trials), row.label()
            if row.ratio_sd <= 0.06:
                assert r["same"] >= 0.95 - 2 * _se(0.95, trials), row.label()
        elif row.effect == 0.05 and row.ratio_sd <= 0.06:
            assert r["slower"] >= 0.90 - 2 * _se(0.90, trials), row.label()
        elif row.effect == 0.03:  # at the margin: SAME is the false answer, kept under alpha_same
            assert r["same"] <= 0.05 + 2 * _se(0.05, trials), row.label()


@pytest.mark.xfail(strict=True, reason="not met: at 3x the measured spread (per-process log-ratio sd 0.18) the "
                   "default sequential design (10/20/40/80 processes) flags a 5% slowdown about 36% of the time and "
                   "declares SAME almost never (docs/paired.md); it needs hundreds of processes or a lower spread")
def test_the_issue_targets_at_three_times_the_spread():
    """The issue's targets at 3x the spread, kept as an expected failure so that the miss stays visible."""
    n = 200
    slow = sim.simulate(Row(0.18, 0.25, 0.05), n, seed=15)
    same = sim.simulate(Row(0.18, 0.25, 0.0), n, seed=16)
    assert slow["slower"] >= 0.90 - 2 * _se(0.90, n)
    assert same["same"] >= 0.95 - 2 * _se(0.95, n)
