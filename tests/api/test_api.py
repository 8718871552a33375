"""The Python API: plan checks every value before anything is built; gate and table read through RunFolder."""
from __future__ import annotations

import pytest
import yaml

from odbench import api
from odbench.core.records import TIMING_PRESETS
from tests.conftest import make_tiny_onnx
from tests.verdicts.test_gate import FAST, _write_run, result


def test_plan_types_every_value_and_builds_nothing(tmp_path):
    model = make_tiny_onnx(tmp_path / "m.onnx")
    p = api.plan(onnx=[model], runtimes=["onnxruntime:allow_spinning=0", "faulty:work_ms=1.5"], dims=["batch=2"],
                 preset="default", processes=3, out=tmp_path / "run")
    assert p.runtimes == (("onnxruntime", {"allow_spinning": False}), ("faulty", {"work_ms": 1.5}))
    assert p.timing.processes == 3 and p.timing.min_time_s == TIMING_PRESETS["default"].min_time_s
    assert p.dims == (("batch", 2),) and p.runtimes_asked and not (tmp_path / "run").exists()


@pytest.mark.parametrize("kwargs, needle", [
    ({"models": ["nope"]}, "unknown zoo model 'nope'"),
    ({"runtimes": ["onnxruntime:graph_optimization=fast"]}, "must be one of disable, basic, extended, all"),
    ({"preset": "turbo"}, "unknown preset 'turbo'"),
    ({"timeout": -1.0}, "--timeout must be a positive number of seconds"),
    ({"processes": 1}, "a gating preset needs at least 2 processes"),
    ({"recipe": "most"}, "unknown recipe 'most'"),
])
def test_plan_refuses_bad_values_with_one_line(kwargs, needle):
    with pytest.raises(api.UsageError) as info:
        api.plan(**kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_gate_and_table_on_a_run_folder(tmp_path):  # report: tests/bench/test_resume.py, on a real run
    run = tmp_path / "run"
    _write_run(run, [result("rank-50", FAST)])
    budgets = tmp_path / "b.yaml"
    budgets.write_text(yaml.safe_dump({"budgets": [{"scenario": "rank-50", "latency_ms": {"p95": 2}}]}))
    g = api.gate(run, budgets)
    assert g.exit_code == 0 and [v.verdict for v in g.verdicts] == ["PASS"] and g.paths["markdown"].exists()
    md, csv_path = api.table(run)
    assert "1 cells: OK 1." in md.read_text() and csv_path.exists()
    with pytest.raises(api.UsageError, match="no cells/"):
        api.gate(tmp_path, budgets)
    with pytest.raises(api.UsageError, match="is a folder: compare takes two .onnx files"):
        api.compare(run, run)
