"""A damaged run folder: one cell file truncated (its parts intact), another truncated with one of its
parts too. table, gate and report name both as ERROR rows; the gate fails where a budget needs one;
resume rebuilds the first from its parts and reruns the second, saying which."""
from __future__ import annotations

import csv

import pytest

from odbench.bench.run_folder import RunFolder
from odbench.cli import main
from tests.conftest import make_tiny_onnx

RUN = ["--runtime", "onnxruntime", "--runtime", "null", "--preset", "default", "--processes", "2", "--min-time", "0.05",
       "--no-parity", "--no-accuracy", "--no-overhead", "-q"]


def _truncate(path, n=200):
    path.write_bytes(path.read_bytes()[:n])


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_unreadable_cells_are_error_rows_and_resume_rebuilds_or_reruns_them(tmp_path, monkeypatch, capsys):
    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "run"
    with monkeypatch.context() as m:  # parts kept, as a harness stopped between storing a cell and dropping them
        m.setattr(RunFolder, "drop_parts", lambda self, cell_id: None)
        assert main(["run", "--onnx", str(model), "--out", str(out), *RUN]) == 0
    folder = RunFolder(out)
    (ort,) = [c for c in folder.cell_ids() if "__onnxruntime__" in c]
    (null,) = [c for c in folder.cell_ids() if "__null__" in c]
    good = folder.get(ort)
    _truncate(folder.path_for(ort))
    _truncate(folder.path_for(null))
    _truncate(folder.part_path(null, 1), 50)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(f"version: 1\nbudgets:\n  - name: tiny-size\n    model: {good.model}\n"
                       "    runtime: onnxruntime\n    size_mb_max: 10\n")
    capsys.readouterr()

    assert main(["table", str(out)]) == 0
    table = capsys.readouterr().out
    assert "2 result file(s) could not be read" in table and f"run/cells/{ort}.json: JSONDecodeError" in table
    rows = {r["runtime"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert rows["onnxruntime"]["verdict"] == rows["null"]["verdict"] == "ERROR"
    assert f"unreadable result run/cells/{null}.json" in rows["null"]["reason"]

    assert main(["gate", str(out), "--budgets", str(budgets)]) == 1  # the size budget needed the ORT cell
    gate_md = capsys.readouterr().out
    assert f"`{ort}`" in gate_md and "cell ERROR: unreadable result" in gate_md
    assert f"unreadable result, no budget needed it: `{null}`" in gate_md

    assert main(["report", str(out), "--markdown"]) == 0
    report = capsys.readouterr().out
    assert "Results that could not be read (ERROR)" in report and ort in report and null in report

    assert main(["run", "--onnx", str(model), "--out", str(out), *RUN]) == 0
    log = capsys.readouterr().err
    assert f"[resume] {ort}: unreadable result (JSONDecodeError" in log and f"{ort}: " in log
    assert [line for line in log.splitlines() if line.startswith(f"[resume] {ort}")][0].endswith("rebuilt from its parts/")
    rerun = [line for line in log.splitlines() if line.startswith(f"[resume] {null}")][0]
    assert "process 1 unreadable (JSONDecodeError" in rerun and "1 intact part(s) kept" in rerun and rerun.endswith("rerun")
    assert "2 cells planned, 1 already done (resume), 1 to run" in log  # the rebuilt one is done, the other reruns
    rebuilt = folder.get(ort)
    assert rebuilt.stats == good.stats and rebuilt.processes == good.processes  # the same numbers, from the parts
    assert folder.get(null).verdict == "OK" and not folder.unreadable()
    assert (out / "cells" / f"{ort}.json.unreadable").exists()  # the damaged file is kept for a look
    assert main(["gate", str(out), "--budgets", str(budgets)]) == 0
