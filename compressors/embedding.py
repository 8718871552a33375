"""Embedding-table quantization on the ONNX graph: row-wise int8, or int4 where ONNX Runtime
supports it. For recommendation models this is where the bytes are.

* int8: each row r of a Gather table gets a scale max|T[r]|/127 (stored as fp16, as FBGEMM's
  half-precision row-wise formats do) and is stored as int8; the graph does
  Gather(q) -> Cast -> Mul(Cast(Gather(scale))). Dequantized rows are within half a step
  (scale/2) of the original (tested).
* int4: ONNX Runtime's contrib ``GatherBlockQuantized`` (com.microsoft) with 4-bit blocks
  along each row (``block_size`` values share a scale), packed two per byte.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output, refuse_if_quantized
from odbench.compressors.graph import (
    add_initializer,
    ensure_opset,
    gather_tables,
    initializers,
    remove_initializer,
    splice,
)
from odbench.core.records import Variant

CODE_VERSION = 2


@dataclass(frozen=True)
class EmbeddingQuantConfig:
    bits: Literal[8, 4] = 8
    min_rows: int = 1000  # only tables at least this tall (the ID tables, not the tiny categorical ones)
    block_size: int = 32  # int4: values per scale along a row (ORT needs a power of two >= 16)


def quantize_rows_int8(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise symmetric int8 with fp16 scales; the scale is rounded to fp16 *before* quantizing."""
    scale = np.abs(t).max(axis=1) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float16)
    q = np.clip(np.round(t / scale.astype(np.float32)[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_blocks_int4(t: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 4-bit per block of ``block`` values along each row; returns (packed uint8, scales)."""
    rows, d = t.shape
    if d % block:
        raise CompressionError(f"int4 needs the embedding width {d} to be a multiple of block_size {block}")
    blocks = t.reshape(rows, d // block, block)
    scale = np.abs(blocks).max(axis=2) / 7.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.round(blocks / scale[..., None]), -8, 7).astype(np.int8).reshape(rows, d)
    u = (q.astype(np.int16) + 8).astype(np.uint8)  # unsigned 4-bit with zero point 8
    packed = (u[:, 0::2] | (u[:, 1::2] << 4)).astype(np.uint8)
    return packed, scale


class EmbeddingQuant:
    name = "embedding-quant"
    Config = EmbeddingQuantConfig

    def compress(self, variant: Variant, task: Task, config: EmbeddingQuantConfig, out_dir: Path) -> Variant:
        import onnx
        from onnx import TensorProto, helper

        refuse_if_quantized(variant)  # before the cache: an int8 graph is never quantized again
        name, out_dir, hit = output(variant, f"emb-int{config.bits}", self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        model = onnx.load(variant.path)
        inits = initializers(model)
        tables = gather_tables(model, min_rows=config.min_rows)
        if not tables:
            raise CompressionError(f"no Gather embedding table with >= {config.min_rows} rows")
        new_nodes, notes = {}, []
        for u in tables:
            t = inits[u.init_name]
            node = model.graph.node[u.node_index]
            idx, out = node.input[1], node.output[0]
            remove_initializer(model, u.init_name)
            qn, sn = f"{u.init_name}__q{config.bits}", f"{u.init_name}__scale"
            if config.bits == 8:
                q, scale = quantize_rows_int8(t)
                add_initializer(model, qn, q)
                add_initializer(model, sn, scale)
                rows, rows_f, s_rows, s_rows_f, s_col = (f"{u.init_name}__{x}" for x in ("rows", "rows_f", "srows", "srows_f", "scol"))
                axes = f"{u.init_name}__axes"
                add_initializer(model, axes, np.array([-1], dtype=np.int64))
                new_nodes[u.node_index] = [
                    helper.make_node("Gather", [qn, idx], [rows], axis=0),
                    helper.make_node("Cast", [rows], [rows_f], to=TensorProto.FLOAT),
                    helper.make_node("Gather", [sn, idx], [s_rows], axis=0),
                    helper.make_node("Cast", [s_rows], [s_rows_f], to=TensorProto.FLOAT),
                    helper.make_node("Unsqueeze", [s_rows_f, axes], [s_col]),
                    helper.make_node("Mul", [rows_f, s_col], [out]),
                ]
            else:
                packed, scale = quantize_blocks_int4(t, config.block_size)
                add_initializer(model, qn, packed)
                add_initializer(model, sn, scale)
                new_nodes[u.node_index] = [
                    helper.make_node("GatherBlockQuantized", [qn, idx, sn], [out], domain="com.microsoft",
                                     bits=4, block_size=config.block_size, gather_axis=0, quantize_axis=1),
                ]
                ensure_opset(model, "com.microsoft", 1)
            notes.append(f"{u.init_name}: {t.shape[0]}x{t.shape[1]} fp32 {t.nbytes / 2**20:.1f} MB -> int{config.bits}")
        splice(model, new_nodes)
        path = fresh_dir(out_dir) / "model.onnx"
        onnx.save(model, str(path))
        return finalize(variant, path, name, self.name, config, task, notes=tuple(notes))
