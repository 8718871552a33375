"""Accuracy budgets as non-inferiority tests (verdicts/accuracy.py through gate.py), and per-runtime accuracy."""
from __future__ import annotations

import json

import pytest

from odbench.core.records import ProcessSamples, Result, Variant, sha256_file
from odbench.runtimes import get_runtime
from odbench.verdicts import accuracy as A
from odbench.verdicts import gate
from odbench.verdicts.budgets import Budget, BudgetFile

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
        "m/int8": Variant(id="m/int8", model="m", path="y", sha256="b", size_bytes=1, accuracy=acc(-0.007, -0.010, -0.004),
                          parent="m/fp32"),
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


# ------------------------------------------------------------------ accuracy of a run's rows


def _tiny_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


class FakeModel:
    """A zoo-model stand-in: its 'task metric' is the sum of the runtime's outputs on one feed."""

    name = "fake"
    primary_metric = "score"

    def __init__(self):
        self.calls = []

    def evaluate(self, run, cache):
        import numpy as np

        out = run({"x": np.array([[1.0, -2.0, 3.0, -4.0]], dtype=np.float32)})
        self.calls.append(1)
        return {"score": float(np.asarray(next(iter(out.values())) if isinstance(out, dict) else out[0]).sum())}


def _cell(variant_id, runtime, verdict="OK", options=None):
    return Result(cell_id=f"{variant_id}__{runtime}", model="fake", variant_id=variant_id, runtime=runtime, profile="host",
                  measured_on="device", scenario="s", items_per_inference=1, processes=(ProcessSamples((1.0,)),),
                  verdict=verdict, runtime_options=options or {})


def test_measure_run_accuracy_writes_the_records_and_a_rerun_hits_the_cache(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    v = Variant(id="fake/fp32", model="fake", path=str(tmp_path / "m.onnx"), sha256=sha256_file(tmp_path / "m.onnx"), size_bytes=1)
    results = [_cell(v.id, "onnxruntime"), _cell(v.id, "onnxruntime"), _cell(v.id, "null"), _cell(v.id, "mnn", "SKIPPED"),
               _cell(v.id, "faulty"), _cell(v.id, "nosuch-runtime", "FAIL"), None]
    model, lines, out = FakeModel(), [], tmp_path / "run"
    recs = A.measure_run_accuracy(results, {v.id: v}, {"fake": model}, tmp_path / "cache", out, lines.append)
    assert [(r.runtime, r.accuracy) for r in recs] == [("onnxruntime", {"score": 4.0}), ("nosuch-runtime", None)]
    assert "nosuch-runtime" in recs[1].error and "\n" not in recs[1].error  # the one-line reason; the run went on
    assert len(model.calls) == 1 and len(lines) == 2 and not recs[0].cached
    stored = A.load_run_accuracy(out)
    assert stored[A.accuracy_key(v.id, "onnxruntime", {})].accuracy == {"score": 4.0}
    assert json.loads((out / A.ACCURACY_FILE).read_text())["version"] == A.ACCURACY_FILE_VERSION
    again = A.measure_run_accuracy(results[:1], {v.id: v}, {"fake": model}, tmp_path / "cache", out, lines.append)
    assert len(model.calls) == 1 and again[0].cached and "(cached)" in lines[-1]  # evaluated once only
    assert len(A.load_run_accuracy(out)) == 2  # the earlier records are kept
    user = Variant(id="user/x", model="user", path=v.path, sha256=v.sha256, size_bytes=1)
    assert A.measure_run_accuracy([_cell(user.id, "onnxruntime")], {user.id: user}, {"fake": model}, tmp_path / "cache",
                                  out, lines.append) == []  # not a zoo model: no task data, said in the log
    assert "not a zoo model" in lines[-1]


def test_an_onnx_runtime_row_reuses_the_builds_own_figure_and_other_runtimes_are_evaluated(tmp_path):
    """The build scored the variant on ONNX Runtime already: no second evaluation there (make run's time),
    unless the variant was built for another ISA; OpenVINO is always evaluated on its own outputs."""
    _tiny_onnx(tmp_path / "m.onnx")
    sha = sha256_file(tmp_path / "m.onnx")
    built = Variant(id="fake/fp32", model="fake", path=str(tmp_path / "m.onnx"), sha256=sha, size_bytes=1, accuracy={"score": 7.0})
    model, out = FakeModel(), tmp_path / "run"
    (ort,) = A.measure_run_accuracy([_cell(built.id, "onnxruntime")], {built.id: built}, {"fake": model}, tmp_path / "c", out, print)
    assert ort.source == "build" and ort.accuracy == {"score": 7.0} and model.calls == []
    (ov,) = A.measure_run_accuracy([_cell(built.id, "openvino")], {built.id: built}, {"fake": model}, tmp_path / "c", out, print)
    assert ov.source == "evaluated" and ov.accuracy == {"score": 4.0} and len(model.calls) == 1
    elsewhere = Variant(id="fake/int8", model="fake", path=built.path, sha256=sha, size_bytes=1, accuracy={"score": 7.0},
                        config={"target_isa": "no-such-isa"})
    (other,) = A.measure_run_accuracy([_cell(elsewhere.id, "onnxruntime")], {elsewhere.id: elsewhere}, {"fake": model},
                                      tmp_path / "c2", out, print)
    assert other.source == "evaluated" and len(model.calls) == 2
    assert A.load_run_accuracy(out)[A.accuracy_key(built.id, "onnxruntime", {})].source == "build"


def _budget_run(records):
    variants = {
        "m/fp32": Variant(id="m/fp32", model="m", path="x", sha256="a", size_bytes=1, accuracy=BASE),
        "m/int8": Variant(id="m/int8", model="m", path="y", sha256="b", size_bytes=1, accuracy=acc(-0.001, -0.004, 0.002), parent="m/fp32"),
    }
    results = [Result(cell_id=f"c-{rt}", model="m", variant_id="m/int8", runtime=rt, profile="host", measured_on="host", scenario="s",
                      items_per_inference=1, processes=(ProcessSamples((1.0,) * 50),), verdict="OK", gating=True)
               for rt in ("onnxruntime", "openvino", "mnn")]
    run_acc = None if records is None else {A.accuracy_key(r.variant_id, r.runtime, {}): r for r in records}
    budgets = BudgetFile(budgets=(Budget(accuracy_drop_max=0.01, accuracy_metric="auc"),))
    return {v.cell_id: v for v in gate.evaluate(results, variants, budgets, run_acc)}


def test_the_gate_judges_each_runtimes_own_accuracy_and_never_passes_an_unmeasured_row():
    ov = A.RuntimeAccuracy("m/int8", "b", "openvino", "1", "avx2", "", acc(-0.05, -0.06, -0.04))  # OV reads other rows
    verdicts = _budget_run([A.RuntimeAccuracy("m/int8", "b", "onnxruntime", "1", "avx2", "", acc(-0.001, -0.004, 0.002)), ov])
    assert verdicts["c-onnxruntime"].verdict == "PASS"
    assert verdicts["c-openvino"].verdict == "FAIL" and "0.6500" in verdicts["c-openvino"].reason
    assert verdicts["c-mnn"].verdict == "ERROR" and "not measured on mnn" in verdicts["c-mnn"].reason
    old = _budget_run(None)  # a run without accuracy.json: ORT's build-time figure on ORT rows only
    assert old["c-onnxruntime"].verdict == "PASS"
    assert old["c-openvino"].verdict == "ERROR" and "not measured on openvino" in old["c-openvino"].reason
