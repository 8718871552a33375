"""bench/stability.py: pyperf's per-process checks and the neighbour warning."""
from __future__ import annotations

import pytest

from odbench.bench import stability


@pytest.mark.parametrize("others, steal, warned", [(0.0, 0.0, False), (0.09, 0.04, False), (0.10, 0.0, True),
                                                    (0.0, 0.05, True), (0.45, 0.0, True)])
def test_neighbour_warning_at_its_thresholds(others, steal, warned):
    out = stability.neighbour_warnings({"others": others, "steal": steal})
    assert bool(out) == warned
    if warned:
        assert f"{others:.0%} of the CPUs" in out[0] and f"steal {steal:.0%}" in out[0]


def test_pyperf_checks_flag_a_wide_process_and_a_sub_millisecond_mean():
    wide = stability.stability_warnings([1.0, 1.0, 1.0, 3.5])
    assert wide == ["stdev is 77% of the mean (>= 10%)", "max is 115% above the mean (>= 50%)"]
    assert any("under 1 ms" in w for w in stability.stability_warnings([0.5, 0.5, 0.5]))


def test_a_window_too_short_for_the_tick_counters_is_recorded_but_never_warned_on():
    assert stability.neighbour_warnings({"others": 0.2, "steal": 0.0, "window_s": 0.1}) == []
    assert stability.neighbour_warnings({"others": 0.2, "steal": 0.0, "window_s": 0.3})
