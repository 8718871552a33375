"""Bring your own ONNX: any ONNX file becomes a Variant with no code change.

Nothing is read from the file here beyond its bytes (sha256, size), so a corrupt or
odd file still gets planned and fails inside its own cell with a clear reason. Feeds
are synthesised in the cell from the model's input signature (see core/feeds.py).
"""
from __future__ import annotations

from pathlib import Path

from odbench.core.onnx_tools import onnx_param_count, quantized_ops, quantized_summary
from odbench.core.records import Variant, sha256_file

# What the fidelity and parity of a user's file and its variants are measured against.
OWN_OUTPUTS = "the user's own outputs (this file as-is)"


def user_variant(path: str | Path) -> Variant:
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    sha = sha256_file(p)
    params, ops = None, {}
    try:
        params, ops = onnx_param_count(p), quantized_ops(p)
    except Exception:
        pass  # unreadable: the cell will say why
    notes = [f"user-supplied ONNX file {p.name}"]
    config = {"fidelity_reference": OWN_OUTPUTS}
    if ops:  # benchmarked as-is as the user's baseline; the quantizers skip it (compressors/base.refuse_if_quantized)
        notes.append(f"{quantized_summary(ops)}: benchmarked as-is as the baseline; fidelity and parity are to "
                     "its own outputs, not to an fp32 model")
        config["already_quantized"] = ops
    return Variant(
        id=f"onnx-{p.stem}-{sha[:8]}/as-is",
        model=f"onnx-{p.stem}-{sha[:8]}",
        path=str(p),
        sha256=sha,
        size_bytes=p.stat().st_size,
        params=params,
        scenarios=("synthetic",),
        config=config,
        notes=tuple(notes),
    )
