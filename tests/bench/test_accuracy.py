"""Accuracy budgets as non-inferiority tests (bench/accuracy.py through gate.py), and per-runtime accuracy."""
from __future__ import annotations

import pytest

from odbench.bench import accuracy as A
from odbench.bench import gate
from odbench.bench.budgets import Budget, BudgetFile
from odbench.core.records import ProcessSamples, Result, Variant
from odbench.runtimes import get_runtime

BASE = {"auc": 0.70, "auc_lo": 0.69, "auc_hi": 0.71, "delta_auc": 0.0, "delta_auc_lo": 0.0, "delta_auc_hi": 0.0,
        "cosine": 1.0, "cosine_lo": 1.0, "cosine_hi": 1.0}


def acc(delta: float, lo: float, hi: float, cosine: float = 0.999) -> dict[str, float]:
    return {"auc": 0.70 + delta, "delta_auc": delta, "delta_auc_lo": lo, "delta_auc_hi": hi,
            "cosine": cosine, "cosine_lo": cosine - 0.001, "cosine_hi": min(cosine + 0.001, 1.0)}


def test_a_drop_interval_straddling_the_cap_is_inconclusive():
    # cap 1% of 0.70 = 0.007; delta in [-0.010, -0.004]: the drop interval [0.57%, 1.43%] straddles it
    j = A.judge_drop("auc", acc(-0.007, -0.010, -0.004), BASE, cap=0.01)
    assert j.verdict == "INCONCLUSIVE" and j.lo < 0.01 < j.hi and "straddles" in j.reason


def test_pass_and_fail_need_the_whole_interval_on_one_side():
    assert A.judge_drop("auc", acc(-0.001, -0.004, 0.002), BASE, cap=0.01).verdict == "PASS"  # upper bound 0.57% < 1%
    assert A.judge_drop("auc", acc(-0.020, -0.026, -0.014), BASE, cap=0.01).verdict == "FAIL"  # lower bound 2% > 1%
    # the same point drop (0.14%) with a wide interval cannot PASS
    assert A.judge_drop("auc", acc(-0.001, -0.030, 0.028), BASE, cap=0.01).verdict == "INCONCLUSIVE"


def test_lower_is_better_and_point_only_variants():
    base = {"logloss": 0.50}
    j = A.judge_drop("logloss", {"logloss": 0.52}, base, cap=0.01)
    assert j.verdict == "FAIL" and j.drop == pytest.approx(0.04) and "point estimate only" in j.reason
    j = A.judge_drop("logloss", {"logloss": 0.49, "delta_logloss_lo": -0.02, "delta_logloss_hi": 0.001}, base, cap=0.01)
    assert j.verdict == "PASS" and j.hi == pytest.approx(0.002)


def test_a_budget_names_its_metric_or_kind():
    v = acc(-0.001, -0.004, 0.002, cosine=0.95)  # task metric fine, fidelity 5% off
    assert A.judge_budget(v, BASE, 0.01, None, "task").verdict == "PASS"
    fid = A.judge_budget(v, BASE, 0.01, None, "fidelity")
    assert fid.verdict == "FAIL" and fid.metric == "cosine"
    assert A.judge_budget(v, BASE, 0.01, "recall@10", "task").verdict == "ERROR"  # not recorded: said so
    with pytest.raises(ValueError, match="fidelity metric"):
        Budget(accuracy_drop_max=0.01, accuracy_metric="cosine", accuracy_kind="task")


def test_gate_reports_inconclusive_for_a_straddling_drop():
    variants = {
        "m/fp32": Variant(id="m/fp32", model="m", path="x", sha256="a", size_bytes=1, accuracy=BASE),
        "m/int8": Variant(id="m/int8", model="m", path="y", sha256="b", size_bytes=1, accuracy=acc(-0.007, -0.010, -0.004), parent="m/fp32"),
    }
    r = Result(cell_id="c", model="m", variant_id="m/int8", runtime="onnxruntime", profile="host", measured_on="host", scenario="s",
               items_per_inference=1, processes=(ProcessSamples((1.0,) * 50),), verdict="OK", gating=True)
    budgets = BudgetFile(budgets=(Budget(accuracy_drop_max=0.01, accuracy_metric="auc"),))
    (v,) = gate.evaluate([r], variants, budgets)
    assert v.verdict == "INCONCLUSIVE" and "straddles" in v.reason


def test_runtime_accuracy_is_that_runtimes_own_and_cached(tmp_path):
    """A runtime whose outputs differ gets its own figure; the second call reads the cache."""
    from odbench.models.ctr import CtrConfig, CtrModel

    model = CtrModel(CtrConfig(hash_rows=2000, emb_dim=4, bottom=(8,), top=(8,), epochs=1, id_hash="int64"))
    variant = model.build(tmp_path, log=lambda *_: None)
    ort_acc = A.runtime_accuracy(model, variant, "onnxruntime", tmp_path)
    assert ort_acc["auc"] == pytest.approx(variant.accuracy["auc"])
    assert len(list((tmp_path / "accuracy").glob("*.json"))) == 1
    assert A.runtime_accuracy(model, variant, "onnxruntime", tmp_path) == ort_acc
    assert A.cached_runtime_accuracy(variant, "onnxruntime", tmp_path) == ort_acc
    assert A.cached_runtime_accuracy(variant, "mnn", tmp_path) is None  # never evaluated there
    ok, why = get_runtime("openvino").available()
    if not ok:
        pytest.skip(why)
    ov_acc = A.runtime_accuracy(model, variant, "openvino", tmp_path)  # the int64 hash wraps there: other rows
    assert ov_acc["auc"] != pytest.approx(ort_acc["auc"], abs=1e-4)
    assert len(list((tmp_path / "accuracy").glob("*.json"))) == 2
