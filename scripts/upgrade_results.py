"""Rewrite run folders in the current result format (schema v3, samples in .npz, portable specs,
parity references stored once under results/references/).

    python scripts/upgrade_results.py results/reference-epyc-2c [more run folders]

v1/v2 cells pooled their processes' samples; where one split reproduces the stored per-process
medians the processes are recovered (core/records.py), else the cell is marked
``processes_known: false`` and the gate will not judge its timing. Statistics are recomputed from
the samples with the current code (stats/summary.py), so intervals appear where processes are known.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

from odbench.bench.run_folder import RunFolder
from odbench.core.records import RESULT_SCHEMA_VERSION, CellSpec, Result, sha256_file
from odbench.stats import summary as stats

REPO_ROOT = Path(__file__).resolve().parents[1]  # a script of this checkout, run on its results/ folder

SHARED_REFERENCES = REPO_ROOT / "results" / "references"


def repo_relative(path: str) -> str:
    """'/tmp/ref/artifacts/x' -> 'artifacts/x' (the folder a run was made in is not kept)."""
    for anchor in ("artifacts/", "results/"):
        i = path.find(anchor)
        if i >= 0:
            return path[i:]
    return path


def upgrade_cell(path: Path, store: RunFolder) -> Result:
    data = json.loads(path.read_text())
    if data.get("schema_version") == RESULT_SCHEMA_VERSION:  # already v3: its samples are in the .npz
        return store.get(data["cell_id"])
    r = Result.from_dict(data)
    if r.processes:
        s = (stats.summarize(r.process_samples, r.items_per_inference) if r.processes_known
             else stats.summarize([r.samples_ms], r.items_per_inference))
        r = r.replace(stats=s, throughput_items_s=s["throughput"])
    store.put(r)
    return r


def upgrade_spec(path: Path, run: Path) -> None:
    """Legacy specs get checkout-relative paths; every spec's parity reference moves to the shared folder. A
    current spec (``_paths``, bench/run_folder.py) keeps its run-relative paths, and its reference is written
    relative to the run folder too."""
    d = json.loads(path.read_text())
    paths = d.pop("_paths", None)
    if paths is None:
        d["variant_path"] = repo_relative(d["variant_path"])
        if d["feeds"].get("path"):
            d["feeds"]["path"] = repo_relative(d["feeds"]["path"])
    parity = d.get("parity")
    if parity and parity.get("reference"):
        name = Path(parity["reference"]).name
        local = run / "references" / name
        shared = SHARED_REFERENCES / name
        if local.exists() and not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local, shared)
        if paths is None:
            parity["reference"] = str(shared.relative_to(REPO_ROOT))
        else:
            parity["reference"] = os.path.relpath(shared, run)
            paths["parity_reference"] = str(shared)
    out = json.loads(json.dumps(dataclasses.asdict(CellSpec.from_dict(d))))  # validated by the record itself
    if paths is not None:
        out["_paths"] = paths
    path.write_text(json.dumps(out, indent=1))


def upgrade_run(run: Path) -> None:
    store = RunFolder(run)
    cells = sorted(p for p in (run / "cells").glob("*.json"))
    known = sum(upgrade_cell(p, store).processes_known for p in cells)
    for p in sorted((run / "specs").glob("*.json")):
        upgrade_spec(p, run)
    refs = run / "references"
    if refs.exists():
        for f in refs.glob("*.npz"):
            shared = SHARED_REFERENCES / f.name
            if shared.exists() and sha256_file(shared) == sha256_file(f):
                f.unlink()
        if not any(refs.iterdir()):
            refs.rmdir()
    print(f"{run}: {len(cells)} cells, processes recovered in {known}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        upgrade_run(Path(arg))
