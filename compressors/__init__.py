"""Compressor registry: name -> "module:Class". Grep here to find every compressor.

Graph-level compressors (work on any ONNX file, zoo or yours):
  prune-magnitude, lowrank-svd, embedding-quant, inc-int8, int8-mixed
Training compressors (need a TorchTask: the zoo's torch models, or yours via compressors/torch_hook.py):
  prune-structured, distill, fuse-bert (re-exports a BERT-family encoder with eager attention and fuses it),
  qat-int8 (quantization-aware distillation, then the fused dynamic-int8 export)
"""
from __future__ import annotations

import importlib

COMPRESSORS: dict[str, str] = {
    "prune-magnitude": "odbench.compressors.prune:MagnitudePrune",
    "prune-structured": "odbench.compressors.structured:StructuredPrune",
    "inc-int8": "odbench.compressors.inc:IncQuant",
    "int8-mixed": "odbench.compressors.mixed:MixedInt8",
    "lowrank-svd": "odbench.compressors.lowrank:LowRank",
    "embedding-quant": "odbench.compressors.embedding:EmbeddingQuant",
    "distill": "odbench.compressors.distill:Distill",
    # torch module -> ExecuTorch .pte (fp32, int8 PT2E/XNNPACK), built in the executorch environment (compressors/mobile.py)
    "executorch-export": "odbench.compressors.executorch_export:ExecuTorchExport",
    "litert-export": "odbench.compressors.litert_export:LiteRTExport",  # torch module -> .tflite in the litert environment
    "fuse-bert": "odbench.compressors.fused:FusedEncoder",
    "qat-int8": "odbench.compressors.qat:QatEncoder",  # quantization-aware distillation into the fused dynamic-int8 graph
}

NEEDS_TORCH = ("prune-structured", "distill", "fuse-bert", "qat-int8")


def get_compressor(name: str):
    try:
        module, cls = COMPRESSORS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown compressor {name!r}; known: {', '.join(COMPRESSORS)}") from None
    return getattr(importlib.import_module(module), cls)()
