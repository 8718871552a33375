import json
from pathlib import Path

import pytest

from odbench.bench.run_folder import RunFolder, RunFolderError, is_unreadable, odbench_build
from odbench.core.records import RESULT_SCHEMA_VERSION, Feeds, ProcessSamples, Result, split_by_medians, to_json
from tests.helpers import cell


def _result(cell_id="a__b__host__query", **kw):
    return Result(cell_id=cell_id, model="m", variant_id="m/fp32", runtime="onnxruntime", profile="host",
                  measured_on="device", scenario="query", verdict="OK", **kw)


def test_put_get_round_trip_and_resume(tmp_path):
    store = RunFolder(tmp_path)
    assert not store.done("a__b__host__query")
    procs = (ProcessSamples((1.0, 2.0, 1.5), warmup_runs=10, started_at="t0"), ProcessSamples((1.25, 2.5), warmup_runs=12))
    r = _result(processes=procs, stats={"p50": 1.5})
    store.put(r)
    assert store.done(r.cell_id)
    assert store.get(r.cell_id) == r
    assert not list(store.cells.glob(".*.tmp"))  # no temp files left behind
    summary = json.loads(store.path_for(r.cell_id).read_text())
    assert [p["samples_ms"] for p in summary["processes"]] == [[], []]  # samples live in the .npz beside it
    assert store.samples_path(r.cell_id).exists()
    assert store.get(r.cell_id).process_medians_ms == (1.5, 1.875)


def test_specs_are_stored_relative_to_the_run_folder_and_read_back_absolute(tmp_path):
    model = tmp_path / "cache" / "x" / "model.onnx"
    spec = cell(model, "rel", feeds=Feeds(path=str(tmp_path / "cache" / "x" / "feeds.npz")))
    store = RunFolder(tmp_path / "run")
    store.put_spec(spec)
    on_disk = json.loads((tmp_path / "run" / "specs" / f"{spec.cell_id}.json").read_text())
    assert on_disk["variant_path"] == "../cache/x/model.onnx" and on_disk["feeds"]["path"] == "../cache/x/feeds.npz"
    assert on_disk["_paths"]["variant_path"] == str(model)  # and absolute, for a folder moved on its own
    assert store.get_spec(spec.cell_id) == spec
    moved = tmp_path / "elsewhere" / "deeper"
    moved.parent.mkdir()
    (tmp_path / "run").rename(moved)  # the run folder alone moved: the absolute copy still finds the model
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    assert RunFolder(moved).get_spec(spec.cell_id).variant_path == str(model)


def test_a_spec_from_before_run_relative_paths_is_found_in_an_ancestor(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "artifacts" / "x").mkdir(parents=True)
    (checkout / "artifacts" / "x" / "model.onnx").write_bytes(b"x")
    spec = cell(Path("artifacts/x/model.onnx"), "old")
    run = RunFolder(checkout / "results" / "old-run")
    legacy = json.loads(to_json(spec))  # as the old store wrote it: relative to the checkout, no _paths
    (run.root / "specs").mkdir()
    (run.root / "specs" / f"{spec.cell_id}.json").write_text(json.dumps(legacy))
    assert run.get_spec(spec.cell_id).variant_path == str(checkout.resolve() / "artifacts" / "x" / "model.onnx")


def test_open_says_what_is_missing_and_a_file_is_no_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="no such folder"):
        RunFolder.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFolderError, match=r"no cells/"):
        RunFolder.open(tmp_path / "empty")
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        RunFolder(tmp_path / "f")


def test_run_info_records_the_odbench_version_and_git_commit(tmp_path):
    store = RunFolder(tmp_path)
    store.put_run_info({"preset": "quick"})
    store.put_run_info({"matrix_s": 1.0})
    info = store.run_info()
    assert info["preset"] == "quick" and info["matrix_s"] == 1.0
    assert info["odbench"] == odbench_build() and info["odbench"]["version"] not in ("", None)
    # this test runs from a git checkout: the commit is a 40-hex sha
    assert info["odbench"]["git_commit"] is None or len(info["odbench"]["git_commit"]) == 40


def test_finished_processes_of_a_running_cell_are_kept_until_it_is_merged(tmp_path):
    store = RunFolder(tmp_path)
    part = _result(processes=(ProcessSamples((1.0,)),))
    store.put_part(part, 2)
    assert store.get_part(part.cell_id, 2) == part and store.get_part(part.cell_id, 1) is None
    store.drop_parts(part.cell_id)
    assert store.get_part(part.cell_id, 2) is None


def test_schema_version_is_checked(tmp_path):
    store = RunFolder(tmp_path)
    store.put(_result())
    data = json.loads(store.path_for("a__b__host__query").read_text())
    assert data["schema_version"] == RESULT_SCHEMA_VERSION
    data["schema_version"] = 999
    with pytest.raises(ValueError, match="schema version 999"):
        Result.from_dict(data)


def test_an_unreadable_cell_is_an_error_entry_naming_the_file_and_the_parse_error(tmp_path):
    store = RunFolder(tmp_path)
    store.put(_result())
    spec = cell(tmp_path / "m.onnx", "tiny")
    store.put_spec(spec)
    store.put(_result(cell_id=spec.cell_id))
    store.path_for(spec.cell_id).write_text('{"cell_id": "trunc')  # truncated, as a disk error leaves it
    (store.cells / "no-spec.json").write_text("{ not json")
    got = {r.cell_id: r for r in store.results()}
    assert len(got) == 3 and got["a__b__host__query"].verdict == "OK"
    bad = got[spec.cell_id]
    assert bad.verdict == "ERROR" and is_unreadable(bad) and bad.model == "tiny" and bad.runtime == "onnxruntime"
    assert f"{tmp_path.name}/cells/{spec.cell_id}.json" in bad.reason and "JSONDecodeError" in bad.reason
    assert "no readable spec" in got["no-spec"].reason
    assert not store.done(spec.cell_id) and store.unreadable_error(spec.cell_id).startswith("JSONDecodeError")
    assert [r.cell_id for r in store.unreadable()] == sorted([spec.cell_id, "no-spec"])
    with pytest.raises(ValueError):
        store.get(spec.cell_id)


def test_a_version_2_result_recovers_its_processes_from_their_medians():
    first, second = (1.0, 3.0, 2.0, 2.5), (5.0, 4.0, 6.0)
    data = json.loads(json.dumps({"cell_id": "c", "model": "m", "variant_id": "m/fp32", "runtime": "onnxruntime",
                                  "profile": "host", "measured_on": "device", "scenario": "q", "verdict": "UNSTABLE",
                                  "samples_ms": first + second, "process_medians_ms": [2.25, 5.0], "schema_version": 2}))
    r = Result.from_dict(data)
    assert r.processes_known and [p.samples_ms for p in r.processes] == [first, second]
    assert split_by_medians(first + second, (9.0, 9.0)) is None
    data["process_medians_ms"] = [9.0, 9.0]
    lost = Result.from_dict(data)
    assert not lost.processes_known and lost.samples_ms == first + second


def test_a_version_1_result_reads_as_version_3_without_parity(tmp_path):
    store = RunFolder(tmp_path)
    store.put(_result())
    data = json.loads(store.path_for("a__b__host__query").read_text())
    for key in ("parity", "runtime_options"):
        data.pop(key)
    data["schema_version"] = 1
    r = Result.from_dict(data)
    assert r.schema_version == RESULT_SCHEMA_VERSION and r.parity == {} and r.verdict == "OK"
