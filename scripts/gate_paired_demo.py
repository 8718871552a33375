"""The paired gate on real zoo cells (docs/paired.md, "The gate's regression check from the paired design").

    .venv/bin/python scripts/gate_paired_demo.py OUT [SOURCE_RUN]
    nice -n 19 .venv/bin/odbench gate OUT/run --budgets OUT/budgets.yaml --baseline OUT/base --out OUT/gate

Makes two run folders from four CTR rank-200 cells of SOURCE_RUN (default results/reference-xeon-avx512-2c; its model
files must still be on disk, e.g. in the cache its specs name): fp32 on ONNX Runtime and sprune50 on OpenVINO the same
file on both sides (a self-comparison); the distill cell's "new release" is the fp32 file (a real slowdown, about the
isolated distill speedup); int8-dyn with the baseline's runtime version edited to 1.31.0 (the labelled run-against-run
fallback). The cells' recorded samples are copied; the gate's paired processes measure anew.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

CELLS = ["ctr-ml100k.fp32__onnxruntime__host__rank-200", "ctr-ml100k.distill-w0.5-d0.5__onnxruntime__host__rank-200",
         "ctr-ml100k.sprune50__openvino__host__rank-200", "ctr-ml100k.int8-dyn__onnxruntime__host__rank-200"]


def main(out: Path, src: Path) -> None:
    for side in ("base", "run"):
        d = out / side
        shutil.rmtree(d, ignore_errors=True)
        (d / "cells").mkdir(parents=True)
        (d / "specs").mkdir()
        for f in ("machine.json", "variants.json"):
            shutil.copy(src / f, d / f)
        for c in CELLS:
            shutil.copy(src / "cells" / f"{c}.samples.npz", d / "cells")
            cell = json.loads((src / "cells" / f"{c}.json").read_text())
            spec = json.loads((src / "specs" / f"{c}.json").read_text())
            spec["variant_path"], spec["feeds"]["path"] = spec["_paths"]["variant_path"], spec["_paths"]["feeds"]
            if side == "run" and "distill" in c:
                fp_spec = json.loads((src / "specs" / f"{CELLS[0]}.json").read_text())
                fp_cell = json.loads((src / "cells" / f"{CELLS[0]}.json").read_text())
                spec["variant_path"], spec["variant_sha256"] = fp_spec["_paths"]["variant_path"], fp_spec["variant_sha256"]
                cell["provenance"]["model_sha256"] = fp_cell["provenance"]["model_sha256"]
            if side == "base" and "int8-dyn" in c:
                cell["provenance"]["runtime_version"] = "1.31.0"
            (d / "cells" / f"{c}.json").write_text(json.dumps(cell))
            (d / "specs" / f"{c}.json").write_text(json.dumps(spec))
    (out / "budgets.yaml").write_text("budgets:\n  - model: ctr-ml100k\n    peak_rss_mb_max: 100000\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "results/reference-xeon-avx512-2c").resolve())
