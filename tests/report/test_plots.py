"""Plots that no bad interval breaks: a run folder with a NaN interval, an absurd one, a model with one
variant and a model with forty, rendered; every axis range is checked against the data put in."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from odbench.bench.run_folder import RunFolder
from odbench.core.records import ProcessSamples, Result, Variant, to_json
from odbench.report import html as report
from odbench.report.axes import limits
from odbench.report.runs import by_machine, load_runs

MACHINE = {"cpu_model": "Test CPU", "arch": "x86_64", "isa": ["avx2"], "physical_cores": 2, "memory_mb": 8192}
N_BIG = 40


def _cell(model: str, vid: str, runtime: str, scenario: str, items: int, scale: float, seed: int) -> Result:
    rng = np.random.default_rng(seed)
    procs = tuple(ProcessSamples(tuple(scale * (1 + 0.05 * rng.random()) * (1 + 0.1 * rng.random(60)))) for _ in range(4))
    x = np.concatenate([p.samples_ms for p in procs])
    meds = [float(np.median(p.samples_ms)) for p in procs]
    stats = {"p50": float(np.median(x)), "p50_lo": min(meds), "p50_hi": max(meds), "p95": float(np.percentile(x, 95)),
             "p95_lo": float(np.percentile(x, 90)), "p95_hi": float(np.percentile(x, 99)), "mean": float(x.mean()),
             "throughput_lo": items / (max(meds) / 1e3), "throughput_hi": items / (min(meds) / 1e3)}
    return Result(cell_id=f"{vid.replace('/', '.')}__{runtime}__host__{scenario}", model=model, variant_id=vid, runtime=runtime,
                  profile="host", measured_on="device", scenario=scenario, verdict="OK", processes=procs, n_samples=x.size,
                  stats=stats, items_per_inference=items, throughput_items_s=items / (x.mean() / 1e3), gating=True)


def _variant(model: str, name: str, delta: float, size_mb: float, parent: str | None) -> Variant:
    acc = {"auc": 0.7 + delta, "auc_lo": 0.69 + delta, "auc_hi": 0.71 + delta}
    if parent:
        acc |= {"delta_auc": delta, "delta_auc_lo": delta - 0.004, "delta_auc_hi": delta + 0.004}
    return Variant(id=f"{model}/{name}", model=model, path="x", sha256=f"{model}{name}".ljust(64, "0")[:64],
                   size_bytes=int(size_mb * 2**20), accuracy=acc, parent=parent)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    variants, results = {}, []
    # "big": fp32 and 39 compressed variants, 1-4x faster, auc within +-0.02, on two runtimes
    rng = np.random.default_rng(0)
    for i in range(N_BIG):
        name = "fp32" if i == 0 else f"v{i:02d}-{'int8' if i % 2 else 'prune'}"
        v = _variant("big", name, 0.0 if i == 0 else float(rng.uniform(-0.02, 0.02)), float(rng.uniform(5, 60)),
                     None if i == 0 else "big/fp32")
        variants[v.id] = v
        speed = 1.0 if i == 0 else float(rng.uniform(1.0, 4.0))
        for k, rt in enumerate(("onnxruntime", "openvino")):
            results.append(_cell("big", v.id, rt, "rank-200", 200, 0.8 / speed * (1 + 0.2 * k), seed=100 * i + k))
    for n, items in (("rank-50", 50), ("rank-500", 500)):
        results.append(_cell("big", "big/fp32", "onnxruntime", n, items, 0.8 * items / 200, seed=7 + items))
    # the bug of the cross-machine report: an old cell whose intervals are NaN (its processes lost) ...
    nan = next(r for r in results if r.variant_id == "big/v01-int8" and r.runtime == "onnxruntime")
    old = dataclasses.replace(nan, processes=(ProcessSamples(tuple(np.concatenate([p.samples_ms for p in nan.processes]))),),
                              processes_known=False,
                              stats={**nan.stats, **{f"{k}_{e}": math.nan for k in ("p50", "p95") for e in ("lo", "hi")}})
    # ... and one whose p95 interval is finite but absurd
    absurd = next(r for r in results if r.variant_id == "big/v02-prune" and r.runtime == "openvino")
    absurd2 = dataclasses.replace(absurd, stats={**absurd.stats, "p50_hi": 3.5e11, "p95_hi": 3.5e11})
    results = [old if r is nan else absurd2 if r is absurd else r for r in results]
    # "one": a model with a single variant
    variants["one/fp32"] = _variant("one", "fp32", 0.0, 10.0, None)
    results.append(_cell("one", "one/fp32", "onnxruntime", "query", 1, 2.0, seed=1))

    store = RunFolder(tmp / "run")
    for r in results:
        store.put(r)
    store.write_json("machine.json", MACHINE)
    store.write_json("variants.json", [json.loads(to_json(v)) for v in variants.values()])
    plots: list = []
    html_path, md_path = report.render_runs(by_machine(load_runs([tmp / "run"])), tmp / "out", plots_out=plots)
    return {"plots": {p.id: p for p in plots}, "results": results, "md": md_path.read_text(), "html_path": html_path, "tmp": tmp}


def _within(lim, lo, hi):
    assert all(math.isfinite(v) for v in lim), lim
    assert lo <= lim[0] < lim[1] <= hi, (lim, lo, hi)


def test_every_axis_range_matches_the_data(rendered):
    plots, results = rendered["plots"], rendered["results"]
    big = [r for r in results if r.model == "big"]
    p50s = [r.stats["p50"] for r in big]
    # the decision plot: every point inside; the axes no wider than the data's own range allows
    ax = plots["big-accuracy-speed"].axes[0]
    rows = plots["big-accuracy-speed"].table[1]
    assert len(rows) == N_BIG  # every variant on ONNX Runtime at the focus scenario, numbered ...
    # ... and OpenVINO's rows, without an accuracy.json, are said to be left out
    assert f"{N_BIG} usable cell(s) not drawn: no speedup or no auc delta" in plots["big-accuracy-speed"].caption
    speedups = [float(r[4].split()[0]) for r in rows]
    deltas = [float(r[5].split()[0]) for r in rows]
    assert min(speedups) >= 0.5 and max(speedups) <= 6
    _within(ax.xlim, 0.0, 10.0)
    _within(ax.ylim, -0.06, 0.06)
    assert ax.xlim[0] <= min(speedups) and max(speedups) <= ax.xlim[1]
    assert ax.ylim[0] <= min(deltas) and max(deltas) <= ax.ylim[1]
    # p50 bars: from 0, never stretched by the 3.5e11 ms interval end
    _within(plots["big-runtimes"].axes[0].ylim, 0.0, 3 * max(p50s))
    assert plots["big-runtimes"].axes[0].ylim[1] >= max(p50s)
    for info in plots["big-distributions"].axes:
        _within(info.ylim, 0.0, 3 * max(max(p.samples_ms) for r in big for p in r.processes))
    tput = [r.throughput_items_s for r in big if r.variant_id == "big/fp32" and r.runtime == "onnxruntime"]
    _within(plots["big-throughput"].axes[0].ylim, min(tput) / 10, max(tput) * 10)
    _within(plots["big-size"].axes[0].xlim, 0.0, 100.0)
    # one variant: a point at (1, 0) and its own p50, no degenerate axis
    one = plots["one-accuracy-speed"].axes[0]
    _within(one.xlim, 0.0, 2.0)
    assert one.xlim[0] < 1.0 < one.xlim[1] and one.ylim[0] < 0.0 < one.ylim[1]


def test_bad_intervals_are_said_in_the_caption_not_scaled_into_the_axis(rendered):
    plots = rendered["plots"]
    assert "have no interval" in plots["big-accuracy-speed"].caption  # the NaN cell's speedup
    assert "reach beyond the axes" in plots["big-runtimes"].caption  # the absurd p50 interval, cut at the edge
    row = next(r for r in plots["big-accuracy-speed"].table[1] if r[1] == "v01-int8" and r[2] == "onnxruntime")
    assert "(no interval)" in row[4] and row[6] == "not judged (no interval)"


def test_point_labels_never_overlap(rendered):
    for plot in rendered["plots"].values():
        boxes = plot.labels
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (plot.id, a, b)
    assert len(rendered["plots"]["big-accuracy-speed"].labels) >= 10  # most of the forty still get their number


def test_the_report_md_carries_the_decision_and_tables(rendered):
    md = rendered["md"]
    assert md.startswith("# odbench hardware-selection report") and md.index("## Decision") < md.index("## Machines")
    assert "**big: " in md and "**one: fp32 on onnxruntime, M1:host**" in md
    assert "| # | variant | runtime | machine:profile | speedup [95% CI] | auc Δ [95% CI] | front |" in md


def test_limits_ignore_non_finite_values_and_cap_wild_interval_ends():
    assert limits([math.nan, math.inf]) is None
    lo, hi = limits([1.0, 2.0], [0.5, math.nan, 3.5e11])
    assert lo < 0.5 and hi <= 4.5  # an end beyond twice the points' span is cut, NaN ignored
    lo, hi = limits([5.0])
    assert lo < 5.0 < hi and hi - lo < 10


def test_forty_variants_still_fit_a_laptop_screen(rendered):
    from tests.report.test_html import assert_fits_a_laptop_screen

    assert_fits_a_laptop_screen(rendered["html_path"], rendered["tmp"])
