"""The fault drill (issue 24): one small matrix through the faults a user meets, in one go.

`odbench run --onnx` on a tiny model with the ONNX recipe plus one step that raises, on ONNX Runtime and the
`faulty` runtime whose cell process is killed (SIGKILL, as the OOM killer does), then a damaged result
(one finished cell truncated: table and gate name it as an ERROR row), then a resume that reruns it.
Every finished cell must survive byte for byte and every failure must be named:
the step in variants.json and the log, the killed cell as an ERROR row with its signal.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from odbench.compressors import COMPRESSORS
from odbench.compressors.recipes import RECIPES, Step
from tests.conftest import make_tiny_onnx

REPO = Path(__file__).resolve().parents[1]
FAULT = "injected compression fault (fault drill)"


@dataclass(frozen=True)
class RaisesConfig:
    pass


class Raises:
    """A compressor with a bug: it raises a plain RuntimeError, not a CompressionError."""

    name = "drill-raises"
    Config = RaisesConfig

    def compress(self, variant, task, config, out_dir):
        raise RuntimeError(FAULT)


def _cells(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "cells").glob("*"))}


@pytest.mark.slow
def test_fault_drill_every_finished_cell_survives_and_every_failure_is_named(tmp_path, capsys, monkeypatch):
    from odbench.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("ODBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(COMPRESSORS, "drill-raises", "tests.test_fault_drill:Raises")
    monkeypatch.setitem(RECIPES, ("onnx", "default"), RECIPES[("onnx", "default")] + (Step("boom", "drill-raises", RaisesConfig()),))
    model = make_tiny_onnx(tmp_path / "mine.onnx", width=4)
    run = tmp_path / "run"
    argv = ["--cache", str(tmp_path / "cache"), "run", "--onnx", str(model), "--recipe", "default", "--runtime", "onnxruntime",
            "--runtime", "faulty:fault=kill,at=run,after_runs=5", "--preset", "smoke", "--out", str(run), "-q", "--no-overhead",
            "--no-accuracy"]

    # 1. the matrix with a compression step that raises and a cell process that is killed
    code = main(argv)
    first = capsys.readouterr().err
    assert code == 1, first[-3000:]  # an ERROR cell: exit 1, never a traceback
    assert "Traceback" not in first
    entries = json.loads((run / "variants.json").read_text())
    (boom,) = [e for e in entries if e.get("step") == "boom"]
    assert boom["built"] is False and boom["kind"] == "failed" and boom["reason"] == f"RuntimeError: {FAULT}"
    assert f"{boom['id']} (drill-raises): not built, failed: RuntimeError: {FAULT}" in first
    rows = list(csv.DictReader((run / "table.csv").open()))
    built = [e["id"].split("/")[1] for e in entries if e.get("built", True)]
    assert "as-is" in built and len(rows) == 2 * len(built)  # every built variant on both runtimes
    killed = [r for r in rows if r["runtime"].startswith("faulty")]
    assert killed and all(r["verdict"] == "ERROR" and r["reason"] == "cell process died of SIGKILL" for r in killed)
    finished = {r["variant"] for r in rows if r["runtime"] == "onnxruntime" and r["verdict"] == "OK"}
    assert finished == set(built), [(r["variant"], r["reason"]) for r in rows]
    before = _cells(run)

    # 2. a damaged result: one finished cell truncated to 200 bytes (a disk error, a bad merge, a hand edit)
    (damaged,) = [c for c in before if "as-is__onnxruntime__" in c and c.endswith(".json")]
    (run / "cells" / damaged).write_bytes(before[damaged][:200])
    cell_id = damaged[: -len(".json")]
    assert main(["table", str(run)]) == 0
    capsys.readouterr()
    (row,) = [r for r in csv.DictReader((run / "table.csv").open()) if r["variant"] == "as-is" and r["runtime"] == "onnxruntime"]
    assert row["verdict"] == "ERROR" and row["reason"].startswith(f"unreadable result run/cells/{damaged}: JSONDecodeError")
    budgets = tmp_path / "budgets.yaml"
    model_id = json.loads(before[next(c for c in before if "__onnxruntime__" in c and c != damaged and c.endswith(".json"))])["model"]
    budgets.write_text(f"version: 1\nbudgets:\n  - name: mine-size\n    model: {model_id}\n    runtime: onnxruntime\n    size_mb_max: 10\n")
    assert main(["gate", str(run), "--budgets", str(budgets)]) == 1  # the budget needed the damaged cell
    assert f"`{cell_id}`" in capsys.readouterr().out

    # 3. the resume: the damaged cell is rerun (a stored cell's parts/ are gone), nothing else is run again,
    # nothing finished is lost, every failure is still named
    code = main(argv)
    again = capsys.readouterr().err
    assert code == 1 and "Traceback" not in again
    (line,) = [x for x in again.splitlines() if x.startswith(f"[resume] {cell_id}: unreadable result (JSONDecodeError")]
    assert line.endswith("rerun"), line
    assert f"{len(rows)} cells planned, {len(rows) - 1} already done (resume), 1 to run" in again
    after = _cells(run)
    assert {k: v for k, v in after.items() if not k.startswith(cell_id)} == {k: v for k, v in before.items() if not k.startswith(cell_id)}
    assert json.loads(after[damaged])["verdict"] == "OK"  # measured again, whole
    assert f"{boom['id']} (drill-raises): not built, failed: RuntimeError: {FAULT}" in again
    rows_after = list(csv.DictReader((run / "table.csv").open()))
    assert [(r["variant"], r["runtime"], r["verdict"]) for r in rows_after] == [(r["variant"], r["runtime"], r["verdict"]) for r in rows]
    assert [r["reason"] for r in rows_after if r["runtime"].startswith("faulty")] == [r["reason"] for r in killed]
    table_md = (run / "table.md").read_text()
    assert f"`{boom['id']}` (drill-raises): not built, failed: RuntimeError: {FAULT}" in table_md
