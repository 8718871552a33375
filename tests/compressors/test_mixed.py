"""Mixed-precision int8: the sensitivity scan, the fp32 fallback, and ISA-aware records."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.compressors.base import cache_key
from odbench.compressors.int8_graph import WeightFormat, quantizable_matmuls, quantize_nodes, quantize_weight
from odbench.compressors.isa import int8_isa, isa_mismatch_warning
from odbench.compressors.mixed import MixedInt8, MixedInt8Config, _session, output_cosine, sensitivity_scan
from odbench.compressors.prune import MagnitudePruneConfig
from odbench.core.onnx_tools import ort_run_fn
from tests.compressors.conftest import CORRUPT_NODE

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them

FAST = dict(calib_samples=16, scan_samples=16, max_fp32=2, smooth_alpha=None)


def test_scan_ranks_the_corrupted_layer_first(tiny_transformer):
    base, task, _ = tiny_transformer
    model = onnx.load(base.path)
    targets = quantizable_matmuls(model)
    assert [t.node for t in targets] == ["/l0/MatMul", "/l1/MatMul", "/l2/MatMul"]
    assert all(t.bias for t in targets)  # the bias Adds are fused
    feeds = task.calibration_feeds(16)
    ref_run = _session(model)
    reference = [ref_run(f) for f in feeds]
    ranking = sensitivity_scan(model, targets, WeightFormat(8, True, True), feeds, reference)
    assert ranking[0][0] == CORRUPT_NODE
    assert ranking[0][1] > 10 * ranking[1][1]


def test_quantized_nodes_run_and_stay_close(tiny_transformer):
    base, task, _ = tiny_transformer
    model = onnx.load(base.path)
    clean = [t for t in quantizable_matmuls(model) if t.node != CORRUPT_NODE]
    q = quantize_nodes(model, clean, WeightFormat(7, True, True))
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("DynamicQuantizeMatMul") == 2 and ops.count("MatMul") == 1
    feeds = task.calibration_feeds(8)
    reference = [_session(model)(f) for f in feeds]
    assert output_cosine(_session(q), feeds, reference) > 0.99


@pytest.mark.parametrize("symmetric", [True, False])
def test_weight_quantization_round_trips_within_half_a_step(symmetric):
    w = np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)
    q, scale, zp = quantize_weight(w, WeightFormat(8, True, symmetric))
    back = (q.astype(np.float32) - zp.astype(np.float32)) * scale
    assert np.all(np.abs(back - w) <= scale / 2 + 1e-6)
    if symmetric:
        assert q.dtype == np.int8 and np.abs(q).max() <= 127
    else:
        assert q.dtype == np.uint8


def test_mixed_keeps_the_corrupted_layer_fp32_and_meets_the_goal(tiny_transformer):
    base, task, out = tiny_transformer
    v = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-avx2", **FAST), out)
    assert v.parent == base.id and v.compressor == "int8-mixed"
    assert v.config["fp32_nodes"] == [CORRUPT_NODE]
    assert v.config["sensitivity_top"][0][0] == CORRUPT_NODE
    assert v.accuracy["fidelity_cosine"] > 0.99
    assert not any("NOT met" in n for n in v.notes)
    ops = [n.op_type for n in onnx.load(v.path).graph.node]
    assert ops.count("DynamicQuantizeMatMul") == 2
    np.testing.assert_allclose(ort_run_fn(v.path)(task.eval_feeds[0])[0], task.reference[0][0], atol=0.1)


def test_the_cache_key_and_record_follow_the_target_isa(tiny_transformer):
    base, task, out = tiny_transformer
    a = MixedInt8Config(target_isa="x86-vnni", weight_bits=8)
    b = MixedInt8Config(target_isa="x86-avx2", weight_bits=7)
    assert cache_key(base, "int8-mixed", a, 1) != cache_key(base, "int8-mixed", b, 1)
    vnni = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-vnni", **FAST), out)
    avx2 = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-avx2", **FAST), out)
    assert vnni.path != avx2.path
    assert (vnni.config["target_isa"], vnni.config["weight_bits"]) == ("x86-vnni", 8)
    assert (avx2.config["target_isa"], avx2.config["weight_bits"]) == ("x86-avx2", 7)
    warning = isa_mismatch_warning(vnni, "x86-avx2")
    assert warning and "x86-vnni" in warning and "saturate" in warning
    assert isa_mismatch_warning(vnni, "avx2 avx512f avx512_vnni") is None  # raw host flags work too
    assert isa_mismatch_warning(avx2, "x86-avx2") is None
    assert isa_mismatch_warning(base, "x86-avx2") is None  # fp32: no ISA recorded


def test_int8_isa_classes():
    assert int8_isa(["avx2", "fma"]) == "x86-avx2"
    assert int8_isa(["avx2", "avx512f", "avx512_vnni"]) == "x86-vnni"
    assert int8_isa(["avx2", "avx_vnni"]) == "x86-vnni"
    assert int8_isa(["neon", "asimddp"], arch="aarch64") == "arm"


def test_an_unknown_target_isa_is_refused(tiny_transformer):
    base, task, out = tiny_transformer
    with pytest.raises(ValueError, match="unknown int8 target ISA 'avx9'"):
        MixedInt8().compress(base, task, MixedInt8Config(target_isa="avx9", **FAST), out)


def test_uint8_weights_keep_8_bits_on_avx2_and_do_not_warn_of_saturation(tiny_transformer):
    base, task, out = tiny_transformer
    v = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-vnni", symmetric=False, **FAST), out)
    u = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-avx2", symmetric=False, **FAST), out)
    assert v.config["weight_bits"] == u.config["weight_bits"] == 8
    assert "saturate" not in isa_mismatch_warning(v, "x86-avx2")
    assert v.accuracy["fidelity_cosine"] > 0.99


def test_recipe_steps_record_their_target_runtimes(tiny_transformer):
    from odbench.compressors.build import build_recipe
    from odbench.compressors.recipes import Step, built_for

    base, task, out = tiny_transformer
    steps = (Step("m", "int8-mixed", MixedInt8Config(**FAST), runtimes=("onnxruntime",)),
             Step("p", "prune-magnitude", MagnitudePruneConfig(0.5)))
    built = build_recipe(base, steps, task, out, log=lambda m: None)
    mixed, pruned = (b.variant for b in built)
    assert mixed.config["target_runtimes"] == ["onnxruntime"]
    assert built_for(mixed, "onnxruntime") and not built_for(mixed, "openvino")
    assert built_for(pruned, "openvino") and built_for(base, "openvino")
    again = build_recipe(base, steps, task, out, log=lambda m: None)  # a cache hit keeps the record
    assert again[0].variant.config["target_runtimes"] == ["onnxruntime"]


def test_the_search_reaches_op_wise_fallback_and_records_its_trials(tiny_transformer):
    """Only keeping the one corrupted MatMul in fp32 meets the goal; all int8 fails it: the search must
    get to the op-wise stage (k=1 of 3) and say how many trials it ran, on which split, and in what time."""
    base, task, out = tiny_transformer
    cfg = MixedInt8Config(target_isa="x86-avx2", **{**FAST, "max_fp32": 3})
    v = MixedInt8().compress(base, task, cfg, out)
    trials = {t["fp32_matmuls"]: t["ok"] for t in v.config["search"] if "fp32_matmuls" in t}
    assert trials[0] is False and trials[1] is True
    assert v.config["fp32_nodes"] == [CORRUPT_NODE]
    assert v.config["trials"] == len(trials) >= 2 and v.config["scan_trials"] == 3  # k=3 (all fp32) needs no trial
    assert v.config["stopped_by_budget"] is False and v.config["tuning_s"] >= 0
    assert any("fallback trials" in n and CORRUPT_NODE in n for n in v.notes)


def test_a_spent_time_budget_stops_the_search_on_a_point_that_meets_the_goal(tiny_transformer):
    base, task, out = tiny_transformer
    cfg = MixedInt8Config(target_isa="x86-avx2", **{**FAST, "max_fp32": 3, "time_budget_s": 0.0})
    v = MixedInt8().compress(base, task, cfg, out)
    assert v.config["stopped_by_budget"] is True
    assert v.config["scan_trials"] == 0 and v.config["trials"] == 0  # the budget bounds the scan and the first trials too
    assert len(v.config["fp32_nodes"]) == 3  # every MatMul fp32: the only point known to meet the goal
    assert not any("NOT met" in n for n in v.notes)


def test_a_spent_budget_with_a_bound_below_all_fp32_says_the_goal_is_not_verified(tiny_transformer):
    base, task, out = tiny_transformer
    cfg = MixedInt8Config(target_isa="x86-avx2", **{**FAST, "max_fp32": 2, "time_budget_s": 0.0})
    v = MixedInt8().compress(base, task, cfg, out)
    assert v.config["stopped_by_budget"] is True and v.config["goal_met_on_tuning"] is False
    assert any("NOT met" in n and "time budget" in n for n in v.notes)


def test_ranking_and_goal_check_read_disjoint_tuning_samples(tiny_transformer, monkeypatch):
    """The scan ranks on one part of the task's calibration feeds and the goal is checked on another."""
    import odbench.compressors.mixed as MX

    base, task, out = tiny_transformer
    seen = {"scan": [], "check": []}
    real_scan, real_cos = MX.sensitivity_scan, MX.output_cosine
    in_scan = []

    def scan(model, targets, fmt, feeds, reference, deadline=None):
        seen["scan"].extend(id(f) for f in feeds)
        in_scan.append(True)
        try:
            return real_scan(model, targets, fmt, feeds, reference, deadline)
        finally:
            in_scan.pop()

    def cosine(run, feeds, reference):
        if not in_scan:
            seen["check"].extend(id(f) for f in feeds)
        return real_cos(run, feeds, reference)

    given = task.calibration_feeds(24)
    monkeypatch.setattr(task, "calibration_feeds", lambda n: given[:n])
    monkeypatch.setattr(MX, "sensitivity_scan", scan)
    monkeypatch.setattr(MX, "output_cosine", cosine)
    v = MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-avx2", calib_samples=8, scan_samples=8, check_samples=8,
                                                         max_fp32=None, smooth_alpha=None), out)
    assert v.config["samples"] == {"calibration": 8, "scan": 8, "check": 8}
    assert set(seen["scan"]) == {id(f) for f in given[8:16]} and set(seen["check"]) == {id(f) for f in given[16:24]}


