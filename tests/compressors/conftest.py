"""A tiny ranker-shaped ONNX model (embedding table + MLP) and its fidelity task."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.records import Feeds, Variant, sha256_file


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
    return Variant(id="tiny/fp32", model="tiny", path=str(path), sha256=sha256_file(path), size_bytes=path.stat().st_size,
                   scenarios=("synthetic",))


@pytest.fixture
def tiny(tmp_path):
    from compressors.fidelity import OnnxFidelityTask

    path = make_tiny_ranker(tmp_path / "tiny.onnx")
    feeds = Feeds(dims=(("batch", 16),), int_low=0, int_high=2000, count=8)
    return baseline_variant(path), OnnxFidelityTask(path, feeds, n_eval=8), tmp_path / "variants"
