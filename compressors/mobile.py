"""The mobile exports a zoo model gets when a phone runtime is asked for (`odbench run --runtime executorch`).

Each mobile runtime runs its own file format, exported from the zoo's torch module: ExecuTorch ``.pte``
(compressors/executorch_export.py) and LiteRT ``.tflite``
(compressors/litert_export.py, at the headline scenario's fixed shapes). fp32 plus the runtime's own int8
flows (ExecuTorch: PT2E with the XNNPACK quantizer, dynamic and static; LiteRT: AI Edge Quantizer, dynamic-range
and full; the calibrated ones on the tuning split). A user's ONNX file has no torch module, so no route to
these formats: its mobile cells are SKIPPED with that reason (runtimes/executorch.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from odbench.compressors.base import CompressionError, config_dict
from odbench.compressors.build import one_line
from odbench.compressors.executorch_export import ExecuTorchExport, ExecuTorchExportConfig
from odbench.compressors.litert_export import LiteRTExport, LiteRTExportConfig
from odbench.core.not_built import NotBuilt, NotBuiltKind
from odbench.core.records import Variant

FORMATS = ("pte", "tflite")  # Variant.config["format"] of a mobile export; config["runtime"] names the one runtime that runs it
EXPORTS: dict[str, tuple] = {
    "executorch": (ExecuTorchExport, tuple(ExecuTorchExportConfig(quant=q) for q in ("fp32", "int8-dynamic", "int8-static"))),
    "litert": (LiteRTExport, tuple(LiteRTExportConfig(quant=q) for q in ("fp32", "int8-dynamic-range", "int8-full"))),
}


def is_export(variant: Variant | None) -> bool:
    return variant is not None and variant.config.get("format") in FORMATS


def export_runtime(variant: Variant | None) -> str | None:
    """The runtime a mobile export is for (None for an ONNX variant)."""
    return variant.config.get("runtime") if is_export(variant) else None


def mobile_variants(task, root: Variant, out_dir: Path, runtimes: Sequence[str],
                    log: Callable[[str], None] = print, refused: list[NotBuilt] | None = None) -> list[Variant]:
    """The exports of ``root`` for every asked mobile runtime (cached by content hash); one that cannot be
    built is logged with its reason, left out (its runtime's cells on the zoo model are then absent) and,
    with ``refused``, appended there as a NotBuilt record (REFUSED for a CompressionError, else FAILED)."""
    built = []
    for runtime in runtimes:
        if runtime not in EXPORTS:
            continue
        cls, configs = EXPORTS[runtime]
        for config in configs:
            try:
                v = cls().compress(root, task, config, out_dir)
                built.append(v)
                log(f"[mobile] {v.id}: {v.size_bytes / 2**20:.1f} MB, delegation {v.config.get('delegation', {}).get('delegates')}")
            except (CompressionError, OSError, RuntimeError, ValueError) as exc:
                log(f"[mobile] {root.model} {runtime} {getattr(config, 'quant', '')}: not built: {exc}"[:600])
                if refused is not None:
                    step = f"{cls.suffix}-{config.quant}"
                    refused.append(NotBuilt(id=f"{root.model}/{step}", model=root.model, step=step, compressor=cls.name,
                                            kind=NotBuiltKind.REFUSED if isinstance(exc, CompressionError) else NotBuiltKind.FAILED,
                                            reason=one_line(exc), parent=root.id, config=config_dict(config)))
    return built
