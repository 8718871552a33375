"""SmoothQuant folded into the LayerNorms of a fused BERT graph (ONNX Runtime's contrib operators).

SmoothQuant (Xiao et al., 2023, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
Language Models", sec. 4 and eq. 4): per input channel j of an activation X that feeds weights W,
``s_j = max|X_j|^a / max|W_j|^(1-a)`` and ``X W = (X / s)(s W)``. The paper folds the ``1/s`` into the
preceding LayerNorm's affine parameters (``gamma / s``, ``beta / s``), so no operator is added; the
unfused path (compressors/int8_graph.py: ``smooth``) adds a ``Mul`` per shared input instead.

Sites: every activation that a LayerNorm-family node writes (``SkipLayerNormalization``,
``EmbedLayerNormalization``, ``LayerNormalization``) and that feeds a fused ``Attention`` (its packed
Q/K/V weight [H, 3H]: one ``s`` shared by Q, K and V, so the layer input stays one tensor, quantized once by
QAttention) or a MatMul with a constant weight (the FFN input). The scale is taken over every weight the
activation feeds.

BERT is post-LN: each LayerNorm's output is also the next block's residual, which must stay unscaled. There
the fold writes a second LayerNorm node with the folded ``gamma / s``, ``beta / s`` (same inputs) for the
weights only, and the residual keeps the original: no ``Mul``, one LayerNorm more per site (recorded as
``duplicated``). Where the LayerNorm output feeds only the smoothed weights, its own parameters are folded.
Not smoothed (no LayerNorm to fold into): the attention output projection's input and the FFN output
projection's input (after GELU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

# op type -> (gamma input index, beta input index)
LAYER_NORMS = {"SkipLayerNormalization": (2, 3), "EmbedLayerNormalization": (5, 6), "LayerNormalization": (1, 2)}


@dataclass(frozen=True)
class Site:
    x: str  # the LayerNorm output smoothed
    layer_norm: str  # the node whose gamma/beta carry 1/s
    weights: tuple[tuple[str, str], ...]  # (consumer node, its weight initializer)
    duplicated: bool  # the LayerNorm output also feeds something else (the residual): a second LayerNorm carries 1/s


def smooth_sites(model) -> list[Site]:
    """Every LayerNorm output feeding an Attention's packed Q/K/V weight or a constant-weight MatMul."""
    inits = {i.name for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in model.graph.output}
    sites = []
    for x, nodes in readers.items():
        ln = producer.get(x)
        if ln is None or ln.op_type not in LAYER_NORMS or ln.output[0] != x or not ln.name:
            continue
        g, b = LAYER_NORMS[ln.op_type]
        if len(ln.input) <= max(g, b) or ln.input[g] not in inits or ln.input[b] not in inits:
            continue
        weights = tuple((n.name, n.input[1]) for n in nodes
                        if n.op_type in ("Attention", "MatMul") and n.input[0] == x and len(n.input) > 1 and n.input[1] in inits
                        and len(readers.get(n.input[1], [])) == 1)
        if weights:
            others = len(nodes) - len(weights) + (x in graph_outputs)
            sites.append(Site(x, ln.name, weights, others > 0))
    return sites


def fold_smoothquant(model, act_max: Mapping[str, np.ndarray], alpha: float) -> list[Site]:
    """SmoothQuant in place on a fused ``model``, ``1/s`` folded into LayerNorm parameters; the sites smoothed."""
    from onnx import numpy_helper

    sites = smooth_sites(model)
    index = {i.name: k for k, i in enumerate(model.graph.initializer)}
    nodes_by_name = {n.name: n for n in model.graph.node}
    arr = lambda name: numpy_helper.to_array(model.graph.initializer[index[name]])  # noqa: E731

    def put(name: str, value: np.ndarray) -> None:
        if name in index:
            model.graph.initializer[index[name]].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
        else:
            index[name] = len(model.graph.initializer)
            model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))

    extra = {}
    for site in sites:
        ws = {w: arr(w) for _, w in site.weights}
        w_max = np.max([np.abs(w).max(axis=1) for w in ws.values()], axis=0)
        a_max = np.asarray(act_max[site.x], dtype=np.float64)
        s = np.where((a_max > 0) & (w_max > 0), a_max**alpha / np.maximum(w_max, 1e-8) ** (1 - alpha), 1.0)
        s = np.clip(s, 1e-4, 1e4)
        for name, w in ws.items():
            put(name, w * s[:, None])
        ln = nodes_by_name[site.layer_norm]
        g, b = LAYER_NORMS[ln.op_type]
        gamma, beta = arr(ln.input[g]) / s, arr(ln.input[b]) / s
        if not site.duplicated:
            put(ln.input[g], gamma)
            put(ln.input[b], beta)
            continue
        twin = type(ln)()
        twin.CopyFrom(ln)
        twin.name = f"{ln.name}_smooth"
        put(f"{site.x}_smooth_gamma", gamma)
        put(f"{site.x}_smooth_beta", beta)
        twin.input[g], twin.input[b] = f"{site.x}_smooth_gamma", f"{site.x}_smooth_beta"
        outs = [f"{site.x}_smoothed"] + [f"{site.x}_smoothed_out{k}" if o and ln.op_type == "EmbedLayerNormalization" and k == 1 else ""
                                         for k, o in enumerate(ln.output[1:], start=1)]
        while outs and not outs[-1]:
            outs.pop()
        del twin.output[:]
        twin.output.extend(outs)
        extra[ln.name] = twin
        for consumer, _ in site.weights:
            nodes_by_name[consumer].input[0] = f"{site.x}_smoothed"
    if extra:  # each second LayerNorm right after its original: topological order holds
        ordered = []
        for n in model.graph.node:
            ordered.append(n)
            if n.name in extra:
                ordered.append(extra[n.name])
        del model.graph.node[:]
        model.graph.node.extend(ordered)
    return sites
