import json

import pytest

from odbench.core.records import RESULT_SCHEMA_VERSION, Feeds, ProcessSamples, Result, split_by_medians
from odbench.bench.store import REPO_ROOT, ResultStore, portable_spec
from tests.helpers import cell


def _result(cell_id="a__b__host__query", **kw):
    return Result(cell_id=cell_id, model="m", variant_id="m/fp32", runtime="onnxruntime", profile="host",
                  measured_on="device", scenario="query", verdict="OK", **kw)


def test_put_get_round_trip_and_resume(tmp_path):
    store = ResultStore(tmp_path)
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


def test_specs_are_stored_repo_relative_and_read_back_absolute(tmp_path):
    model = REPO_ROOT / "artifacts" / "x" / "model.onnx"
    spec = cell(model, "rel", feeds=Feeds(path=str(REPO_ROOT / "artifacts" / "x" / "feeds.npz")))
    store = ResultStore(tmp_path)
    store.put_spec(spec)
    on_disk = json.loads((tmp_path / "specs" / f"{spec.cell_id}.json").read_text())
    assert on_disk["variant_path"] == "artifacts/x/model.onnx" and on_disk["feeds"]["path"] == "artifacts/x/feeds.npz"
    assert store.get_spec(spec.cell_id) == portable_spec(spec, to_disk=False) == spec


def test_finished_processes_of_a_running_cell_are_kept_until_it_is_merged(tmp_path):
    store = ResultStore(tmp_path)
    part = _result(processes=(ProcessSamples((1.0,)),))
    store.put_part(part, 2)
    assert store.get_part(part.cell_id, 2) == part and store.get_part(part.cell_id, 1) is None
    store.drop_parts(part.cell_id)
    assert store.get_part(part.cell_id, 2) is None


def test_schema_version_is_checked(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_result())
    data = json.loads(store.path_for("a__b__host__query").read_text())
    assert data["schema_version"] == RESULT_SCHEMA_VERSION
    data["schema_version"] = 999
    with pytest.raises(ValueError, match="schema version 999"):
        Result.from_dict(data)


def test_unreadable_file_is_skipped_not_fatal(tmp_path, capsys):
    store = ResultStore(tmp_path)
    store.put(_result())
    (store.cells / "broken.json").write_text("{ not json")
    assert [r.cell_id for r in store.all()] == ["a__b__host__query"]
    assert "skipping unreadable result" in capsys.readouterr().err


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
    store = ResultStore(tmp_path)
    store.put(_result())
    data = json.loads(store.path_for("a__b__host__query").read_text())
    for key in ("parity", "runtime_options"):
        data.pop(key)
    data["schema_version"] = 1
    r = Result.from_dict(data)
    assert r.schema_version == RESULT_SCHEMA_VERSION and r.parity == {} and r.verdict == "OK"
