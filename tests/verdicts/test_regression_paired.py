"""verdicts/regression_paired.py: which design each regression row comes from, and why; the paired rows' groups
saved; the gate's paired decision path holding its family-wise rate over cells (seeded simulation, no timing)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from odbench.bench import paired_run, provenance
from odbench.bench.matrix import Workload, plan
from odbench.bench.run_folder import RunFolder
from odbench.core.records import TIMING_PRESETS, Feeds, ProcessSamples, Result, Verdict, to_json
from odbench.devices.catalog import get_profile
from odbench.models.onnx_file import user_variant
from odbench.runtimes import get_runtime
from odbench.verdicts import gate, paired_simulation, regression_paired
from odbench.verdicts.regression import PAIRED, RUN_AGAINST_RUN, Change, RegressionRule
from tests.bench.test_paired_cell import make_stack_onnx

MACHINE = provenance.machine()  # the runs were measured here: the paired design may run
ORT = get_runtime("onnxruntime").version()
FAST_TIMING = dict(warmup_s=0.05, min_rounds=20, min_time_s=0.1, max_time_s=0.2)


def make_run(root: Path, model: Path, version: str = ORT, scale: float = 1.0, seed: int = 0) -> RunFolder:
    """A run folder of one measured cell of ``model`` (its spec stored, as `odbench run` does), fabricated samples."""
    v = dataclasses.replace(user_variant(model), id="tiny/fp32", model="tiny")
    timing = dataclasses.replace(TIMING_PRESETS["smoke"], processes=8)
    [spec] = plan([Workload(v, {"synthetic": (Feeds(dims=(("batch", 8),)), 8)})], [("onnxruntime", {})],
                  [get_profile("host")], timing)
    rng = np.random.default_rng(seed)
    procs = tuple(ProcessSamples(tuple(float(x) for x in rng.lognormal(np.log(scale), 0.02, 50))) for _ in range(8))
    r = Result.for_cell(spec, Verdict.OK, processes=procs, peak_rss_mb=100.0,
                        provenance={"runtime_version": version, "model_sha256": v.sha256})
    folder = RunFolder(root)
    folder.put_spec(spec)
    folder.put(r)
    folder.write_json("machine.json", MACHINE)
    folder.write_json("variants.json", [json.loads(to_json(v))])
    return folder


@pytest.fixture
def two_runs(tmp_path):
    base_model = make_stack_onnx(tmp_path / "base" / "m.onnx", layers=1, width=16)
    cand_model = make_stack_onnx(tmp_path / "cand" / "m.onnx", layers=2, width=16)
    return tmp_path, base_model, cand_model


def _why(cur: RunFolder, base: RunFolder, **kw) -> str:
    [r], [b] = cur.results(), base.results()
    return regression_paired.why_not_paired(r, b, cur.specs().get(r.cell_id), base.specs().get(b.cell_id), **kw)


def test_the_paired_design_is_chosen_only_when_both_files_and_the_runtime_version_allow_it(two_runs):
    root, base_model, cand_model = two_runs
    base, cur = make_run(root / "b", base_model), make_run(root / "c", cand_model)
    assert _why(cur, base) == ""  # two different files, both as recorded: exactly what the paired design compares
    assert "installed onnxruntime is 0.0" in _why(cur, base, installed=lambda name: ("0.0", ""))
    assert "cannot run here (gone)" in _why(cur, base, installed=lambda name: (None, "gone"))
    other = make_run(root / "v", cand_model, version="1.0.0")
    assert "runtime version differs (onnxruntime" in _why(other, base) and "cannot share a process" in _why(other, base)
    make_stack_onnx(cand_model, layers=3, width=16)  # rebuilt in place after the run measured it
    assert "the run's model file changed on disk" in _why(cur, base)
    base_model.unlink()
    assert "the baseline's model file is missing" in _why(cur, base)
    (cur.root / "specs" / f"{cur.cell_ids()[0]}.json").unlink()
    assert "no cell spec stored in the run folder" in _why(cur, base)


def test_runs_measured_on_another_machine_are_compared_run_against_run_saying_so(two_runs):
    root, base_model, cand_model = two_runs
    base, cur = make_run(root / "b", base_model), make_run(root / "c", cand_model)
    [g] = regression_paired.compare_runs(cur, base, RegressionRule(), out_dir=root / "out", log=lambda _: None,
                                         here=lambda: {**MACHINE, "physical_cores": 64})
    assert g.design == RUN_AGAINST_RUN and g.design_note.startswith("this machine is not the one the runs were measured on")
    assert "physical_cores" in g.design_note and not (root / "out").exists()


def test_fallbacks_are_run_against_run_rows_that_say_why(two_runs):
    root, base_model, cand_model = two_runs
    base = make_run(root / "b", base_model, version="1.0.0")
    cur = make_run(root / "c", cand_model, scale=1.5, seed=1)
    [g] = regression_paired.compare_runs(cur, base, RegressionRule(), out_dir=root / "out", log=lambda _: None)
    # the run-against-run check refuses this baseline; the paired gate keeps it, labelled (issue 25, item 4)
    with pytest.raises(gate.BaselineRefused):
        gate.compare(cur.results(), base.results(), RegressionRule())
    assert g.design == RUN_AGAINST_RUN and "runtime version differs" in g.design_note
    assert g.reason.startswith("run-against-run (runtime version differs")
    assert g.verdict in (Change.REGRESSION, Change.SAME, Change.MODEL_CHANGED)
    assert not (root / "out" / regression_paired.GROUP_FOLDER).exists()  # nothing paired ran
    md = gate.to_markdown([], [g], gate.exit_code([], [g]))
    assert "| design |" in md and "| run-against-run |" in md and "run-against-run (runtime version differs" in md


def test_paired_rows_run_real_processes_save_their_groups_and_map_to_exit_codes(two_runs):
    """Structure only: which verdict real timing gives is not asserted."""
    root, base_model, cand_model = two_runs
    base, cur = make_run(root / "b", base_model), make_run(root / "c", cand_model)
    out = root / "out"
    [g] = regression_paired.compare_runs(cur, base, RegressionRule(), schedule=(3,), out_dir=out, timing=FAST_TIMING,
                                         log=lambda _: None)
    assert g.design == PAIRED and g.reason.startswith("paired design (3 processes, both models in each, look 1 of 1)")
    assert "Holm's level" in g.reason and g.n_current == g.n_baseline == 3
    assert g.verdict in (Change.REGRESSION, Change.IMPROVEMENT, Change.SAME, Change.INCONCLUSIVE)
    group = paired_run.load(out / g.paired_group)
    assert group.verdict == Verdict.OK and len(group.processes) == 3
    keys = [m.key for m in group.spec.members]
    assert keys[0].startswith("baseline=tiny/fp32@onnxruntime") and keys[1].startswith("candidate=tiny/fp32@onnxruntime")
    assert [m.path for m in group.spec.members] == [str(base_model), str(cand_model)]
    assert all(len(p.samples_ms[k]) > 0 for p in group.processes for k in keys)
    ratios = [math.log(p.median(keys[1]) / p.median(keys[0])) for p in group.processes]
    hl = math.exp(np.median([(a + b) / 2 for i, a in enumerate(ratios) for b in ratios[i:]])) - 1  # samples saved as float32
    assert g.effect == pytest.approx(hl, abs=1e-5)
    code = gate.exit_code([], [g])
    assert code == {Change.REGRESSION: 1, Change.INCONCLUSIVE: 3}.get(g.verdict, 0)


def test_a_missing_feeds_file_falls_back(two_runs):
    root, base_model, cand_model = two_runs
    base, cur = make_run(root / "b", base_model), make_run(root / "c", cand_model)
    spec = cur.specs()[cur.cell_ids()[0]]
    cur.put_spec(dataclasses.replace(spec, feeds=Feeds(path=str(root / "nowhere.npz"))))
    [g] = regression_paired.compare_runs(cur, base, RegressionRule(), out_dir=root / "out", log=lambda _: None)
    assert g.design == RUN_AGAINST_RUN and "feeds file is missing" in g.design_note


def test_a_failing_paired_process_is_saved_and_the_row_falls_back_saying_so(two_runs):
    root, base_model, cand_model = two_runs
    base, cur = make_run(root / "b", base_model), make_run(root / "c", cand_model)
    path = cur.root / "specs" / f"{cur.cell_ids()[0]}.json"
    data = json.loads(path.read_text())
    data["runtime_options"] = {"no_such_option": 1}  # the comparison process refuses it
    path.write_text(json.dumps(data))
    [g] = regression_paired.compare_runs(cur, base, RegressionRule(), schedule=(3,), out_dir=root / "out",
                                         timing=FAST_TIMING, log=lambda _: None)
    assert g.design == RUN_AGAINST_RUN and g.design_note.startswith("the paired processes failed (")
    [saved] = (root / "out" / regression_paired.GROUP_FOLDER).glob("*.json")
    assert f"kept in {regression_paired.GROUP_FOLDER}/{saved.name}" in g.design_note
    group = paired_run.load(saved)
    assert group.verdict == Verdict.ERROR and "no_such_option" in group.reason


# ------------------------------------------------------------------ the decision path over cells (seeded)

@pytest.mark.parametrize("sd", [0.02, 0.06])
def test_holm_over_paired_cells_keeps_the_family_wise_false_regression_rate(sd):
    """Ten cells all exactly at the rule's +10% (the worst case for a false REGRESSION): any flagged is false."""
    trials = 600
    r = paired_simulation.gate_rates(sd, (0.10,) * 10, RegressionRule.parse("10%:0.01"), trials, seed=int(sd * 100))
    assert r["false_regression"] <= 0.01 + 2 * paired_simulation.binomial_se(0.01, trials)


