"""Unstructured magnitude (L1) pruning of MatMul/Gemm weights, on the ONNX graph.

Zeroes the smallest-magnitude weights to a target sparsity, globally (one threshold over
all layers) or per layer. Works on any ONNX file. Note, and the tables show it: dense CPU
kernels do not skip zeros, so this shrinks the *gzipped* file, not the latency.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output
from odbench.compressors.graph import initializers, matmul_weights, replace_initializer
from odbench.core.records import Variant

CODE_VERSION = 1


@dataclass(frozen=True)
class MagnitudePruneConfig:
    sparsity: float = 0.5
    scope: Literal["global", "per_layer"] = "global"


class MagnitudePrune:
    name = "prune-magnitude"
    Config = MagnitudePruneConfig

    def compress(self, variant: Variant, task: Task, config: MagnitudePruneConfig, out_dir: Path) -> Variant:
        import onnx

        if not 0 < config.sparsity < 1:
            raise CompressionError(f"sparsity must be in (0, 1), got {config.sparsity}")
        name, out_dir, hit = output(variant, f"prune{int(round(config.sparsity * 100))}-{config.scope.replace('_', '')}", self.name,
                                    config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        model = onnx.load(variant.path)
        uses = matmul_weights(model)
        if not uses:
            raise CompressionError("no MatMul/Gemm weight initializers to prune")
        inits = initializers(model)
        weights = {u.init_name: inits[u.init_name] for u in uses}
        if config.scope == "global":
            all_mags = np.concatenate([np.abs(w).ravel() for w in weights.values()])
            k = int(config.sparsity * all_mags.size)
            threshold = np.partition(all_mags, k)[k] if k < all_mags.size else np.inf
            thresholds = {n: threshold for n in weights}
        else:
            thresholds = {}
            for n, w in weights.items():
                mags = np.abs(w).ravel()
                k = int(config.sparsity * mags.size)
                thresholds[n] = np.partition(mags, k)[k] if k < mags.size else np.inf
        for n, w in weights.items():
            replace_initializer(model, n, np.where(np.abs(w) < thresholds[n], 0.0, w).astype(np.float32))
        path = fresh_dir(out_dir) / "model.onnx"
        onnx.save(model, str(path))
        return finalize(variant, path, name, self.name, config, task,
                        notes=(f"{len(weights)} MatMul/Gemm weights pruned; dense kernels do not skip zeros",))
