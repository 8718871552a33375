"""Low-rank factorisation on the ONNX graph: truncated SVD of MatMul/Gemm weights, and
factorised embedding tables. Works on any ONNX file.

* ``target="matmul"``: W[k, n] -> A[k, r] @ B[r, n], with r chosen by an energy threshold
  (keep the smallest r whose singular values hold ``energy`` of the squared spectrum) or by
  a target ``ratio`` of parameters. A layer is only factorised when that saves parameters.
* ``target="gather"``: an embedding table T[V, d] -> Gather(A[V, r]) @ B[r, d].

At full rank the factorisation reproduces the layer (tested). The optional short
fine-tune of the issue is not done on the graph: say ``finetune`` and a zoo model's torch
path is needed (not implemented; the notes say so).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output
from odbench.compressors.graph import (
    add_initializer,
    gather_tables,
    initializers,
    matmul_weights,
    remove_initializer,
    splice,
)
from odbench.core.records import Variant

CODE_VERSION = 1


@dataclass(frozen=True)
class LowRankConfig:
    target: Literal["matmul", "gather"] = "matmul"
    energy: float | None = 0.9  # keep this share of the squared singular values ...
    ratio: float | None = None  # ... or keep this share of each layer's parameters
    rank: int | None = None  # ... or a fixed rank


def choose_rank(s: np.ndarray, k: int, n: int, config: LowRankConfig) -> int:
    if config.rank is not None:
        return int(min(config.rank, len(s)))
    if config.ratio is not None:
        return max(1, int(config.ratio * k * n / (k + n)))
    energy = np.cumsum(s**2) / np.sum(s**2)
    return int(np.searchsorted(energy, config.energy) + 1)


def factorise(w: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32)


class LowRank:
    name = "lowrank-svd"
    Config = LowRankConfig

    def compress(self, variant: Variant, task: Task, config: LowRankConfig, out_dir: Path) -> Variant:
        import onnx
        from onnx import helper

        knob = f"r{config.rank}" if config.rank else (f"x{config.ratio:g}" if config.ratio else f"e{config.energy:g}")
        name, out_dir, hit = output(variant, f"{'svd' if config.target == 'matmul' else 'embfact'}-{knob}", self.name, config,
                                    CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        model = onnx.load(variant.path)
        inits = initializers(model)
        uses = matmul_weights(model) if config.target == "matmul" else gather_tables(model)
        new_nodes, done = {}, []
        for u in uses:
            w = inits[u.init_name]
            if u.trans_b:
                w = w.T  # Gemm with transB: the math weight is W^T
            k, n = w.shape
            s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
            r = choose_rank(s, k, n, config)
            if r * (k + n) >= k * n:
                continue  # no saving: keep the layer as it is
            a, b = factorise(w, r)
            node = model.graph.node[u.node_index]
            an, bn = f"{u.init_name}__svd_a", f"{u.init_name}__svd_b"
            remove_initializer(model, u.init_name)
            add_initializer(model, an, a)
            add_initializer(model, bn, b)
            mid = f"{u.init_name}__svd_mid"
            if config.target == "gather":
                first = helper.make_node("Gather", [an, node.input[1]], [mid], axis=0)
                second = helper.make_node("MatMul", [mid, bn], list(node.output))
                new_nodes[u.node_index] = [first, second]
            elif u.op_type == "MatMul":
                first = helper.make_node("MatMul", [node.input[0], an], [mid])
                second = helper.make_node("MatMul", [mid, bn], list(node.output))
                new_nodes[u.node_index] = [first, second]
            else:  # Gemm: y = alpha * x @ W + beta * C  ->  Gemm(MatMul(x, A), B, C)
                attrs = {a_.name: a_ for a_ in node.attribute}
                first = helper.make_node("MatMul", [node.input[0], an], [mid])
                second = helper.make_node(
                    "Gemm", [mid, bn, *node.input[2:]], list(node.output),
                    alpha=attrs["alpha"].f if "alpha" in attrs else 1.0, beta=attrs["beta"].f if "beta" in attrs else 1.0,
                )
                new_nodes[u.node_index] = [first, second]
            done.append(f"{u.init_name}: {k}x{n} -> rank {r}")
        if not done:
            raise CompressionError(f"no {config.target} weight gets smaller at this rank setting")
        splice(model, new_nodes)
        path = fresh_dir(out_dir) / "model.onnx"
        onnx.save(model, str(path))
        return finalize(variant, path, name, self.name, config, task, notes=tuple(done[:20]),
                        extra={"layers_factorised": len(done)})