def test_without_holm_the_same_cells_would_break_the_rate():
    """The check above can fail: judging each cell at alpha alone (no correction over cells) exceeds it."""
    rule, trials, hits = RegressionRule.parse("10%:0.01"), 300, 0
    rng = np.random.default_rng(5)
    for _ in range(trials):
        cells = [regression_paired.sequential_cell(lambda n: rng.normal(math.log1p(0.10), 0.04, n), (8, 16), rule, 1)
                 for _ in range(10)]
        hits += any(c.p_slower <= rule.alpha for c in cells)
    assert hits / trials > 0.02


@pytest.mark.parametrize("sd", [0.02, 0.04, 0.06])
def test_a_ten_percent_slowdown_among_ten_cells_is_found_and_identical_cells_are_same(sd):
    r = paired_simulation.gate_rates(sd, (0.10,) + (0.0,) * 9, RegressionRule.parse("0%:0.01"), 200, seed=7)
    assert r["power"] >= 0.90 and r["false_regression"] <= 0.01 + 2 * paired_simulation.binomial_se(0.01, 200)
    r = paired_simulation.gate_rates(sd, (0.0,) * 10, RegressionRule.parse("10%:0.01"), 200, seed=8)
    assert r["same"] >= 0.95 and r["false_regression"] <= 0.02
