"""report/paired_figures.py: speedups from stored comparison groups, the isolated figure kept beside."""
from __future__ import annotations

import math

import numpy as np
import pytest

from odbench.bench import paired_run
from odbench.core.paired import PairedMember, PairedProcess, PairedResult, PairedSpec
from odbench.core.records import Feeds, ProcessSamples, Result, Variant, Verdict
from odbench.report import paired_figures
from odbench.stats import intervals


def _result(variant: str, medians: list[float]) -> Result:
    return Result(cell_id=variant, model="m", variant_id=variant, runtime="onnxruntime", profile="host", measured_on="device",
                  scenario="s", verdict=Verdict.OK, processes=tuple(ProcessSamples((m, m, m)) for m in medians))


def _group(tmp_path, ratios: list[float]) -> None:
    members = tuple(PairedMember(v, f"/x/{v}.onnx", None, "onnxruntime") for v in ("m/fp32", "m/int8", "m/int8b"))
    spec = PairedSpec("m", "s", {"name": "host"}, members, Feeds())
    rng = np.random.default_rng(0)
    procs = []
    for i, r in enumerate(ratios):
        base = 2.0 * (1 + 0.2 * rng.standard_normal())  # the process's placement: cancels in the ratio
        procs.append(PairedProcess(i + 1, i, {members[0].key: (base,) * 5, members[1].key: (base * r,) * 5,
                                              members[2].key: (base * r * 0.5,) * 5}))
    paired_run.save(tmp_path, PairedResult(spec, Verdict.OK, processes=tuple(procs)))


def test_speedups_come_from_the_pairs_with_the_isolated_ones_beside(tmp_path):
    _group(tmp_path, [0.50, 0.52, 0.48, 0.51, 0.49, 0.50])  # 6: the fewest with a 95% interval
    index = paired_figures.load_index(tmp_path)
    r = _result("m/int8", [1.0, 1.3, 0.8])
    y = np.log([0.50, 0.52, 0.48, 0.51, 0.49, 0.50])
    expected = 1 / math.exp(np.median([(y[i] + y[j]) / 2 for i in range(6) for j in range(i, 6)]))  # Hodges-Lehmann
    s, lo, hi = paired_figures.lookup(index)("m/fp32", r)
    assert s == pytest.approx(expected) and lo < expected < hi
    iso = intervals.ratio_interval([2.0, 2.6, 1.7], r.process_medians_ms)
    variants = {"m/int8": Variant("m/int8", "m", "", "", 0, parent="m/fp32"),
                "m/int8b": Variant("m/int8b", "m", "", "", 0, parent="m/int8")}
    cols = paired_figures.extra_columns(r, variants, index, iso)
    assert cols["speedup_vs_fp32_isolated"] == f"{iso.ratio:.3g}" and cols["speedup_vs_ort_design"] == "isolated"
    assert cols["paired_processes"] == "6" and cols["pairing_cost"].endswith("%")
    # a grandchild: vs its parent (int8) 2x, vs fp32 about 4x
    child = paired_figures.extra_columns(_result("m/int8b", [0.5]), variants, index, None)
    assert float(child["speedup_vs_parent"]) == 2.0
    assert paired_figures.lookup(index)("m/fp32", _result("m/int8b", [0.5]))[0] > 3.5


def test_without_a_group_there_is_no_paired_figure(tmp_path):
    r = _result("m/int8", [1.0, 1.1])
    index = paired_figures.load_index(tmp_path)
    assert paired_figures.lookup(index)("m/fp32", r) is None
    cols = paired_figures.extra_columns(r, {}, index, intervals.ratio_interval([2.0, 2.2], r.process_medians_ms))
    assert cols["speedup_vs_fp32_isolated"] and cols["paired_processes"] == "" and cols["speedup_vs_parent"] == ""
