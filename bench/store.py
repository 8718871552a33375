"""Append-only result store: one readable JSON summary per cell, its raw samples beside it, written atomically.

Layout of a run folder (results/README.md has the full description)::

    <run>/cells/<cell_id>.json          one Result each (schema-versioned), samples left out
    <run>/cells/<cell_id>.samples.npz   each process's samples, in order (p0, p1, ...; float32 ms)
    <run>/parts/<cell_id>/<k>.json      a finished process of a cell still running (interleaved runs)
    <run>/specs/<cell_id>.json          the CellSpec that produced it (lets the gate add processes)
    <run>/variants.json                 every variant (its lineage), and each recipe step that built nothing (built: false)
    <run>/machine.json                  the host the run was made on
    <run>/table.md, table.csv           comparison tables (regenerated from cells/)

Paths inside specs are stored relative to the repository root when they lie under it, so a
committed run can be gated and extended from a fresh clone.
"""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from odbench.core.not_built import NotBuilt, split_variants_json
from odbench.core.records import CellSpec, Result, Variant, atomic_write_bytes, atomic_write_text, to_json

REPO_ROOT = Path(__file__).resolve().parents[1]


def _relative(path: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO_ROOT)) if p.is_absolute() else path
    except ValueError:
        return path


def _absolute(path: str) -> str:
    return path if not path or Path(path).is_absolute() else str(REPO_ROOT / path)


def portable_spec(spec: CellSpec, to_disk: bool) -> CellSpec:
    """A spec with its file paths relative to the repository (``to_disk``) or absolute again."""
    fix = _relative if to_disk else _absolute
    feeds = dataclasses.replace(spec.feeds, path=fix(spec.feeds.path) if spec.feeds.path else None)
    parity = dataclasses.replace(spec.parity, reference=fix(spec.parity.reference)) if spec.parity and spec.parity.reference else spec.parity
    return dataclasses.replace(spec, variant_path=fix(spec.variant_path), feeds=feeds, parity=parity)


def _variants_json(run_dir: Path) -> tuple[list[dict], list[dict]]:
    path = Path(run_dir) / "variants.json"
    if not path.exists():
        return [], []
    return split_variants_json(json.loads(path.read_text()))


def load_variants(run_dir: Path) -> dict[str, Variant]:
    """The built variants of a run (variants.json's ``built: false`` entries are left out: load_not_built)."""
    return {d["id"]: Variant.from_dict(d) for d in _variants_json(run_dir)[0]}


def load_not_built(run_dir: Path) -> dict[str, NotBuilt]:
    """The recipe steps of a run that built nothing, each with its reason (core/not_built.py)."""
    return {nb.id: nb for nb in map(NotBuilt.from_dict, _variants_json(run_dir)[1])}


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.cells = self.root / "cells"
        self.cells.mkdir(parents=True, exist_ok=True)

    def path_for(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def samples_path(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.samples.npz"

    def done(self, cell_id: str) -> bool:
        return self.path_for(cell_id).exists()

    def put(self, result: Result) -> Path:
        """Samples first, then the summary: a summary on disk always has its samples."""
        if result.processes:
            buf = io.BytesIO()
            np.savez_compressed(buf, **{f"p{i}": np.asarray(p.samples_ms, dtype=np.float32) for i, p in enumerate(result.processes)})
            atomic_write_bytes(self.samples_path(result.cell_id), buf.getvalue())
        summary = result.replace(processes=tuple(dataclasses.replace(p, samples_ms=()) for p in result.processes))
        path = self.path_for(result.cell_id)
        atomic_write_text(path, to_json(summary))
        return path

    def get(self, cell_id: str) -> Result:
        return self._read(self.path_for(cell_id))

    def _read(self, path: Path) -> Result:
        result = Result.from_dict(json.loads(path.read_text()))
        samples = path.with_name(path.name[: -len(".json")] + ".samples.npz")
        if result.processes and samples.exists():
            with np.load(samples) as z:
                procs = tuple(dataclasses.replace(p, samples_ms=tuple(float(v) for v in z[f"p{i}"].astype(np.float64).round(6)))
                              for i, p in enumerate(result.processes))
            result = result.replace(processes=procs)
        return result

    def all(self) -> list[Result]:
        results = []
        for path in sorted(self.cells.glob("*.json")):
            try:
                results.append(self._read(path))
            except (ValueError, TypeError, KeyError, OSError, json.JSONDecodeError) as exc:
                print(f"warning: skipping unreadable result {path}: {exc}", file=sys.stderr)
        return results

    # -- processes of a cell that is still running (interleaved order) --
    def _part_path(self, cell_id: str, k: int) -> Path:
        return self.root / "parts" / cell_id / f"{k}.json"

    def put_part(self, result: Result, k: int) -> None:
        atomic_write_text(self._part_path(result.cell_id, k), to_json(result))

    def get_part(self, cell_id: str, k: int) -> Result | None:
        path = self._part_path(cell_id, k)
        try:
            return Result.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def drop_parts(self, cell_id: str) -> None:
        shutil.rmtree(self.root / "parts" / cell_id, ignore_errors=True)

    # -- specs --
    def put_spec(self, spec: CellSpec) -> None:
        atomic_write_text(self.root / "specs" / f"{spec.cell_id}.json", to_json(portable_spec(spec, to_disk=True)))

    def get_spec(self, cell_id: str) -> CellSpec:
        path = self.root / "specs" / f"{cell_id}.json"
        if not path.exists():
            raise FileNotFoundError(f"no cell spec stored for {cell_id} in {self.root}")
        return portable_spec(CellSpec.from_dict(json.loads(path.read_text())), to_disk=False)

    def write_json(self, name: str, data: object) -> None:
        atomic_write_text(self.root / name, json.dumps(data, indent=1, default=str))
