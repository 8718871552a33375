"""verdicts/regression.py: the effect rule on the bound, Holm over the run's cells, named in the output."""
from __future__ import annotations

import numpy as np

from odbench.verdicts import gate, regression
from tests.verdicts.test_gate import result


def _cell(i, rng, scale=1.0, spread=0.01, k=10):
    return result(f"rank-{i}", [rng.lognormal(np.log(scale) + rng.normal(0, spread), 0.05, 100) for _ in range(k)])


def test_a_clear_slowdown_among_20_cells_is_flagged_and_holm_is_named():
    rng = np.random.default_rng(1)
    base = [_cell(i, rng) for i in range(20)]
    cur = [_cell(i, rng, 1.3 if i == 0 else 1.0) for i in range(20)]
    out = {g.cell_id.split("__")[-1]: g for g in regression.compare(cur, base, regression.RegressionRule())}
    assert out["rank-0"].verdict == regression.Change.REGRESSION and out["rank-0"].correction == "Holm"
    assert "Holm's level" in out["rank-0"].reason and "over 20 cells" in out["rank-0"].reason
    assert all(g.verdict == regression.Change.SAME for c, g in out.items() if c != "rank-0")
    md = gate.to_markdown([], list(out.values()), 1)
    assert "Holm over 20 cells (family-wise error)" in md


def test_the_effect_rule_is_on_the_bound_not_the_point():
    """12% slower on the point, processes scattering by 10%: not shown to be >= 10% slower, so SAME."""
    rng = np.random.default_rng(2)
    (g,) = regression.compare([_cell(0, rng, 1.12, 0.10)], [_cell(0, rng, 1.0, 0.10)], regression.RegressionRule())
    assert g.effect >= 0.10 and g.verdict == regression.Change.SAME  # +11.2%: the old point rule would have flagged it


def test_too_few_processes_to_reach_holms_level_are_said_so():
    rng = np.random.default_rng(3)
    base = [_cell(i, rng, k=3) for i in range(20)]
    cur = [_cell(i, rng, 2.0 if i == 0 else 1.0, k=3) for i in range(20)]
    g = regression.compare(cur, base, regression.RegressionRule())[0]
    assert g.verdict == regression.Change.SAME and "3 vs 3 processes cannot reach p <=" in g.reason
