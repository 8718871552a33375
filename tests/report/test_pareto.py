"""The encoder's Pareto table on a synthetic run folder: front, chosen point, threads, accuracy source."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from odbench.bench.run_folder import RunFolder
from odbench.core.records import ProcessSamples, Result, Variant, Verdict, to_json
from odbench.report import pareto as PT
from odbench.verdicts.accuracy import ACCURACY_FILE, ACCURACY_FILE_VERSION, RuntimeAccuracy

MODEL = "minilm-l6-query"
# name: (parent, p50 ms at 1 thread, cosine, top-10 overlap (evaluation), tuning cosine, tuning top-10 overlap,
#        and their one-sided 95% lower bounds on tuning (None: a record without bounds))
VARIANTS = {
    "fp32": (None, 4.0, 1.0, 1.0, None, None, None, None),  # the reference: no tuning record needed
    "int8-mixed": ("fp32", 2.8, 0.9994, 0.958, 0.9993, 0.956, 0.9990, 0.951),  # lower bounds clear the goal, fastest such: chosen
    # tuning mean above the line, lower bound under it: faster than int8-mixed, refused by the margin
    "int8-edge": ("fp32", 2.6, 0.9990, 0.949, 0.9991, 0.952, 0.9988, 0.943),
    # a tuning record without bounds (an older build): its means clear the goal, but it cannot show the margin
    "int8-nobound": ("fp32", 2.7, 0.9990, 0.951, 0.9991, 0.953, None, None),
    # meets the goal on evaluation only: faster than int8-mixed, but selection never reads evaluation
    "int8-lucky": ("fp32", 2.5, 0.9992, 0.962, 0.9940, 0.940, 0.9930, 0.93),
    "int8-dyn": ("fp32", 1.9, 0.987, 0.81, 0.986, 0.80, 0.985, 0.79),  # faster, unfaithful: on the front, not chosen
    "int8-slow": ("fp32", 3.5, 0.990, 0.80, 0.990, 0.79, 0.989, 0.78),  # slower and less faithful than int8-mixed: dominated
    "distill": ("fp32", 2.0, 0.97, 0.60, 0.97, 0.61, 0.96, 0.59),  # parity FAIL on openvino
}


def variant(name: str) -> Variant:
    parent, _, cos, top, tcos, ttop, tcos_lcb, ttop_lcb = VARIANTS[name]
    acc = {"cosine": cos, "top10_overlap": top, "recall@10": 0.5, "recall@10_lo": 0.47, "recall@10_hi": 0.53}
    bounds = {} if tcos_lcb is None else {"cosine_lcb95": tcos_lcb, "top10_overlap_lcb95": ttop_lcb}
    config = {} if tcos is None else {"tuning_accuracy": {"cosine": tcos, "top10_overlap": ttop, **bounds}}
    return Variant(id=f"{MODEL}/{name}", model=MODEL, path=f"/nowhere/{name}.onnx", sha256="0" * 64, size_bytes=1,
                   parent=f"{MODEL}/{parent}" if parent else None, compressor=None if parent is None else "x", accuracy=acc,
                   config=config)


def result(name: str, runtime: str, profile: str, threads: int, p50: float, seed: int, verdict=Verdict.OK) -> Result:
    rng = np.random.default_rng(seed)
    procs = tuple(ProcessSamples(samples_ms=tuple(float(x) for x in p50 * np.exp(rng.normal(0, 0.02, 50)))) for _ in range(5))
    return Result(cell_id=f"{MODEL}.{name}__{runtime}__{profile}__query", model=MODEL, variant_id=f"{MODEL}/{name}", runtime=runtime,
                  profile=profile, measured_on="device", scenario="query", verdict=verdict, processes=procs,
                  stats={"p50": p50, "p50_lo": p50 * 0.97, "p50_hi": p50 * 1.03},
                  runtime_info={"intra_op_threads": threads}, applied={"profile": profile, "threads": threads})


def make_run(tmp_path, threads_2t: int = 2):
    store = RunFolder(tmp_path)
    store.write_json("variants.json", [json.loads(to_json(variant(n))) for n in VARIANTS])
    seed = 0
    for rt in ("onnxruntime", "openvino"):
        for name, (_, p1, *_) in VARIANTS.items():
            fail = rt == "openvino" and name == "distill"
            for profile, threads, p in (("host-1t", 1, p1), ("host", threads_2t, p1 * 0.7)):
                seed += 1
                store.put(result(name, rt, profile, threads, p, seed, Verdict.FAIL if fail else Verdict.OK))
    store.put(result("fp32", "null", "host-1t", 1, 0.001, 99))  # the harness-overhead cell: no row
    return tmp_path


def rows(text: str) -> dict[tuple[str, str], list[str]]:
    out = {}
    for line in text.splitlines()[2:]:
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[(cells[0].split("/")[1], cells[1])] = cells
    return out


def test_front_and_chosen_point_per_runtime(tmp_path):
    run = make_run(tmp_path)
    pts = PT.points(run, MODEL, "query", "host-1t", "host")
    ort = [p for p in pts if p.runtime == "onnxruntime"]
    on = PT.front(ort)
    assert on == {f"{MODEL}/{n}" for n in ("fp32", "int8-mixed", "int8-edge", "int8-nobound", "int8-lucky", "int8-dyn")}
    assert PT.chosen(ort, on) == f"{MODEL}/int8-mixed"  # not int8-lucky, which meets the goal on evaluation only
    edge = next(p for p in ort if p.variant.id.endswith("int8-edge"))
    assert edge.tuning["top10_overlap"] >= PT.GOAL_TOP10 and not edge.meets_goal  # at/over the line in mean, under it in bound
    assert not next(p for p in ort if p.variant.id.endswith("int8-nobound")).meets_goal  # no bound: no margin shown
    ov = [p for p in pts if p.runtime == "openvino"]
    assert f"{MODEL}/distill" not in PT.front(ov)  # failed parity: no speed, no place on the front


def test_the_table_has_speedups_with_intervals_and_marks(tmp_path):
    text = PT.pareto_markdown(make_run(tmp_path))
    assert "host-1t (1 thr)" in text and "host (2 thr)" in text
    r = rows(text)
    assert len(r) == 2 * len(VARIANTS)
    mixed = r[("int8-mixed", "onnxruntime")]
    assert mixed[2].startswith("2.80 [") and mixed[3].startswith("1.43 [") and mixed[3].endswith("]x")
    assert mixed[-2] == "★" and mixed[-1] == "**chosen**" and mixed[-4] == "yes" and mixed[-3] == "yes"
    assert mixed[-5] == "0.9993 (≥0.9990) / 0.956 (≥0.951)"
    assert r[("int8-nobound", "onnxruntime")][-5] == "0.9991 (no bound) / 0.953 (no bound)"
    assert r[("int8-edge", "onnxruntime")][-4] == "no" and r[("int8-edge", "onnxruntime")][-1] == ""
    lucky = r[("int8-lucky", "onnxruntime")]
    assert lucky[-1] == "" and lucky[-4] == "no" and lucky[-3] == "yes"  # meets on evaluation, not chosen
    assert r[("int8-slow", "onnxruntime")][-2] == ""
    assert r[("int8-dyn", "onnxruntime")][-1] == "" and r[("int8-dyn", "onnxruntime")][-4] == "no"
    assert r[("distill", "openvino")][2].endswith("(parity FAIL)") and r[("distill", "openvino")][3].endswith("(parity FAIL)")
    assert r[("distill", "openvino")][-2] == ""
    assert r[("fp32", "onnxruntime")][3].startswith("1.00")
    assert "0.500 [0.470, 0.530]" in mixed
    assert "warning" not in text


def test_runtime_accuracy_records_win_over_the_build_time_figure(tmp_path):
    run = make_run(tmp_path)
    record = RuntimeAccuracy(f"{MODEL}/int8-mixed", "sha", "openvino", "2026.4.0", "avx2", "",
                             {"cosine": 0.9, "top10_overlap": 0.5, "recall@10": 0.4})
    (run / ACCURACY_FILE).write_text(json.dumps({"version": ACCURACY_FILE_VERSION, "records": [record.to_dict()]}))
    r = rows(PT.pareto_markdown(run))
    assert r[("int8-mixed", "openvino")][7] == "0.500" and r[("int8-mixed", "openvino")][9] == "runtime"
    assert r[("int8-mixed", "onnxruntime")][7] == "0.958" and r[("int8-mixed", "onnxruntime")][9] == "onnxruntime (build)"
    ov = r[("int8-mixed", "openvino")]
    assert ov[-3] == "no"  # the goal does not hold on openvino's own evaluation outputs, and the table says so
    assert ov[-4] == "yes"  # selection still reads the tuning record, never the evaluation split


def test_a_variant_without_a_tuning_record_is_never_chosen(tmp_path):
    run = make_run(tmp_path)
    pts = [p for p in PT.points(run, MODEL, "query", "host-1t", "host") if p.runtime == "onnxruntime"]
    bare = [PT.Point(dataclasses.replace(p.variant, config={}) if p.variant.parent else p.variant, p.runtime, p.one, p.two,
                     p.accuracy, p.accuracy_from) for p in pts]
    assert PT.chosen(bare, PT.front(bare)) == f"{MODEL}/fp32"  # only the reference is known to meet the goal


def test_a_cell_that_ran_the_wrong_thread_count_is_flagged(tmp_path):
    text = PT.pareto_markdown(make_run(tmp_path, threads_2t=4))
    assert "host (4 thr)" in text and "warning:" in text and "ran 4 threads, not 2" in text


def test_not_a_run_folder_or_no_such_cells_is_a_one_line_error(tmp_path, capsys):
    from odbench.cli import main

    assert main(["pareto", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["pareto", str(make_run(tmp_path)), "--model", "nope"]) == 2
    assert capsys.readouterr().err.strip().endswith("holds no 'query' cells of nope with a variant in variants.json")
