"""The CLI as a user meets it: bring-your-own ONNX, device validation, the table."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from odbench.cli import run as run_cli
from odbench.models import ZOO, get_model
from tests.conftest import make_tiny_onnx

REPO = Path(__file__).resolve().parents[1]


def odbench(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "odbench", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_run_on_an_unseen_onnx_file_produces_a_row(tmp_path):
    model = make_tiny_onnx(tmp_path / "mine.onnx", width=6)
    out = tmp_path / "run"
    p = odbench("run", "--onnx", str(model), "--dim", "batch=3", "--preset", "smoke", "--out", str(out), "-q")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "table.csv").open()))
    mine = [r for r in rows if r["runtime"] == "onnxruntime"]
    assert len(mine) == 1 and mine[0]["verdict"] in ("OK", "UNSTABLE") and mine[0]["scenario"] == "synthetic"
    assert float(mine[0]["p50_ms"]) > 0
    assert mine[0]["parity_vs_fp32"] == "cos 1.0000" and mine[0]["parity_vs_ort"] == ""
    # the default runtimes: OpenVINO is compared with ORT; torch eager runs only when asked for (--runtime torch)
    (r,) = [r for r in rows if r["runtime"] == "openvino"]
    assert r["verdict"] in ("OK", "UNSTABLE"), r["reason"]
    assert r["parity_vs_ort"] == "cos 1.0000" and r["speedup_vs_ort"]
    assert not [r for r in rows if r["runtime"] == "torch"]
    assert any(r["runtime"] == "null" for r in rows)  # harness overhead measured alongside
    assert "Harness overhead (null session" in (out / "table.md").read_text()
    # a rerun resumes: nothing left to do
    again = odbench("run", "--onnx", str(model), "--dim", "batch=3", "--preset", "smoke", "--out", str(out), "-q")
    assert "0 to run" in again.stderr


def test_run_with_a_corrupt_onnx_records_an_error_row_and_exits_nonzero(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    out = tmp_path / "run"
    p = odbench("run", "--onnx", str(bad), "--preset", "smoke", "--out", str(out), "-q", "--no-overhead")
    assert p.returncode == 1
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert rows[0]["verdict"] == "ERROR" and rows[0]["reason"]


def _run_in_process(argv, tmp_path, capsys, monkeypatch) -> tuple[int, str]:
    from odbench.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("ODBENCH_CACHE", str(tmp_path / "cache"))  # main() sets it; monkeypatch restores it
    code = main(["--cache", str(tmp_path / "cache"), *argv])
    return code, capsys.readouterr().err


def _variants_json(run_dir: Path) -> tuple[list[dict], dict[str, dict]]:
    entries = json.loads((run_dir / "variants.json").read_text())
    return [e for e in entries if e.get("built", True)], {e["step"]: e for e in entries if e.get("built", True) is False}


def test_a_step_that_builds_nothing_is_a_row_and_the_run_benchmarks_the_rest(tmp_path, capsys, monkeypatch):
    """--onnx with --recipe on a 6x6 MatMul: int8 dynamic builds, every other ONNX step refuses (no weight
    large enough to split, prune or mix, no embedding table). Before issue 24 the failed-step log line
    raised AttributeError and nothing was benchmarked."""
    from odbench.compressors.recipes import RECIPES

    model = make_tiny_onnx(tmp_path / "mine.onnx", width=6)
    out = tmp_path / "run"
    code, err = _run_in_process(["run", "--onnx", str(model), "--recipe", "default", "--runtime", "onnxruntime", "--preset", "smoke",
                                 "--out", str(out), "-q", "--no-overhead", "--no-accuracy"], tmp_path, capsys, monkeypatch)
    assert code == 0 and "Traceback" not in err, err[-3000:]
    built, not_built = _variants_json(out)
    steps = {s.key for s in RECIPES[("onnx", "default")]}
    # today int8dyn builds and int8mixed, prune50, svd and embint8 refuse; a recipe that grows keeps the accounting
    assert set(not_built) <= steps - {"int8dyn"} and {"int8mixed", "embint8"} <= set(not_built), not_built.keys()
    assert len(built) == 1 + len(steps) - len(not_built)  # the user's file, and every step that built
    for e in not_built.values():
        assert e["kind"] == "refused" and e["reason"] and e["schema_version"] == 1, e
        assert f"{e['id']} ({e['compressor']}): not built, refused: {e['reason']}" in err  # logged with its reason
        assert f"`{e['id']}` ({e['compressor']}): not built, refused: {e['reason']}" in (out / "table.md").read_text()
    assert built[0]["id"].endswith("/as-is") and "int8-dyn" in [e["id"].split("/")[1] for e in built]  # the user's own file first
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert sorted(r["variant"] for r in rows) == sorted(e["id"].split("/")[1] for e in built)  # all built, all benchmarked
    assert all(r["verdict"] == "OK" for r in rows), [(r["variant"], r["reason"]) for r in rows]


def test_an_already_int8_file_is_benchmarked_as_is_and_not_quantized_again(tmp_path, capsys, monkeypatch):
    """The issue's first case in small: ONNX Runtime's dynamic int8 of the tiny model, run with --recipe default."""
    from tests.core.test_onnx_tools import make_dynamic

    model = make_dynamic(tmp_path / "mine-int8.onnx", tmp_path)
    out = tmp_path / "run"
    code, err = _run_in_process(["run", "--onnx", str(model), "--recipe", "default", "--runtime", "onnxruntime", "--preset", "smoke",
                                 "--out", str(out), "-q", "--no-overhead", "--no-accuracy"], tmp_path, capsys, monkeypatch)
    assert code == 0, err[-3000:]
    assert "already quantized (1 DynamicQuantizeLinear, 1 MatMulInteger): benchmarked as-is as your baseline" in err
    built, not_built = _variants_json(out)
    for step in ("int8dyn", "int8mixed", "embint8"):  # the quantizers skip it, saying why
        assert not_built[step]["reason"].startswith("already quantized (1 DynamicQuantizeLinear, 1 MatMulInteger)"), not_built[step]
    (baseline,) = [e for e in built if e["parent"] is None]
    assert baseline["id"].endswith("/as-is") and baseline["config"]["fidelity_reference"] == "the user's own outputs (this file as-is)"
    assert baseline["accuracy"]["fidelity_cosine"] == pytest.approx(1.0)  # against its own outputs, labelled so
    rows = {r["variant"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert rows["as-is"]["verdict"] == "OK", rows["as-is"]["reason"]
    assert "is already quantized (1 DynamicQuantizeLinear, 1 MatMulInteger): benchmarked as-is" in (out / "table.md").read_text()


def test_devices_validate_names_the_bad_field(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump({"name": "board", "arch": "aarch64", "cores": 4, "threads": -1, "memory_mb": 4096}))
    p = odbench("devices", "validate", str(path))
    assert p.returncode == 1 and "field 'threads'" in p.stderr
    listed = odbench("devices")
    assert listed.returncode == 0 and listed.stdout.startswith("This machine (profile 'host'")
    from odbench.devices.catalog import get_profile
    from odbench.devices.check import emulation_note

    for line in ("onnxruntime 1.", "execution_providers: ", "openvino", "ISA: ", "rpi5", "device only (aarch64)",
                 "x86-laptop-avx2", emulation_note(get_profile("x86-laptop-avx2"))):
        assert line in listed.stdout, line


def test_unknown_profile_is_a_clear_error(tmp_path):
    p = odbench("run", "--onnx", str(make_tiny_onnx(tmp_path / "m.onnx")), "--profile", "rpi9", "--out", str(tmp_path / "r"))
    assert p.returncode == 2 and "unknown device profile 'rpi9'" in p.stderr


def test_runtime_option_sweep_expands_to_one_config_per_value():
    from odbench.cli import parse_runtimes

    configs = parse_runtimes(["onnxruntime:graph_optimization=disable|basic|all,allow_spinning=false", "openvino:precision=f32|bf16"])
    assert configs == [
        ("onnxruntime", {"graph_optimization": "disable", "allow_spinning": False}),
        ("onnxruntime", {"graph_optimization": "basic", "allow_spinning": False}),
        ("onnxruntime", {"allow_spinning": False}),  # 'all' is the default: only changed options are kept
        ("openvino", {}),
        ("openvino", {"precision": "bf16"}),
    ]


def test_a_runtime_that_is_not_installed_is_a_skipped_row_not_an_import_error(tmp_path):
    """openvino made unimportable in the CLI process: its cells are SKIPPED with the reason, the rest run."""
    model = make_tiny_onnx(tmp_path / "m" / "model.onnx")
    out = tmp_path / "run"
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'openvino' or name.startswith('openvino.'):\n"
        "            raise ImportError('No module named openvino (blocked by the test)')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from odbench.cli import main\n"
        f"code = main(['run', '--onnx', {str(model)!r}, '--runtime', 'onnxruntime', '--runtime', 'openvino', "
        f"'--preset', 'smoke', '--out', {str(out)!r}, '-q', '--no-overhead'])\n"
        "main(['devices'])\n"
        "sys.exit(code)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = {r["runtime"]: r for r in csv.DictReader((out / "table.csv").open())}
    assert rows["onnxruntime"]["verdict"] in ("OK", "UNSTABLE")
    assert rows["openvino"]["verdict"] == "SKIPPED" and "openvino is not installed" in rows["openvino"]["reason"]
    assert "openvino: not available: openvino is not installed" in p.stdout


BUDGETS_BAD = "budgets:\n  - match: {model: x}\n    p99_ms: fast\n"


def _usage_cases(tmp_path):
    model = str(make_tiny_onnx(tmp_path / "m.onnx"))
    run_dir = tmp_path / "run"
    (run_dir / "cells").mkdir(parents=True)
    bad_budgets = tmp_path / "bad.yaml"
    bad_budgets.write_text(BUDGETS_BAD)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    no_cells = tmp_path / "no-cells"
    no_cells.mkdir()
    (no_cells / "machine.json").write_text("{}")
    return {
        "unknown model": (["run", "--model", "nosuch"], "unknown zoo model 'nosuch'"),
        "unknown runtime": (["run", "--onnx", model, "--runtime", "tflite"], "unknown runtime 'tflite'"),
        "unknown runtime option": (["run", "--onnx", model, "--runtime", "onnxruntime:bogus=1"], "unknown option(s) ['bogus']"),
        "option without a value": (["run", "--onnx", model, "--runtime", "onnxruntime:graph_optimization"], "expected KEY=VALUE"),
        "unknown profile": (["run", "--onnx", model, "--profile", "rpi9"], "unknown device profile 'rpi9'"),
        "unknown preset": (["run", "--onnx", model, "--preset", "turbo"], "'turbo' is not one of"),
        "missing onnx file": (["run", "--onnx", str(tmp_path / "nope.onnx")], "nope.onnx does not exist"),
        "missing feeds file": (["run", "--onnx", model, "--feeds", str(tmp_path / "f.npz")], "feeds file"),
        "bad dim": (["run", "--onnx", model, "--dim", "batch=0"], "--dim expects NAME=SIZE"),
        "bad int range": (["run", "--onnx", model, "--int-range", "9:1"], "LOW < HIGH"),
        "dask without scheduler": (["run", "--onnx", model, "--executor", "dask"], "no Dask scheduler address"),
        "unknown flag": (["run", "--bogus"], "No such option '--bogus'"),
        "unknown command": (["frobnicate"], "No such command 'frobnicate'"),
        "missing run folder": (["gate", str(tmp_path / "none"), "--budgets", "budgets/example.yaml"], "is not a run folder"),
        "missing budgets file": (["gate", str(run_dir), "--budgets", str(tmp_path / "none.yaml")], "none.yaml"),
        "bad budgets file": (["gate", str(run_dir), "--budgets", str(bad_budgets)], "budgets"),
        "bad regression rule": (["gate", str(run_dir), "--budgets", "budgets/example.yaml", "--regression", "fast"], "--regression"),
        "report of no run": (["report", str(tmp_path / "none")], "is not a run folder"),
        "table of no run": (["table", str(tmp_path / "none")], "is not a run folder"),
        "show unknown profile": (["devices", "show", "rpi9"], "unknown device profile 'rpi9'"),
        "worker without scheduler": (["worker", "--profile", "host"], "no scheduler address"),
        "compress unknown model": (["compress", "--model", "nosuch"], "unknown zoo model 'nosuch'"),
        # issue 24: paths and values checked before anything is built
        "out is a file": (["run", "--onnx", model, "--out", str(a_file)], f"--out {a_file} is a file, not a folder"),
        "out under a file": (["run", "--onnx", model, "--out", str(a_file / "sub")], f"cannot be created: {a_file} is a file"),
        "negative timeout": (["run", "--onnx", model, "--timeout", "-1"], "'--timeout': -1.0 is not in the range x>0"),
        "zero timeout": (["run", "--onnx", model, "--timeout", "0"], "'--timeout': 0.0 is not in the range x>0"),
        "nan timeout": (["run", "--onnx", model, "--timeout", "nan"], "--timeout must be a positive number of seconds, got nan"),
        "infinite timeout": (["run", "--onnx", model, "--timeout", "inf"], "--timeout must be a positive number of seconds, got inf"),
        "nan min-time": (["run", "--onnx", model, "--min-time", "nan"], "--min-time must be a positive number of seconds, got nan"),
        "zero processes": (["run", "--onnx", model, "--processes", "0"], "'--processes': 0 is not in the range x>=1"),
        "zero decide rounds": (["gate", str(run_dir), "--budgets", "budgets/example.yaml", "--max-rounds", "0"], "'--max-rounds': 0"),
        "gate without machine.json": (["gate", str(run_dir), "--budgets", "budgets/example.yaml"],
                                      f"{run_dir} is not a run folder: it has no machine.json"),
        "report without machine.json": (["report", str(run_dir)], f"{run_dir} is not a run folder: it has no machine.json"),
        "gate without cells": (["gate", str(no_cells), "--budgets", "budgets/example.yaml"],
                               f"{no_cells} is not a run folder: it has no cells/"),
        "report of a file": (["report", str(a_file)], "is a file"),
        # runtime option values are typed by the runtime's Options
        "a boolean that is not one": (["run", "--onnx", model, "--runtime", "onnxruntime:allow_spinning=flase"],
                                      "allow_spinning is a boolean (true, false, 1 or 0); got 'flase'"),
        "an enum value not among its choices": (["run", "--onnx", model, "--runtime", "onnxruntime:graph_optimization=fast"],
                                                "graph_optimization must be one of disable, basic, extended, all; got 'fast'"),
        "a number that is not one": (["run", "--onnx", model, "--runtime", "faulty:work_ms=slow"], "work_ms must be a number; got 'slow'"),
        "an integer that is not one": (["run", "--onnx", model, "--runtime", "openvino:streams=1.5"],
                                       "streams must be an integer; got '1.5'"),
        "accuracy of an unknown model": (["accuracy", "--model", "nope"], "unknown zoo model 'nope'"),
        "accuracy on an unknown runtime": (["accuracy", "--runtime", "tflite"], "unknown runtime 'tflite'"),
        "arm: an unknown subcommand": (["arm", "bogus"], "No such command 'bogus'"),
        "arm table of no run": (["arm", "table", str(tmp_path / "none")], "is not a run folder"),
        "arm check of no run": (["arm", "check", str(tmp_path / "none")], "is not a run folder"),
        "design of no run": (["design", str(tmp_path / "none")], "is not a run folder"),
        "pareto of no run": (["pareto", str(tmp_path / "none")], "is not a run folder"),
        "pareto of a model the run lacks": (["pareto", str(run_dir), "--model", "nope"], "holds no 'query' cells of nope"),
        "int8-front with a negative k": (["int8-front", "--k", "-1"], "-1 is not in the range x>=0"),
        "int8-front on an unknown runtime": (["int8-front", "--time-only", "--runtime", "tflite"], "unknown runtime 'tflite'"),
        "gate with a baseline without machine.json": (["gate", str(run_dir), "--budgets", "budgets/example.yaml", "--baseline",
                                                       str(run_dir)], "has no machine.json"),
    }


def test_every_usage_error_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """In-process, so a traceback would fail the test instead of hiding in a subprocess's stderr."""
    from odbench.cli import main

    monkeypatch.chdir(REPO)
    monkeypatch.delenv("ODBENCH_SCHEDULER", raising=False)
    for name, (argv, needle) in _usage_cases(tmp_path).items():
        code = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert code == 2, (name, captured.err)
        assert len(lines) == 1 and lines[0].startswith("odbench: error: "), (name, captured.err)
        assert needle in lines[0], (name, lines[0])
    assert not (tmp_path / "run" / "table.md").exists()  # nothing ran


