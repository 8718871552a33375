"""Append-only result store: one JSON file per cell, written atomically.

Layout of a run folder::

    <run>/cells/<cell_id>.json   one Result each (schema-versioned)
    <run>/specs/<cell_id>.json   the CellSpec that produced it (lets the gate resample a cell)
    <run>/machine.json           the host the run was made on
    <run>/table.md, table.csv    comparison tables (regenerated from cells/)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.records import CellSpec, Result, atomic_write_text, to_json


class ResultStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.cells = self.root / "cells"
        self.cells.mkdir(parents=True, exist_ok=True)

    def path_for(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def done(self, cell_id: str) -> bool:
        return self.path_for(cell_id).exists()

    def put(self, result: Result) -> Path:
        path = self.path_for(result.cell_id)
        atomic_write_text(path, to_json(result))
        return path

    def get(self, cell_id: str) -> Result:
        return Result.from_dict(json.loads(self.path_for(cell_id).read_text()))

    def all(self) -> list[Result]:
        results = []
        for path in sorted(self.cells.glob("*.json")):
            try:
                results.append(Result.from_dict(json.loads(path.read_text())))
            except (ValueError, TypeError, json.JSONDecodeError) as exc:
                print(f"warning: skipping unreadable result {path}: {exc}", file=sys.stderr)
        return results

    def put_spec(self, spec: CellSpec) -> None:
        atomic_write_text(self.root / "specs" / f"{spec.cell_id}.json", to_json(spec))

    def get_spec(self, cell_id: str) -> CellSpec:
        path = self.root / "specs" / f"{cell_id}.json"
        if not path.exists():
            raise FileNotFoundError(f"no cell spec stored for {cell_id} in {self.root}")
        return CellSpec.from_dict(json.loads(path.read_text()))

    def write_json(self, name: str, data: object) -> None:
        atomic_write_text(self.root / name, json.dumps(data, indent=1, default=str))
