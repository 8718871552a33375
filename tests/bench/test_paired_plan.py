"""bench/paired_plan.py and the table's paired speedups (report/paired_figures.py), on real tiny models."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from odbench.bench import paired_plan, paired_run
from odbench.bench.executors.local import LocalExecutor
from odbench.bench.matrix import Workload, plan
from odbench.bench.store import ResultStore
from odbench.core.records import TIMING_PRESETS, Feeds, to_json
from odbench.devices.catalog import get_profile
from odbench.models.onnx_file import user_variant
from odbench.report.design import standardized_rows
from odbench.report.tables import write_tables
from tests.bench.test_paired_cell import make_stack_onnx


@pytest.mark.slow
def test_a_run_gets_paired_speedups_with_the_isolated_ones_beside(tmp_path):
    small = user_variant(make_stack_onnx(tmp_path / "small.onnx", layers=2, width=192))
    big = user_variant(make_stack_onnx(tmp_path / "big.onnx", layers=6, width=192))
    va = dataclasses.replace(small, id="tiny/fp32", model="tiny")
    vb = dataclasses.replace(big, id="tiny/big", model="tiny", parent="tiny/fp32")
    feeds = {"synthetic": (Feeds(dims=(("batch", 8),)), 8)}
    timing = dataclasses.replace(TIMING_PRESETS["smoke"], processes=2, min_time_s=0.2, max_time_s=0.5)
    cells = plan([Workload(va, feeds), Workload(vb, feeds)], [("onnxruntime", {})], [get_profile("host")], timing)
    run = tmp_path / "run"
    store = ResultStore(run)
    store.write_json("variants.json", [json.loads(to_json(v)) for v in (va, vb)])
    LocalExecutor().run(cells, store)
    results = {c.cell_id: store.get(c.cell_id) for c in cells}

    [spec] = paired_plan.plan_groups(cells, results)
    assert [m.variant_id for m in spec.members] == ["tiny/fp32", "tiny/big"]
    [done] = paired_plan.run_groups([spec], run, processes=6, log=lambda _: None)  # 6: the fewest with a 95% interval
    assert done.verdict == "OK" and len(done.processes) == 6
    again = paired_plan.run_groups([spec], run, processes=6, log=lambda _: None)  # resumes: nothing to add
    assert [(p.index, p.order_seed, p.rounds) for p in again[0].processes] == [(p.index, p.order_seed, p.rounds) for p in done.processes]

    write_tables(run)
    rows = {r["variant"]: r for r in csv.DictReader((run / "table.csv").open())}
    b = rows["big"]
    assert b["speedup_vs_fp32_design"] == "paired" and b["paired_processes"] == "6"
    assert float(b["speedup_vs_fp32_lo"]) <= float(b["speedup_vs_fp32"]) <= float(b["speedup_vs_fp32_hi"]) < 1.0
    assert b["speedup_vs_fp32_isolated"] and b["pairing_cost"].endswith("%")
    assert b["speedup_vs_parent"] == b["speedup_vs_fp32"] and b["speedup_vs_ort_design"] == "isolated"
    assert rows["fp32"]["speedup_vs_fp32"] == "" and rows["fp32"]["paired_p50_ms"]
    assert "paired" in (run / "table.md").read_text()
    # `odbench design RUN RUN2` checks the paired speedups across two runs too (here a run against itself)
    [row] = [r for r in standardized_rows(run, run) if r.what == "paired speedup"]
    assert row.t == 0 and row.x1 == pytest.approx(float(b["speedup_vs_fp32"]), rel=1e-2)


def test_groups_leave_out_harness_runtimes_unmeasured_cells_and_single_variants(tmp_path):
    from odbench.core.records import Result, Verdict

    a = user_variant(make_stack_onnx(tmp_path / "a.onnx", layers=1, width=8))
    b = user_variant(make_stack_onnx(tmp_path / "b.onnx", layers=2, width=8))
    va, vb = (dataclasses.replace(v, id=f"m/{n}", model="m") for v, n in ((a, "a"), (b, "b")))
    feeds = {"synthetic": (Feeds(dims=(("batch", 1),)), 1)}
    cells = plan([Workload(va, feeds), Workload(vb, feeds)], [("onnxruntime", {}), ("null", {}), ("openvino", {})],
                 [get_profile("host")], TIMING_PRESETS["smoke"])
    ok = {c.cell_id: Result.for_cell(c, Verdict.OK) for c in cells}
    ok.update({c.cell_id: Result.for_cell(c, Verdict.SKIPPED, "no") for c in cells if c.runtime == "openvino" and c.variant_id == "m/b"})
    specs = paired_plan.plan_groups(cells, ok)
    assert [(s.members[0].runtime, len(s.members)) for s in specs] == [("onnxruntime", 2)]


def test_the_preset_sets_the_paired_processes_and_the_flag_overrides_it(tmp_path):
    from odbench import api

    onnx = [str(make_stack_onnx(tmp_path / "m.onnx", layers=1, width=8))]
    assert api.plan(onnx=onnx, preset="smoke", out=tmp_path / "r").paired_processes == 0
    assert api.plan(onnx=onnx, preset="default", out=tmp_path / "r").paired_processes == paired_plan.PAIRED_PROCESSES["default"]
    assert api.plan(onnx=onnx, preset="default", out=tmp_path / "r", paired_processes=0).paired_processes == 0


def test_a_damaged_paired_file_is_named_never_dropped_in_silence(tmp_path, capsys):
    folder = paired_run.paired_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "g.json").write_text('{"schema_version": 1, "spec": {')  # truncated, as a disk error leaves it
    assert paired_run.load_all(tmp_path) == []
    err = capsys.readouterr().err
    assert "unreadable" in err and "g.json" in err and "isolated design" in err