def test_help_on_every_command_and_version(capsys):
    import click

    from odbench.cli import COMMANDS, main

    assert main(["--version"]) == 0 and capsys.readouterr().out.startswith("odbench, version ")
    names = [[c.name] for c in COMMANDS] + [["arm", sub] for sub in COMMANDS[[c.name for c in COMMANDS].index("arm")].commands]
    for command in [[], *names]:
        assert main([*command, "--help"]) == 0
        text = capsys.readouterr().out
        assert text.startswith(" ".join(["Usage: odbench", *command])), text[:200]
    assert all(isinstance(c, click.Command) for c in COMMANDS)  # real Click commands, no argparse inside


def test_runtime_option_values_are_typed():
    from odbench.cli import parse_runtime

    assert parse_runtime("faulty:work_ms=1.5") == ("faulty", {"work_ms": 1.5})
    assert parse_runtime("onnxruntime:allow_spinning=0,pin_threads=TRUE") == ("onnxruntime", {"allow_spinning": False, "pin_threads": True})
    assert parse_runtime("openvino:streams=2,hint=THROUGHPUT") == ("openvino", {"streams": 2, "hint": "THROUGHPUT"})


def test_the_analyses_are_commands(tmp_path, capsys):
    """design and arm table on a run folder, in-process (no python -m entry points left)."""
    from odbench.bench.run_folder import RunFolder
    from odbench.cli import main

    run = RunFolder(tmp_path / "run").root
    assert main(["design", str(run)]) == 0
    assert capsys.readouterr().out.startswith("| cell | processes | samples/process |")
    assert main(["arm", "table", str(run)]) == 0
    assert capsys.readouterr().out.startswith("| variant | runtime | profile | scenario | measured_on |")


def test_a_usage_error_from_the_console_script_has_no_traceback(tmp_path):
    p = odbench("run", "--model", "nosuch", "--out", str(tmp_path / "r"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"odbench: error: unknown zoo model 'nosuch'; known: {', '.join(ZOO)}"


def test_the_default_plan_names_real_zoo_models_and_scenarios():
    """make run's models and the scenarios it leaves out must exist (a renamed model would silently drop out)."""
    assert set(run_cli.DEFAULT_MODELS) <= set(ZOO)
    for name, left_out in run_cli.SWEEP_LEFT_OUT.items():
        model = get_model(name)
        assert set(left_out) <= set(model.scenarios) and model.headline not in left_out
