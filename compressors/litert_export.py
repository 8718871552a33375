"""Convert a zoo model's torch module to LiteRT ``.tflite`` with litert-torch: fp32, dynamic-range int8, full int8.

The same route as compressors/executorch_export.py (torch.export in the main environment, the rest in
the runtime's own, here the litert environment: compressors/_litert_worker.py); full int8 is calibrated
on the tuning split. The variant records lineage, size, export ISA, tuning data, the toolchain (the
environment's lock hash, in the cache key) and runs on the ``litert`` runtime only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from odbench.compressors.executorch_export import ExecuTorchExport
from odbench.runtimes.litert import ENVIRONMENT

WORKER = "odbench.compressors._litert_worker"


@dataclass(frozen=True)
class LiteRTExportConfig:
    quant: Literal["fp32", "int8-dynamic-range", "int8-full"] = "fp32"
    per_channel: bool = True
    calibration_samples: int = 32  # int8-full: tuning-split feeds the observers see
    toolchain: str = ""  # the litert environment's lock hash (filled in: part of the cache key)


class LiteRTExport(ExecuTorchExport):
    name = "litert-export"
    Config = LiteRTExportConfig
    environment = ENVIRONMENT
    suffix = "tflite"
    worker = WORKER
    fmt, filename, runtime = "tflite", "model.tflite", "litert"
    describe = "LiteRT .tflite ({quant}) converted with litert-torch"
    # litert-torch 0.10's JAX lowering fails on a dynamic dim (AssertionError: float32[-9223372036854775808,32]
    # on the first op after it, here on a 2-layer MLP): converted at the example's static shapes.
    dynamic = False
