"""How many fresh runs a cell has had: so that rerunning a cell into new run folders until it PASSes
is seen and counted as further looks, not a fresh first look each time.

Every ``odbench gate`` of a run folder appends one line per judged cell to a ledger shared by sibling
run folders (``gate-ledger.jsonl`` in the run folder's parent, or ``$ODBENCH_LEDGER``): the cell, the
model file it timed, the machine, the folder, its looks and its verdict. A cell's earlier looks are
those of the other folders since the last PASS of the same cell, model file and machine (a PASS ends
a sequence; a changed model file is a new question). The gate judges the run at look
``Result.looks + earlier looks`` and writes ``gate-looks.json`` into the run folder, so the count is
on record beside the results.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from odbench.core.records import Result, atomic_write_text

ENV = "ODBENCH_LEDGER"
NAME = "gate-ledger.jsonl"
LOOKS_FILE = "gate-looks.json"


def ledger_path(run_dir: Path) -> Path:
    return Path(os.environ[ENV]) if os.environ.get(ENV) else Path(run_dir).resolve().parent / NAME


def _key(r: Result, machine: dict) -> str:
    parts = (r.cell_id, r.provenance.get("model_sha256", ""), machine.get("cpu_model", ""), machine.get("hostname", ""))
    return "|".join(str(p) for p in parts)


@dataclass(frozen=True)
class Earlier:
    looks: int  # looks in other run folders since the last PASS
    runs: tuple[str, ...]  # those folders


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line from an interrupted write: skip it, keep the rest
    return out


def earlier_looks(run_dir: Path, results: list[Result], machine: dict, path: Path | None = None) -> dict[str, Earlier]:
    """Per cell id: its looks in other run folders since its last PASS there."""
    here = str(Path(run_dir).resolve())
    entries = _read(path or ledger_path(run_dir))
    out = {}
    for r in results:
        key = _key(r, machine)
        by_run: dict[str, dict] = {}
        for e in entries:
            if e.get("key") != key or e.get("run") == here:
                continue
            if e.get("verdict") == "PASS":
                by_run = {}  # a PASS ends the sequence: what came before it is spent
                continue
            by_run[e["run"]] = e
        if by_run:
            out[r.cell_id] = Earlier(sum(int(e.get("looks", 1)) for e in by_run.values()), tuple(by_run))
    return out


def record(run_dir: Path, results: list[Result], machine: dict, verdicts: dict[str, str], earlier: dict[str, Earlier],
           path: Path | None = None) -> Path:
    """Append this gate's cells to the ledger and write the run folder's gate-looks.json."""
    here = str(Path(run_dir).resolve())
    ledger = path or ledger_path(run_dir)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"key": _key(r, machine), "cell_id": r.cell_id, "run": here, "looks": r.looks,
                         "verdict": verdicts.get(r.cell_id, "")}) for r in results if r.cell_id in verdicts]
    with ledger.open("a") as fh:
        fh.write("".join(line + "\n" for line in lines))
    looks = {r.cell_id: {"looks_here": r.looks, "earlier_looks": earlier[r.cell_id].looks if r.cell_id in earlier else 0,
                         "fresh_runs": 1 + (len(earlier[r.cell_id].runs) if r.cell_id in earlier else 0),
                         "earlier_runs": list(earlier[r.cell_id].runs) if r.cell_id in earlier else []}
             for r in results if r.cell_id in verdicts}
    atomic_write_text(Path(run_dir) / LOOKS_FILE, json.dumps({"ledger": str(ledger), "cells": looks}, indent=1))
    return ledger
