"""Convert a zoo model's torch module to LiteRT ``.tflite`` with litert-torch: fp32, dynamic-range int8, full int8.

The same route as compressors/executorch_export.py (torch.export in the main environment, the rest in
the runtime's own, here the litert environment: compressors/_litert_worker.py). litert-torch 0.10's JAX
lowering cannot keep a dim dynamic (AssertionError: float32[-9223372036854775808,32] on the first op after
it), and LiteRT cannot resize the CTR ranker's fixed graph (a CONCATENATION fails to prepare), so the
model is converted at fixed shapes, as a phone app ships it: the batch of the headline scenario's feeds
(the CTR ranker ranks a slate of 200 candidates; a query is one text) and, for a text model, its
tokenizer's ``max_len`` (inputs padded with zeros: pad id 0, attention mask 0). The session runs other
batches in slates of that size (runtimes/litert.py). int8 is LiteRT's own AI Edge Quantizer on the
FULLY_CONNECTED ops; full int8 is calibrated on the tuning split, restacked to the fixed shapes.
The variant records lineage, size, export ISA, tuning data, the toolchain (the environment's lock hash,
in the cache key) and runs on the ``litert`` runtime only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from odbench.compressors.base import CompressionError
from odbench.compressors.executorch_export import ExecuTorchExport
from odbench.core.feeds import load_feeds
from odbench.runtimes.litert import ENVIRONMENT

WORKER = "odbench.compressors._litert_worker"
CODE_VERSION = 2  # 2: fixed shapes of the headline scenario; int8 through AI Edge Quantizer on FULLY_CONNECTED


@dataclass(frozen=True)
class LiteRTExportConfig:
    quant: Literal["fp32", "int8-dynamic-range", "int8-full"] = "fp32"
    per_channel: bool = True
    calibration_samples: int = 32  # int8-full: tuning-split feeds the observers see (restacked to the fixed shapes)
    toolchain: str = ""  # the litert environment's lock hash (filled in: part of the cache key)


def _headline_batch(task) -> int | None:
    model, cache = getattr(task, "model", None), getattr(task, "cache", None)
    headline = getattr(model, "headline", None)
    if headline is None or cache is None or not hasattr(model, "feeds"):
        return None
    first = load_feeds(model.feeds(headline, cache).path)[0]
    return int(next(iter(first.values())).shape[0])


def fixed_shapes(task, inputs, dims: dict, calib: list[dict]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """({input: fixed shape}, {input: axes padded with zeros}): batch from the headline scenario (else the largest
    calibration batch), any other dynamic axis the text model's ``max_len`` (else a CompressionError)."""
    batch = _headline_batch(task) or max(next(iter(f.values())).shape[0] for f in calib)
    max_len = getattr(getattr(getattr(task, "model", None), "config", None), "max_len", None)
    shapes, pads = {}, {}
    for t in inputs:
        shape = list(calib[0][t.name].shape)
        for axis in dims.get(t.name, {}):
            a = int(axis)
            if a == 0:
                shape[0] = batch
            elif max_len:
                shape[a] = int(max_len)
                pads.setdefault(t.name, []).append(a)
            else:
                raise CompressionError(f"LiteRT needs fixed shapes: input {t.name!r} axis {a} is dynamic "
                                       "and the model declares no max_len to pad it to")
        shapes[t.name] = shape
    return shapes, pads


def restack(feeds: list[dict[str, np.ndarray]], shapes: dict[str, list[int]]) -> list[dict[str, np.ndarray]]:
    """The rows of ``feeds`` (each padded with zeros to the fixed shape's other axes), in slates of the fixed
    batch; a short last slate is dropped unless it is the only one (then its last row is repeated)."""
    rows = {}
    for name, shape in shapes.items():
        parts = []
        for f in feeds:
            x = f[name]
            if any(x.shape[a] > shape[a] for a in range(1, x.ndim)):
                raise CompressionError(f"input {name!r} of shape {x.shape} exceeds the fixed shape {shape}")
            parts.append(np.pad(x, [(0, 0)] + [(0, shape[a] - x.shape[a]) for a in range(1, x.ndim)]))
        rows[name] = np.concatenate(parts)
    n, batch = len(next(iter(rows.values()))), next(iter(shapes.values()))[0]
    if n < batch:
        rows = {k: np.concatenate([v, np.repeat(v[-1:], batch - n, axis=0)]) for k, v in rows.items()}
        n = batch
    return [{k: np.ascontiguousarray(v[s : s + batch]) for k, v in rows.items()} for s in range(0, n - batch + 1, batch)]


class LiteRTExport(ExecuTorchExport):
    name = "litert-export"
    Config = LiteRTExportConfig
    environment = ENVIRONMENT
    suffix = "tflite"
    worker = WORKER
    fmt, filename, runtime = "tflite", "model.tflite", "litert"
    describe = "LiteRT .tflite ({quant}) converted with litert-torch"
    code_version = CODE_VERSION
    dynamic = False

    def prepare_feeds(self, task, inputs, dims: dict, calib: list[dict]) -> tuple[dict, list[dict], dict]:
        shapes, pads = fixed_shapes(task, inputs, dims, calib)
        slates = restack(calib, shapes)
        return slates[0], slates, {"static_shapes": shapes, "pad_axes": pads}

    def pad_note(self, signature: dict) -> str:
        pads = signature.get("pad_axes") or {}
        return f"; {', '.join(f'{k} axis {v}' for k, v in pads.items())} padded with zeros" if pads else ""
