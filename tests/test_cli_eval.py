"""`odbench run --onnx model.onnx --eval eval.yaml` end to end, as a user runs it: variants calibrated on the
tuning part, every row scored on the test part from its own runtime's outputs, pruning labelled."""
from __future__ import annotations

import csv
import json

import pytest

from odbench.cli import main as cli_main
from odbench.models.base import split_record
from odbench.models.user_data import load_eval
from tests.models.user_fixtures import retrieval_set


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_run_with_an_evaluation_set_scores_each_row_on_its_own_runtime(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ODBENCH_CACHE", str(tmp_path / "cache"))
    model, _, ev = retrieval_set(tmp_path / "d")
    out = tmp_path / "run"
    code = cli_main(["run", "--onnx", str(model), "--eval", str(ev), "--recipe", "full", "--runtime",
                     "onnxruntime:graph_optimization=basic", "--preset", "smoke", "--no-overhead", "--out", str(out), "-q"])
    assert code in (0, 1), capsys.readouterr().err
    rows = list(csv.DictReader((out / "table.csv").open()))
    by_variant = {r["variant"]: r for r in rows}
    assert "prune50-global-noft (no fine-tuning)" in by_variant  # full-only, and labelled in the table
    assert not [v for v in by_variant if "int8" in v and "no fine-tuning" in v]
    ok = [r for r in rows if r["verdict"] == "OK"]
    assert {"as-is", "int8-dyn", "int8-static-matmul-gemm-fout"} <= {r["variant"] for r in ok}
    for r in ok:  # the user's metric, from this runtime's own outputs, with the paired delta vs the user's fp32
        assert "ndcg@10=" in r["accuracy"] and "[" in r["accuracy"], r
        assert r["scenario"] == "retrieval-b1"
        assert "ndcg@10=" in r["acc_delta_vs_fp32"], r
    short = (out / "your-data.md").read_text()  # the short table: p50, the user's metric, the paired delta
    assert "ndcg@10 [95% CI]" in short and "| prune50-global-noft (no fine-tuning) |" in short and "(the reference)" not in short
    records = json.loads((out / "accuracy.json").read_text())["records"]
    assert {rec["source"] for rec in records} == {"evaluated"}  # not ONNX Runtime's build figure: options differ
    assert all(rec["accuracy"] and "delta_ndcg@10_lo" in rec["accuracy"] for rec in records)
    data = load_eval(ev)
    tuning = split_record("tuning", data.ids("tuning"))["sha256"]
    variants = [v for v in json.loads((out / "variants.json").read_text()) if v.get("built", True)]  # skip not-built steps
    base = next(v for v in variants if v["parent"] is None)
    assert base["config"]["test"]["sha256"] == split_record("test", data.ids("test"))["sha256"]
    for v in variants:
        if v["parent"] is not None:
            assert v["config"]["tuned_on"]["sha256"] == tuning and v["config"]["tuned_on"]["unit"] == "queries"
    # the gate's non-inferiority accuracy budget works on the user's metric
    (tmp_path / "budgets.yaml").write_text("version: 1\nbudgets:\n  - name: mine\n    model: onnx-model-*\n"
                                          "    accuracy_drop_max: 0.5\n    accuracy_metric: ndcg@10\n")
    capsys.readouterr()
    code = cli_main(["gate", str(out), "--budgets", str(tmp_path / "budgets.yaml")])
    gate = capsys.readouterr().out
    assert "ndcg@10 (task)" in gate and "paired 95% interval" in gate, gate
    assert code in (0, 3), gate