def test_the_default_bound_lets_the_search_reach_every_matmul():
    assert MixedInt8Config().max_fp32 is None


class BoundedTask:
    """The tiny transformer's task with a fidelity record that has lower bounds (like the encoder's):
    per-feed output cosine to fp32 on 16 tuning feeds, its mean and its one-sided 95% lower bound."""

    def __init__(self, task, fp32_path):
        self.task, self.feeds = task, task.calibration_feeds(64)[48:]
        ref = ort_run_fn(fp32_path)
        self.reference = [ref(f) for f in self.feeds]
        self.seen = []

    def __getattr__(self, name):
        return getattr(self.task, name)

    def tuning_accuracy(self, run):
        from odbench.models.metrics import lower_bound_mean

        per = np.array([output_cosine(run, [f], [r]) for f, r in zip(self.feeds, self.reference)])
        rec = {"cosine": float(per.mean()), "cosine_lcb95": lower_bound_mean(per)}
        self.seen.append(rec)
        return rec


def test_the_search_judges_the_lower_bound_when_the_task_has_one(tiny_transformer):
    """k=1 (the corrupted MatMul fp32) is the least the old rule keeps. With the line set between its mean
    and its lower bound, the margin refuses it (a point at the line is not selected); under the bound, it is kept."""
    base, task, out = tiny_transformer
    bounded = BoundedTask(task, base.path)
    model = onnx.load(base.path)
    clean = [t for t in quantizable_matmuls(model) if t.node != CORRUPT_NODE]
    k1 = bounded.tuning_accuracy(_session(quantize_nodes(model, clean, WeightFormat(7, True, True))))
    assert k1["cosine_lcb95"] < k1["cosine"] < 1.0
    fast = {**FAST, "max_fp32": 3, "goal_cosine": 0.0}
    line = (k1["cosine"] + k1["cosine_lcb95"]) / 2
    v = MixedInt8().compress(base, bounded, MixedInt8Config(target_isa="x86-avx2", goals=(("cosine", line),), **fast), out)
    assert len(v.config["fp32_nodes"]) > 1 and v.config["goal_met_on_tuning"] is True
    refused = next(t for t in v.config["search"] if t.get("fp32_matmuls") == 1)
    assert refused["ok"] is False and refused["cosine"] >= line > refused["cosine_lcb95"]
    kept = MixedInt8().compress(base, bounded, MixedInt8Config(target_isa="x86-avx2", goals=(("cosine", k1["cosine_lcb95"] - 1e-6),),
                                                               **fast), out)
    assert kept.config["fp32_nodes"] == [CORRUPT_NODE]
