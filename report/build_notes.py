"""table.md's lines about what a run could not build or compare: recipe steps that built nothing (each
with its reason, from variants.json's ``built: false`` entries) and baselines that were already quantized
(their variants' fidelity and ``*_vs_fp32`` columns are against the file's own outputs, not an fp32 model)."""
from __future__ import annotations

from pathlib import Path

from odbench.bench.run_folder import RunFolder
from odbench.core.onnx_tools import quantized_summary


def build_notes(run_dir: Path) -> list[str]:
    """Markdown lines (empty when every step built and no baseline was quantized)."""
    folder = RunFolder(run_dir, create=False)
    lines = []
    for v in folder.variants().values():
        ops = (v.config or {}).get("already_quantized")
        if ops and v.parent is None:
            lines.append(f"- `{v.id}` is {quantized_summary(ops)}: benchmarked as-is as the baseline; the quantizers "
                         "skipped it; its `*_vs_fp32` columns and fidelity are against its own outputs, not an fp32 model.")
    for nb in folder.not_built().values():
        lines.append(f"- `{nb.id}` ({nb.compressor}): not built, {nb.kind}: {nb.reason}")
    return ["## Not built, and baselines already quantized", "", *lines, ""] if lines else []
