"""Shared fixtures: tiny ONNX models the tests build themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _tiny_weights(width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((width, width)).astype(np.float32), rng.standard_normal((width,)).astype(np.float32)


def tiny_torch_module(onnx_dir, width: int, seed: int):
    """The torch twin of make_tiny_onnx, for the PyTorch eager runtime (named in torch_module.json)."""
    import torch

    w, b = (torch.from_numpy(a) for a in _tiny_weights(width, seed))

    class Tiny(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x @ w + b)

    return Tiny()


def make_tiny_onnx(path: Path, width: int = 4, seed: int = 0) -> Path:
    """y = relu(x @ W + b), x float32 [batch, width], batch dynamic; with its torch twin's sidecar."""
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w_np, b_np = _tiny_weights(width, seed)
    w = numpy_helper.from_array(w_np, "W")
    b = numpy_helper.from_array(b_np, "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    (path.parent / "torch_module.json").write_text(
        json.dumps({"factory": "tests.conftest:tiny_torch_module", "kwargs": {"width": width, "seed": seed}}))
    return path


@pytest.fixture
def tiny_onnx(tmp_path) -> Path:
    return make_tiny_onnx(tmp_path / "tiny.onnx")
