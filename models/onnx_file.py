"""Bring your own ONNX: any ONNX file becomes a Variant with no code change.

Nothing is read from the file here beyond its bytes (sha256, size), so a corrupt or
odd file still gets planned and fails inside its own cell with a clear reason. Feeds
are synthesised in the cell from the model's input signature (see core/feeds.py).
"""
from __future__ import annotations

from pathlib import Path

from odbench.core.records import Variant, sha256_file
from odbench.core.onnx_tools import onnx_param_count


def user_variant(path: str | Path) -> Variant:
    p = Path(path).resolve()
    if not p.exists():
        raise FileNotFoundError(f"ONNX file {path} does not exist")
    sha = sha256_file(p)
    params = None
    try:
        params = onnx_param_count(p)
    except Exception:
        pass  # unreadable: the cell will say why
    return Variant(
        id=f"onnx-{p.stem}-{sha[:8]}/as-is",
        model=f"onnx-{p.stem}-{sha[:8]}",
        path=str(p),
        sha256=sha,
        size_bytes=p.stat().st_size,
        params=params,
        scenarios=("synthetic",),
        notes=(f"user-supplied ONNX file {p.name}",),
    )
