"""Already-quantized input is recognised: one tiny graph of each kind (issue 24)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odbench.core.onnx_tools import QDQ_PAIR, quantized_ops, quantized_summary
from tests.conftest import make_tiny_onnx

W = 4


def _save(path: Path, nodes, inits, opsets=(("", 17),), check=True) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", W])],
                              initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _scales():
    return {"s": np.float32(0.05), "zp": np.uint8(128), "ws": np.float32(0.02), "wzp": np.int8(0)}


def make_qdq(path: Path) -> Path:
    """x -> QuantizeLinear -> DequantizeLinear -> MatMul: activations quantized in the graph (QDQ format)."""
    from onnx import helper

    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("MatMul", ["xd", "w"], ["y"])]
    return _save(path, nodes, {**_scales(), "w": np.eye(W, dtype=np.float32)})


def make_qlinear(path: Path) -> Path:
    from onnx import helper

    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("QLinearMatMul", ["xq", "s", "zp", "wq", "ws", "wzp2", "s", "zp"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "s", "zp"], ["y"])]
    return _save(path, nodes, {**_scales(), "wzp2": np.uint8(128), "wq": np.full((W, W), 130, dtype=np.uint8)})


def make_nbits(path: Path) -> Path:
    """A 4-bit weight-only MatMul (ONNX Runtime's com.microsoft MatMulNBits); detection reads the graph only."""
    from onnx import helper

    node = helper.make_node("MatMulNBits", ["x", "wq", "ws"], ["y"], domain="com.microsoft", K=W, N=W, bits=4, block_size=16)
    return _save(path, [node], {"wq": np.zeros((W, 1, 8), dtype=np.uint8), "ws": np.ones((W,), dtype=np.float32)},
                 opsets=(("", 17), ("com.microsoft", 1)), check=False)


def make_dynamic(path: Path, tmp: Path) -> Path:
    """ONNX Runtime's own dynamic quantization of the tiny float model: DynamicQuantizeLinear + MatMulInteger."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    src = make_tiny_onnx(tmp / "float" / "m.onnx", width=W)
    quantization.quantize_dynamic(str(src), str(path), weight_type=quantization.QuantType.QInt8)
    return path


def make_embedding_dq(path: Path) -> Path:
    """Weight-only int8 of a Gather table (what compressors/embedding.py writes): not 'already quantized'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("DequantizeLinear", ["tq", "ts"], ["t"], axis=0), helper.make_node("Gather", ["t", "ids"], ["y"])]
    graph = helper.make_graph(nodes, "emb", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", W])],
                              initializer=[numpy_helper.from_array(np.ones((300, W), dtype=np.int8), "tq"),
                                           numpy_helper.from_array(np.ones(300, dtype=np.float32), "ts")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_each_kind_of_quantized_graph_is_recognised(tmp_path):
    found = {
        "qdq": quantized_ops(make_qdq(tmp_path / "qdq.onnx")),
        "qlinear": quantized_ops(make_qlinear(tmp_path / "qlinear.onnx")),
        "nbits": quantized_ops(make_nbits(tmp_path / "nbits.onnx")),
        "dynamic": quantized_ops(make_dynamic(tmp_path / "dyn.onnx", tmp_path)),
    }
    assert found["qdq"] == {QDQ_PAIR: 1}
    assert found["qlinear"] == {"QLinearMatMul": 1}  # its Q and DQ are not a pair: QLinearMatMul sits between
    assert found["nbits"] == {"MatMulNBits": 1}
    assert found["dynamic"] == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert quantized_summary(found["dynamic"]) == "already quantized (1 DynamicQuantizeLinear, 1 MatMulInteger)"


def test_a_float_graph_and_a_weight_only_embedding_are_not_already_quantized(tmp_path):
    assert quantized_ops(make_tiny_onnx(tmp_path / "f.onnx")) == {}
    assert quantized_ops(make_embedding_dq(tmp_path / "emb.onnx")) == {}
    assert quantized_summary({}) == ""
