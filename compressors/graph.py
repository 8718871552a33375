"""Helpers for compressors that work on the ONNX graph alone (so they apply to any ONNX file)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WeightUse:
    node_index: int
    op_type: str
    init_name: str
    input_index: int  # which input of the node the initializer feeds
    trans_b: bool = False


def initializers(model) -> dict:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def consumers(model, name: str) -> list:
    return [n for n in model.graph.node if name in n.input]


def matmul_weights(model, min_elements: int = 256) -> list[WeightUse]:
    """2-D float initializers used as the right-hand weight of a MatMul or Gemm, and nothing else."""
    inits = initializers(model)
    out = []
    for i, node in enumerate(model.graph.node):
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        w = inits.get(node.input[1])
        if w is None or w.ndim != 2 or w.dtype != np.float32 or w.size < min_elements:
            continue
        if len(consumers(model, node.input[1])) != 1:
            continue
        trans_b = False
        if node.op_type == "Gemm":
            attrs = {a.name: a for a in node.attribute}
            if "transA" in attrs and attrs["transA"].i:
                continue
            trans_b = bool(attrs["transB"].i) if "transB" in attrs else False
        out.append(WeightUse(i, node.op_type, node.input[1], 1, trans_b))
    return out


def gather_tables(model, min_rows: int = 64) -> list[WeightUse]:
    """2-D float initializers read by Gather on axis 0 (embedding tables), used nowhere else."""
    inits = initializers(model)
    out = []
    for i, node in enumerate(model.graph.node):
        if node.op_type != "Gather":
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        t = inits.get(node.input[0])
        if axis != 0 or t is None or t.ndim != 2 or t.dtype != np.float32 or t.shape[0] < min_rows:
            continue
        if len(consumers(model, node.input[0])) != 1:
            continue
        out.append(WeightUse(i, "Gather", node.input[0], 0))
    return out


def replace_initializer(model, name: str, array: np.ndarray) -> None:
    from onnx import numpy_helper

    for k, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[k].CopyFrom(numpy_helper.from_array(array, name))
            return
    raise KeyError(name)


def remove_initializer(model, name: str) -> None:
    keep = [i for i in model.graph.initializer if i.name != name]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def add_initializer(model, name: str, array: np.ndarray) -> None:
    from onnx import numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(array, name))


def ensure_opset(model, domain: str, version: int) -> None:
    for op in model.opset_import:
        if op.domain == domain:
            op.version = max(op.version, version)
            return
    from onnx import helper

    model.opset_import.append(helper.make_opsetid(domain, version))


def splice(model, replacements: dict[int, list]) -> None:
    """Replace node i of the graph by the nodes ``replacements[i]``, keeping the order."""
    nodes = []
    for i, node in enumerate(model.graph.node):
        nodes.extend(replacements.get(i, [node]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
