import json

import pytest

from bench.records import RESULT_SCHEMA_VERSION, Result
from bench.store import ResultStore


def _result(cell_id="a__b__host__query", **kw):
    return Result(cell_id=cell_id, model="m", variant_id="m/fp32", runtime="onnxruntime", profile="host",
                  measured_on="device", scenario="query", verdict="OK", **kw)


def test_put_get_round_trip_and_resume(tmp_path):
    store = ResultStore(tmp_path)
    assert not store.done("a__b__host__query")
    r = _result(samples_ms=(1.0, 2.0), stats={"p50": 1.5})
    store.put(r)
    assert store.done(r.cell_id)
    assert store.get(r.cell_id) == r
    assert not list(store.cells.glob(".*.tmp"))  # no temp files left behind


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


def test_a_version_1_result_reads_as_version_2_without_parity(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_result())
    data = json.loads(store.path_for("a__b__host__query").read_text())
    for key in ("parity", "runtime_options"):
        data.pop(key)
    data["schema_version"] = 1
    r = Result.from_dict(data)
    assert r.schema_version == RESULT_SCHEMA_VERSION and r.parity == {} and r.verdict == "OK"
