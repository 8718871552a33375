"""Tables: each row's accuracy is its own runtime's (RUN/accuracy.json), never ONNX Runtime's on another runtime's row."""
from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from odbench.bench.run_folder import RunFolder
from odbench.core.records import ProcessSamples, Result, Variant, to_json
from odbench.report import tables
from odbench.report.tables import write_tables
from odbench.stats import intervals
from odbench.verdicts import accuracy as A

ORT_INT8 = {"auc": 0.79, "auc_lo": 0.78, "auc_hi": 0.80, "delta_auc": -0.01, "delta_auc_lo": -0.012, "delta_auc_hi": -0.008}
OV_INT8 = {"auc": 0.61, "auc_lo": 0.60, "auc_hi": 0.62, "delta_auc": -0.19, "delta_auc_lo": -0.20, "delta_auc_hi": -0.18}
OV_FP32 = {"auc": 0.7999, "auc_lo": 0.79, "auc_hi": 0.81, "delta_auc": -0.0001, "delta_auc_lo": -0.0002, "delta_auc_hi": 0.0}
VARIANTS = [
    Variant(id="ctr/fp32", model="ctr", path="x", sha256="a" * 64, size_bytes=2**20,
            accuracy={"auc": 0.80, "auc_lo": 0.79, "auc_hi": 0.81}),
    Variant(id="ctr/int8", model="ctr", path="y", sha256="b" * 64, size_bytes=2**20, accuracy=ORT_INT8, parent="ctr/fp32"),
]


def result(variant: str, runtime: str) -> Result:
    return Result(cell_id=f"ctr.{variant}__{runtime}__host__rank-200", model="ctr", variant_id=f"ctr/{variant}", runtime=runtime,
                  profile="host", measured_on="device", scenario="rank-200", items_per_inference=200,
                  processes=(ProcessSamples((1.0, 1.1, 1.2)),), verdict="OK", stats={"p50": 1.1, "mean": 1.1})


def record(variant: Variant, runtime: str, accuracy: dict | None, error: str = "") -> A.RuntimeAccuracy:
    return A.RuntimeAccuracy(variant.id, variant.sha256, runtime, "1.0", "avx2", "Options()", accuracy, error)


def make_run(tmp_path, records: list[A.RuntimeAccuracy] | None):
    store = RunFolder(tmp_path)
    for v, rt in (("fp32", "onnxruntime"), ("fp32", "openvino"), ("int8", "onnxruntime"), ("int8", "openvino"), ("int8", "mnn")):
        store.put(result(v, rt))
    store.write_json("variants.json", [json.loads(to_json(v)) for v in VARIANTS])
    if records is not None:
        store.write_json(A.ACCURACY_FILE, {"version": A.ACCURACY_FILE_VERSION, "records": [r.to_dict() for r in records]})
    _md, csv_path = write_tables(tmp_path)
    with open(csv_path) as f:
        return {(r["variant"], r["runtime"]): r for r in csv.DictReader(f)}, _md.read_text()


def test_each_row_shows_its_own_runtimes_accuracy(tmp_path):
    fp32, int8 = VARIANTS
    rows, md = make_run(tmp_path, [record(int8, "onnxruntime", ORT_INT8), record(int8, "openvino", OV_INT8),
                                   record(fp32, "openvino", OV_FP32), record(int8, "mnn", None, "RuntimeError: boom")])
    assert rows[("int8", "openvino")]["accuracy"].startswith("auc=0.6100 [0.6000, 0.6200]")
    assert rows[("int8", "openvino")]["acc_delta_vs_fp32"] == "auc=-0.1900 [-0.2000, -0.1800]"
    assert rows[("int8", "onnxruntime")]["accuracy"].startswith("auc=0.7900")
    assert rows[("fp32", "openvino")]["acc_delta_vs_fp32"].startswith("auc=-0.0001")  # OV's own deviation from fp32 on ORT
    assert rows[("int8", "mnn")]["accuracy"] == "not measured on mnn: RuntimeError: boom"
    assert "0.7900" not in rows[("int8", "mnn")]["acc_delta_vs_fp32"]
    assert "fp32 baseline's on ONNX Runtime" in md


def test_a_row_without_a_record_is_not_measured(tmp_path):
    int8 = VARIANTS[1]
    rows, _ = make_run(tmp_path, [record(int8, "onnxruntime", ORT_INT8)])
    assert rows[("int8", "openvino")]["accuracy"] == "not measured on openvino"
    assert rows[("int8", "openvino")]["acc_delta_vs_fp32"] == "not measured on openvino"
    assert rows[("fp32", "openvino")]["accuracy"] == "not measured on openvino"


def test_an_old_run_keeps_the_build_time_figure_on_ort_rows_only(tmp_path):
    rows, md = make_run(tmp_path, None)
    assert rows[("int8", "onnxruntime")]["accuracy"].startswith("auc=0.7900")
    assert rows[("int8", "onnxruntime")]["acc_delta_vs_fp32"] == "auc=-0.0100 [-0.0120, -0.0080]"
    assert rows[("fp32", "onnxruntime")]["acc_delta_vs_fp32"] == ""  # fp32 on ORT against itself
    for rt in ("openvino", "mnn"):
        assert rows[("int8", rt)]["accuracy"] == f"not measured on {rt}"
    assert "no `accuracy.json`" in md


