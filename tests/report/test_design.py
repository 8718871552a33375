"""report/design.py: the run-to-run check scales each difference by both runs' standard errors."""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from odbench.bench.store import ResultStore
from odbench.report import design
from tests.verdicts.test_gate import result


def _run(root, rng, scale=1.0, cells=30):
    store = ResultStore(root)
    for c in range(cells):
        procs = [rng.lognormal(np.log(1 + c / 10) + rng.normal(0, 0.10), 0.15, 200) * scale for _ in range(5)]
        store.put(result(f"rank-{c}", procs))
    return root


def test_standardized_differences_of_two_runs_of_one_population_follow_student_t(tmp_path):
    rng = np.random.default_rng(4)
    rows = design.standardized_rows(_run(tmp_path / "a", rng), _run(tmp_path / "b", rng))
    assert len(rows) == 30 and all(r.what == "p50" for r in rows)
    a = design.agreement(rows, "p50")
    assert a.n == 30 and a.within_lo <= 0.95 <= a.within_hi and a.ks_p > 0.01
    assert design.agreement(rows, "speedup") is None


def test_a_shifted_second_run_is_seen(tmp_path):
    rng = np.random.default_rng(5)
    rows = design.standardized_rows(_run(tmp_path / "a", rng), _run(tmp_path / "b", rng, scale=1.4))
    a = design.agreement(rows, "p50")
    assert a.within_hi < 0.95 and a.ks_p < 0.01
    assert np.mean([r.t for r in rows]) < -sps.t.ppf(0.975, 8)  # run 2 slower: negative differences
