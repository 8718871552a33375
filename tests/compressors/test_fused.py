"""The fused encoder on a tiny random BERT (no download): the fused fp32 graph equals the SDPA export
within 1e-5, holds the fused operators, and quantizes to QAttention."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from odbench.compressors.fused import FusedConfig, FusedEncoder
from odbench.core.records import TorchTask
from tests.compressors.conftest import baseline_variant, tiny_pool_bert

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime.transformers.optimizer")
pytestmark = pytest.mark.slow  # torch exports of a (tiny) transformer: ~15 s on 2 idle cores, a minute under load


def tiny_bert():
    return tiny_pool_bert()


def export(module, path):
    ids = torch.randint(1, 120, (2, 7))
    with torch.no_grad():
        torch.onnx.export(module, (ids, torch.ones_like(ids)), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}, "embedding": {0: "b"}})


class Feeds:
    """The task: tuning feeds (batch 1, own lengths, and a padded batch) and fidelity on other feeds."""

    name = "tiny-bert"

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.feeds = [{"input_ids": rng.integers(1, 120, (1, n)).astype(np.int64), "attention_mask": np.ones((1, n), np.int64)}
                      for n in rng.integers(3, 20, 16)]
        mask = np.ones((3, 12), np.int64)
        mask[1, 7:] = mask[2, 4:] = 0
        self.feeds.append({"input_ids": rng.integers(1, 120, (3, 12)).astype(np.int64), "attention_mask": mask})

    def calibration_feeds(self, n):
        return self.feeds[:n] + self.feeds[-1:]

    def evaluate(self, run):
        return {"max_abs": 0.0}

    def tuning_metric(self, run):
        return 1.0


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fused")
    module = tiny_bert()
    export(module, tmp / "sdpa.onnx")
    task = TorchTask(module=module, batches=None, loss=None, export=lambda m, p: export(m, Path(p)), prunable=None, make_student=None)
    return baseline_variant(tmp / "sdpa.onnx"), task, tmp


def test_the_fused_graph_equals_the_sdpa_export_within_1e_5(parent):
    from odbench.core.onnx_tools import ort_run_fn

    base, torch_task, tmp = parent
    v = FusedEncoder().compress(base, Feeds(0), FusedConfig(), tmp / "out", torch_task=torch_task)
    ops = [n.op_type for n in onnx.load(v.path).graph.node]
    assert ops.count("Attention") == 2 and ops.count("SkipLayerNormalization") == 4 and "EmbedLayerNormalization" in ops
    assert v.config["fused_max_abs_diff"] <= 1e-5
    a, b = ort_run_fn(base.path), ort_run_fn(v.path)
    for f in Feeds(1).feeds:  # feeds the check did not use, the padded batch among them
        np.testing.assert_allclose(b(f)[0], a(f)[0], atol=1e-5)


def test_dynamic_int8_on_the_fused_graph_gives_qattention(parent):
    base, torch_task, tmp = parent
    v = FusedEncoder().compress(base, Feeds(0), FusedConfig(quantize="dynamic", target_isa="x86-avx2"), tmp / "out", torch_task=torch_task)
    ops = [n.op_type for n in onnx.load(v.path).graph.node]
    assert ops.count("QAttention") == 2 and ("DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops)
    assert v.config["weight_bits"] == 7 and v.config["target_isa"] == "x86-avx2"
    only_attn = FusedEncoder().compress(base, Feeds(0), FusedConfig(quantize="dynamic", target_isa="x86-avx2", fp32_op_types=("MatMul",)),
                                        tmp / "out", torch_task=torch_task)
    ops = [n.op_type for n in onnx.load(only_attn.path).graph.node]
    assert ops.count("QAttention") == 2 and "MatMulInteger" not in ops and "DynamicQuantizeMatMul" not in ops
    assert only_attn.id != v.id and only_attn.id.endswith("-matmul-fp32")  # its own name in every table


def test_a_module_without_a_transformer_is_refused(parent, tmp_path):
    from odbench.compressors.base import CompressionError

    base, torch_task, _ = parent
    plain = TorchTask(module=torch.nn.Linear(2, 2), batches=None, loss=None, export=None, prunable=None, make_student=None)
    with pytest.raises(CompressionError, match="no transformers model"):
        FusedEncoder().compress(base, Feeds(0), FusedConfig(), tmp_path, torch_task=plain)
    with pytest.raises(CompressionError, match="needs a TorchTask"):
        FusedEncoder().compress(base, Feeds(0), FusedConfig(), tmp_path)


def _readers(model, name):
    return [n for n in model.graph.node if name in n.input]


def test_smoothquant_folds_into_the_layer_norms_without_a_mul_and_keeps_the_fused_outputs(parent, tmp_path):
    from odbench.compressors.int8_graph import activation_absmax
    from odbench.compressors.smooth_fold import fold_smoothquant, smooth_sites
    from odbench.core.onnx_tools import ort_run_fn

    base, torch_task, tmp = parent
    fused = onnx.load(FusedEncoder().compress(base, Feeds(0), FusedConfig(), tmp / "out", torch_task=torch_task).path)
    sites = smooth_sites(fused)
    kinds = sorted(next(n.op_type for n in fused.graph.node if n.name == s.weights[0][0]) for s in sites)
    assert kinds == ["Attention", "Attention", "MatMul", "MatMul"]  # per layer: the Q/K/V input and the FFN input
    assert all(s.duplicated for s in sites)  # post-LN BERT: every LayerNorm output is also a residual
    folded = onnx.ModelProto()
    folded.CopyFrom(fused)
    act = activation_absmax(fused, [s.x for s in sites], Feeds(0).calibration_feeds(16))
    fold_smoothquant(folded, act, 0.5)
    ops = lambda m: [n.op_type for n in m.graph.node]  # noqa: E731
    assert ops(folded).count("Mul") == ops(fused).count("Mul")  # no Mul per shared input
    ln = ("SkipLayerNormalization", "EmbedLayerNormalization")
    assert sum(ops(folded).count(t) for t in ln) == sum(ops(fused).count(t) for t in ln) + len(sites)
    before, after = ({i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer} for m in (fused, folded))
    for s in sites:  # the scales are not trivial: the weights moved by far more than the tolerance below
        assert all(np.max(np.abs(after[w] - before[w])) > 1e-2 for _, w in s.weights)
        assert all(_readers(folded, s.x) and n.input[0] == f"{s.x}_smoothed" for n in folded.graph.node if n.name in dict(s.weights))
    onnx.save(folded, str(tmp_path / "folded.onnx"))
    onnx.save(fused, str(tmp_path / "fused.onnx"))
    a, b = ort_run_fn(tmp_path / "fused.onnx"), ort_run_fn(tmp_path / "folded.onnx")
    for f in Feeds(1).feeds:  # X W == (X / s)(s W): the folded graph computes the unsmoothed math
        np.testing.assert_allclose(b(f)[0], a(f)[0], atol=1e-4)


def test_smoothed_dynamic_int8_quantizes_the_qkv_input_once_with_one_scale(parent):
    from odbench.core.onnx_tools import ort_run_fn

    base, torch_task, tmp = parent
    cfg = FusedConfig(quantize="dynamic", target_isa="x86-avx2", smooth_alpha=0.5)
    v = FusedEncoder().compress(base, Feeds(0), cfg, tmp / "out", torch_task=torch_task)
    plain = FusedEncoder().compress(base, Feeds(0), FusedConfig(quantize="dynamic", target_isa="x86-avx2"), tmp / "out",
                                    torch_task=torch_task)
    assert "-sq0.5-" in v.id and v.config["smooth_max_abs_diff"] <= 1e-4 and v.config["second_layer_norms"] == 4
    model = onnx.load(v.path)
    producer = {o: n for n in model.graph.node for o in n.output}
    qatt = [n for n in model.graph.node if n.op_type == "QAttention"]
    assert len(qatt) == 2
    for n in qatt:  # Q, K and V read one quantized input and its one scale, from one DynamicQuantizeLinear
        dq = producer[n.input[0]]
        assert dq.op_type == "DynamicQuantizeLinear" and n.input[3] == dq.output[1]
        assert [r.op_type for r in _readers(model, dq.input[0])] == ["DynamicQuantizeLinear"]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Mul") == [n.op_type for n in onnx.load(plain.path).graph.node].count("Mul")
    ref, run = ort_run_fn(base.path), ort_run_fn(v.path)
    for f in Feeds(1).feeds[:4]:
        x, y = np.asarray(run(f)[0], np.float64), np.asarray(ref(f)[0], np.float64)
        cos = np.sum(x * y, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        assert np.all(cos > 0.9)
