"""The fused encoder on a tiny random BERT (no download): the fused fp32 graph equals the SDPA export
within 1e-5, holds the fused operators, and quantizes to QAttention."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from odbench.compressors.fused import FusedConfig, FusedEncoder
from odbench.core.records import TorchTask
from tests.compressors.conftest import baseline_variant

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime.transformers.optimizer")
pytestmark = pytest.mark.slow  # torch exports of a (tiny) transformer: ~15 s on 2 idle cores, a minute under load


def tiny_bert():
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  max_position_embeddings=64, attn_implementation="sdpa")
    torch.manual_seed(0)
    bert = transformers.BertModel(cfg, add_pooling_layer=False).eval()

    class Pool(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    return Pool().eval()


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
