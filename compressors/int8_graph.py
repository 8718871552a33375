"""Per-node dynamic int8 for MatMuls with constant weights, written directly on the ONNX graph.

Each chosen ``MatMul(X, W)`` (with its bias ``Add``, when there is one) becomes ONNX Runtime's
``com.microsoft.DynamicQuantizeMatMul``: X is quantized per tensor to uint8 at run time, W is
stored int8 (symmetric, per output channel or per tensor, 7 or 8 bits) or uint8 (asymmetric).
That is the node ONNX Runtime's own ``quantize_dynamic`` ends in after its MatMulIntegerToFloat
fusion (onnxruntime/core/optimizer/matmul_integer_to_float.cc); building it here lets a scan
quantize any subset of nodes in milliseconds.

SmoothQuant (Xiao et al., 2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization
for Large Language Models", eq. 4): per input channel j, ``s_j = max|X_j|^a / max|W_j|^(1-a)``;
``X W = (X / s)(s W)``. The 1/s goes into one ``Mul`` per distinct input tensor (shared by the
Q/K/V projections), the s into W's rows, so outlier channels stop setting the activation scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from odbench.compressors.graph import ensure_opset, initializers


@dataclass(frozen=True)
class QuantMatMul:
    node: str  # the MatMul's name
    x: str  # its activation input
    w: str  # its weight initializer
    bias: str | None  # a 1-D initializer added right after it (fused), or None
    add_node: str | None  # the Add that adds it
    rows: int
    cols: int


@dataclass(frozen=True)
class WeightFormat:
    bits: int = 8  # 7 = reduce_range (x86 without VNNI)
    per_channel: bool = True
    symmetric: bool = True  # False: uint8 with a zero point per channel (MLAS's u8u8 path)


def quantizable_matmuls(model) -> list[QuantMatMul]:
    """Every named MatMul whose right input is a 2-D float32 initializer used only there."""
    inits = initializers(model)
    uses: dict[str, int] = {}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in model.graph.output}
    out = []
    for n in model.graph.node:
        if n.op_type != "MatMul" or not n.name:
            continue
        w = inits.get(n.input[1])
        if w is None or w.ndim != 2 or w.dtype != np.float32 or uses.get(n.input[1]) != 1:
            continue
        bias = add = None
        nxt = consumers.get(n.output[0], [])
        if len(nxt) == 1 and nxt[0].op_type == "Add" and n.output[0] not in graph_outputs:
            other = [i for i in nxt[0].input if i != n.output[0]]
            b = inits.get(other[0]) if len(other) == 1 else None
            if b is not None and b.shape == (w.shape[1],) and b.dtype == np.float32 and uses.get(other[0]) == 1:
                bias, add = other[0], nxt[0].name or None
        out.append(QuantMatMul(n.name, n.input[0], n.input[1], bias if add else None, add, *w.shape))
    return out


def quantize_weight(w: np.ndarray, fmt: WeightFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quantized W, scale, zero point): per column of W [K, N] or one for the whole tensor."""
    axis = 0 if fmt.per_channel else None
    if fmt.symmetric:
        qmax = 2 ** (fmt.bits - 1) - 1
        amax = np.max(np.abs(w), axis=axis)
        scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int8)
        return q, scale, np.zeros_like(scale, dtype=np.int8)
    qmax = 2**fmt.bits - 1
    lo, hi = np.minimum(np.min(w, axis=axis), 0), np.maximum(np.max(w, axis=axis), 0)
    scale = np.where(hi > lo, (hi - lo) / qmax, 1.0).astype(np.float32)
    zp = np.clip(np.round(-lo / scale), 0, qmax).astype(np.uint8)
    q = np.clip(np.round(w / scale) + zp, 0, qmax).astype(np.uint8)
    return q, scale, zp


def quantize_nodes(model, targets: Sequence[QuantMatMul], fmt: WeightFormat):
    """A copy of ``model`` with each target MatMul (+ bias Add) replaced by DynamicQuantizeMatMul."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    if not targets:
        return out
    by_node = {t.node: t for t in targets}
    adds = {t.add_node: t for t in targets if t.add_node}
    drop = {t.w for t in targets} | {t.bias for t in targets if t.bias}
    weights = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer if i.name in drop}
    new_inits = []
    nodes = []
    for n in out.graph.node:
        if n.name in adds:
            continue
        t = by_node.get(n.name)
        if t is None:
            nodes.append(n)
            continue
        q, scale, zp = quantize_weight(weights[t.w], fmt)
        names = [f"{t.w}_q", f"{t.w}_scale", f"{t.w}_zp"]
        new_inits += [numpy_helper.from_array(a, nm) for a, nm in zip((q, scale, zp), names)]
        inputs = [t.x, *names]
        result = n.output[0]
        if t.bias:
            new_inits.append(numpy_helper.from_array(weights[t.bias], f"{t.bias}_fused"))
            inputs.append(f"{t.bias}_fused")
            result = next(a.output[0] for a in model.graph.node if a.name == t.add_node)
        nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [result], name=f"{t.node}_dq", domain="com.microsoft"))
    kept = [i for i in out.graph.initializer if i.name not in drop]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept + new_inits)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    ensure_opset(out, "com.microsoft", 1)
    return out


def activation_absmax(model, names: Sequence[str], feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |x| of the named tensors over ``feeds``, from an fp32 run."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names if n not in have)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    stats: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, arr in zip(names, sess.run(list(names), dict(feed))):
            m = np.abs(arr.reshape(-1, arr.shape[-1])).max(axis=0)
            stats[name] = np.maximum(stats[name], m) if name in stats else m
    return stats


def smooth(model, targets: Sequence[QuantMatMul], act_max: Mapping[str, np.ndarray], alpha: float):
    """SmoothQuant in place on ``model``: one ``Mul(X, 1/s)`` per shared input X, s folded into W."""
    from onnx import helper, numpy_helper

    inits = {i.name: k for k, i in enumerate(model.graph.initializer)}
    groups: dict[str, list[QuantMatMul]] = {}
    for t in targets:
        groups.setdefault(t.x, []).append(t)
    muls = []
    for x, group in groups.items():
        ws = {t.w: numpy_helper.to_array(model.graph.initializer[inits[t.w]]) for t in group}
        w_max = np.max([np.abs(w).max(axis=1) for w in ws.values()], axis=0)
        a_max = act_max[x]
        s = np.where((a_max > 0) & (w_max > 0), a_max**alpha / np.maximum(w_max, 1e-8) ** (1 - alpha), 1.0)
        s = np.clip(s, 1e-4, 1e4).astype(np.float32)
        for name, w in ws.items():
            model.graph.initializer[inits[name]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), name))
        inv = f"{x}_smooth_inv"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
        muls.append((x, helper.make_node("Mul", [x, inv], [f"{x}_smoothed"], name=f"{x}_smooth")))
    # rewire the MatMuls and put each Mul right before its first consumer (topological order holds)
    smoothed = {x for x, _ in muls}
    pending = dict(muls)
    nodes = []
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[0] in smoothed and any(t.node == n.name for t in targets):
            if n.input[0] in pending:
                nodes.append(pending.pop(n.input[0]))
            n.input[0] = f"{n.input[0]}_smoothed"
        nodes.append(n)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return [QuantMatMul(t.node, f"{t.x}_smoothed", t.w, t.bias, t.add_node, t.rows, t.cols) for t in targets]
