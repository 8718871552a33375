"""A tiny ranker-shaped ONNX model (embedding table + MLP) and its fidelity task; a tiny mean-pooled BERT."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odbench.core.records import Feeds, Variant, sha256_file
from odbench.models.encoder import mean_pool_encoder


def tiny_pool_bert(vocab: int = 120, layers: int = 2, max_positions: int = 64, attention: str = "sdpa", normalize: bool = False):
    """A random 2-head, 32-wide BERT in the zoo encoder's own mean-pooling wrapper (L2-normalised with ``normalize``)."""
    import torch
    import transformers

    cfg = transformers.BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=max_positions, attn_implementation=attention)
    torch.manual_seed(0)
    return mean_pool_encoder(transformers.BertModel(cfg, add_pooling_layer=False).eval(), normalize=normalize)


def make_tiny_ranker(path: Path, rows: int = 2000, dim: int = 32, seed: int = 0, low_rank_w1: bool = False) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    table = rng.standard_normal((rows, dim)).astype(np.float32)
    w1 = rng.standard_normal((dim, 64)).astype(np.float32) / np.sqrt(dim)
    if low_rank_w1:
        w1 = (rng.standard_normal((dim, 4)) @ rng.standard_normal((4, 64))).astype(np.float32) / dim
    w2 = rng.standard_normal((8, 64)).astype(np.float32) / 8  # Gemm with transB=1
    b2 = rng.standard_normal(8).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
            helper.make_node("Add", ["emb", "x"], ["s"]),
            helper.make_node("MatMul", ["s", "w1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1),
        ],
        "tiny_ranker",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[numpy_helper.from_array(a, n) for a, n in ((table, "table"), (w1, "w1"), (w2, "w2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def baseline_variant(path: Path) -> Variant:
    from odbench.core.onnx_tools import onnx_param_count

    return Variant(id="tiny/fp32", model="tiny", path=str(path), sha256=sha256_file(path), size_bytes=path.stat().st_size,
                   params=onnx_param_count(path), scenarios=("synthetic",))


@pytest.fixture
def tiny(tmp_path):
    from odbench.compressors.fidelity import OnnxFidelityTask

    path = make_tiny_ranker(tmp_path / "tiny.onnx")
    feeds = Feeds(dims=(("batch", 16),), int_low=0, int_high=2000, count=8)
    return baseline_variant(path), OnnxFidelityTask(path, feeds, n_eval=8), tmp_path / "variants"


TINY_VOCAB = 300
CORRUPT_NODE = "/l1/MatMul"


def make_tiny_transformer(path: Path, vocab: int = TINY_VOCAB, dim: int = 16, seed: int = 0, corrupt: bool = True) -> Path:
    """input_ids/attention_mask/token_type_ids -> embeddings -> three named MatMul+bias layers ->
    mean pooling over the attention mask (a sentence-transformers-shaped signature).

    With ``corrupt``, hidden unit 0 of layer 0 is always zero (ReLU of a zero column and a
    negative bias) and layer 1's weights from that unit are 1,000: harmless in fp32, but
    quantizing layer 1 per output channel sets every scale by the 1,000 and rounds every real
    weight to zero, so layer 1 is the one the sensitivity scan must rank first."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    hid = 2 * dim
    inits = {
        "word_emb": rng.standard_normal((vocab, dim)), "type_emb": rng.standard_normal((2, dim)) * 0.1,
        "w0": rng.standard_normal((dim, hid)) / np.sqrt(dim), "b0": rng.standard_normal(hid) * 0.1,
        "w1": rng.standard_normal((hid, dim)) / np.sqrt(hid), "b1": rng.standard_normal(dim) * 0.1,
        "w2": rng.standard_normal((dim, dim)) / np.sqrt(dim), "b2": rng.standard_normal(dim) * 0.1,
    }
    if corrupt:
        inits["w0"][:, 0], inits["b0"][0], inits["w1"][0, :] = 0.0, -1.0, 1000.0
    inits = {k: v.astype(np.float32) for k, v in inits.items()}
    inits["axis_last"], inits["axis_seq"] = np.array([-1], np.int64), np.array([1], np.int64)
    nodes = [
        helper.make_node("Gather", ["word_emb", "input_ids"], ["we"], name="/emb/word"),
        helper.make_node("Gather", ["type_emb", "token_type_ids"], ["te"], name="/emb/type"),
        helper.make_node("Add", ["we", "te"], ["x0"], name="/emb/add"),
    ]
    x = "x0"
    for i, act in enumerate(("Relu", None, None)):
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"], name=f"/l{i}/MatMul"),
                  helper.make_node("Add", [f"b{i}", f"mm{i}"], [f"h{i}"], name=f"/l{i}/Add")]
        x = f"h{i}"
        if act:
            nodes.append(helper.make_node(act, [x], [f"a{i}"], name=f"/l{i}/{act}"))
            x = f"a{i}"
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT, name="/pool/cast"),
        helper.make_node("Unsqueeze", ["mf", "axis_last"], ["m3"], name="/pool/unsq"),
        helper.make_node("Mul", [x, "m3"], ["hm"], name="/pool/mul"),
        helper.make_node("ReduceSum", ["hm", "axis_seq"], ["num"], keepdims=0, name="/pool/sum"),
        helper.make_node("ReduceSum", ["m3", "axis_seq"], ["den"], keepdims=0, name="/pool/count"),
        helper.make_node("Div", ["num", "den"], ["embedding"], name="/pool/div"),
    ]
    ints = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
            for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(nodes, "tiny_transformer", ints,
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_transformer(tmp_path):
    from odbench.compressors.fidelity import OnnxFidelityTask

    path = make_tiny_transformer(tmp_path / "tiny_tf.onnx")
    feeds = Feeds(dims=(("seq", 12),), count=64)
    return baseline_variant(path), OnnxFidelityTask(path, feeds, n_eval=16), tmp_path / "variants"
