"""`odbench gate RUN --baseline BASE`: the paired regression check's flags, outputs and exit codes."""
from __future__ import annotations

import json

import pytest
import yaml

from odbench.cli import main
from tests.bench.test_paired_cell import make_stack_onnx
from tests.verdicts.test_regression_paired import make_run


@pytest.fixture
def runs(tmp_path):
    base_model = make_stack_onnx(tmp_path / "base" / "m.onnx", layers=1, width=16)
    cand_model = make_stack_onnx(tmp_path / "cand" / "m.onnx", layers=2, width=16)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({"budgets": [{"model": "tiny", "peak_rss_mb_max": 10000}]}))
    return tmp_path, base_model, cand_model, budgets


def _gate(run, budgets, *extra):
    return main(["gate", str(run), "--budgets", str(budgets), *extra])


def test_a_runtime_version_that_differs_is_a_labelled_run_against_run_row_and_no_paired_refuses_it(runs, capsys):
    root, base_model, cand_model, budgets = runs
    make_run(root / "base-run", base_model, version="1.0.0")
    make_run(root / "run", cand_model, scale=1.5, seed=1)  # 50% slower on every process: run against run flags it
    code = _gate(root / "run", budgets, "--baseline", str(root / "base-run"), "--out", str(root / "out"))
    gate_json = json.loads((root / "out" / "gate.json").read_text())
    [row] = gate_json["regressions"]
    assert row["design"] == "run-against-run" and "runtime version differs" in row["design_note"]
    assert code == gate_json["exit_code"] == (1 if row["verdict"] == "REGRESSION" else 0)
    assert "| run-against-run | `tiny.fp32" in (root / "out" / "gate.md").read_text()
    capsys.readouterr()
    assert _gate(root / "run", budgets, "--baseline", str(root / "base-run"), "--no-paired") == 2
    assert "vs baseline 1.0.0" in capsys.readouterr().err  # the old behaviour: refused, naming what differs


def test_bad_paired_looks_are_a_usage_error(runs, capsys):
    root, base_model, cand_model, budgets = runs
    make_run(root / "base-run", base_model)
    make_run(root / "run", cand_model)
    for looks in ("8,x", "16,8", "1"):
        assert _gate(root / "run", budgets, "--baseline", str(root / "base-run"), "--paired-looks", looks) == 2
        assert "--paired-looks" in capsys.readouterr().err


@pytest.mark.slow
def test_the_paired_check_runs_processes_saves_them_under_the_output_and_maps_its_verdict_to_the_exit_code(runs):
    """Structure only: which verdict real timing gives is not asserted."""
    root, base_model, cand_model, budgets = runs
    make_run(root / "base-run", base_model)
    make_run(root / "run", cand_model)
    code = _gate(root / "run", budgets, "--baseline", str(root / "base-run"), "--paired-looks", "3", "--out", str(root / "out"))
    gate_json = json.loads((root / "out" / "gate.json").read_text())
    [row] = gate_json["regressions"]
    assert row["design"] == "paired" and (root / "out" / row["paired_group"]).is_file()
    assert list((root / "out" / "gate-paired").glob("*.samples.npz"))
    assert code == gate_json["exit_code"] == {"REGRESSION": 1, "INCONCLUSIVE": 3}.get(row["verdict"], 0)
    md = (root / "out" / "gate.md").read_text()
    assert f"| {row['verdict']} | paired |" in md