def test_a_record_for_another_model_file_is_not_used(tmp_path):
    int8 = VARIANTS[1]
    stale = A.RuntimeAccuracy(int8.id, "c" * 64, "openvino", "1.0", "avx2", "Options()", OV_INT8)
    rows, _ = make_run(tmp_path, [stale])
    assert rows[("int8", "openvino")]["accuracy"].startswith("not measured on openvino: accuracy.json holds another model file")


def _warned(r: Result, warnings: tuple[str, ...], **kw) -> Result:
    import dataclasses

    return dataclasses.replace(r, warnings=warnings, **kw)


def test_table_md_has_the_deciding_columns_warnings_once_and_functional_rows(tmp_path):
    store = RunFolder(tmp_path)
    fp32, int8 = result("fp32", "onnxruntime"), result("int8", "onnxruntime")
    store.put(_warned(fp32, ("stdev is 35% of the mean (>= 10%)", "max is 80% above the mean (>= 50%)")))
    store.put(_warned(int8, ("stdev is 12% of the mean (>= 10%)",)))
    arm = Result(cell_id="ctr.int8__onnxruntime__rpi5__rank-200", model="ctr", variant_id="ctr/int8", runtime="onnxruntime",
                 profile="rpi5", measured_on="functional-emulation", scenario="rank-200", items_per_inference=200,
                 verdict="OK", reason="outputs match under qemu-aarch64; no timing")
    store.put(arm)
    store.write_json("variants.json", [json.loads(to_json(v)) for v in VARIANTS])
    md = write_tables(tmp_path)[0].read_text()
    header = next(line for line in md.splitlines() if line.startswith("| variant"))
    assert header == "| variant | runtime | p50 ms [95% CI] | speedup vs fp32 [95% CI] | auc Δ vs fp32 [95% CI] | size MB | verdict |"
    int8_row = next(line for line in md.splitlines() if line.startswith("| int8 | onnxruntime | 1.1"))
    assert "-0.0100 [-0.0120, -0.0080]" in int8_row and "stdev" not in int8_row
    assert md.count("stdev is") == 1 and "2 of 2 cells: stdev is 35% of the mean" in md
    assert "## Functional checks" in md and "| int8 | onnxruntime | rpi5 | rank-200 | OK |" in md
    with open(tmp_path / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"p95_ms", "between_cv", "speedup_vs_ort", "warnings", "task_delta_lo"} <= set(rows[0])
    assert any("max is 80%" in r["warnings"] for r in rows)


def test_speedups_come_through_one_accessor_paired_where_the_run_has_them(tmp_path):
    from odbench.report.tables import cell_key, speedup_of

    fp32, int8 = result("fp32", "onnxruntime"), result("int8", "onnxruntime")
    slow = dataclasses.replace(fp32, processes=(ProcessSamples((2.0, 2.2, 2.4)), ProcessSamples((2.1, 2.2, 2.3))))
    fast = dataclasses.replace(int8, processes=(ProcessSamples((1.0, 1.1, 1.2)), ProcessSamples((1.05, 1.1, 1.15))))
    by_key = {cell_key(r.variant_id, r): r for r in (slow, fast)}
    variants = {v.id: v for v in VARIANTS}
    iso = speedup_of(fast, by_key, variants)
    assert iso.design == "isolated" and iso.ratio == pytest.approx(2.0, rel=0.01)
    asked = []
    paired = speedup_of(fast, by_key, variants, paired=lambda base, r: asked.append((base, r.variant_id)) or (1.99, 1.97, 2.01))
    assert (paired.ratio, paired.lo, paired.hi, paired.design) == (1.99, 1.97, 2.01, "paired") and asked == [("ctr/fp32", "ctr/int8")]
    # a paired figure that disagrees with the isolated one beyond both intervals gives way to it, labelled
    biased = speedup_of(fast, by_key, variants, paired=lambda base, r: (1.7, 1.69, 1.71))
    assert biased.design == tables.ISOLATED_OVER_PAIRED and biased.ratio == iso.ratio
    assert speedup_of(fast, by_key, variants, paired=lambda base, r: None).design == "isolated"  # the pair did not share processes
    assert speedup_of(slow, by_key, variants) is None  # fp32 against itself


def test_a_paired_speedup_that_disagrees_with_the_isolated_one_gives_way_to_it():
    # run 1 of this session (Intel Xeon): MiniLM int8-dyn paired 1.69 [1.67, 1.74] against isolated 1.58 [1.53, 1.63]
    iso = intervals.Ratio(1.58, 1.53, 1.63, 0.0, 1.0, 7.0)
    assert not tables.paired_agrees((1.69, 1.67, 1.74), iso)
    assert tables.paired_agrees((1.60, 1.58, 1.62), iso)
    assert tables.paired_agrees((1.60, float("nan"), float("nan")), iso)  # no interval: nothing to check, kept
