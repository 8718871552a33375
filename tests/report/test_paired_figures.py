"""report/paired_figures.py: speedups from stored comparison groups, the isolated figure kept beside."""
from __future__ import annotations

import math

import numpy as np

from odbench.bench import paired_run
from odbench.core.paired import PairedMember, PairedProcess, PairedResult, PairedSpec
from odbench.core.records import Feeds, ProcessSamples, Result, Verdict
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
    _group(tmp_path, [0.50, 0.52, 0.48, 0.51, 0.49])
    index = paired_figures.load_index(tmp_path)
    r = _result("m/int8", [1.0, 1.3, 0.8])
    iso = intervals.ratio_interval([2.0, 2.6, 1.7], r.process_medians_ms)
    cols = paired_figures.columns(r, "m/fp32", "m/fp32", index, iso)
    expected = 1 / math.exp(np.mean(np.log([0.50, 0.52, 0.48, 0.51, 0.49])))
    assert cols["speedup_vs_fp32_design"] == "paired"
    assert float(cols["speedup_vs_fp32"]) == float(f"{expected:.3g}")
    assert float(cols["speedup_vs_fp32_lo"]) < expected < float(cols["speedup_vs_fp32_hi"])
    assert cols["speedup_vs_fp32 [95% CI]"].endswith("paired")
    assert cols["speedup_vs_fp32_isolated"] == f"{iso.ratio:.3g}" and cols["speedup_vs_ort_design"] == "isolated"
    assert cols["paired_processes"] == "5" and cols["pairing_cost"].endswith("%")
    # a grandchild: vs its parent (int8) 2x, vs fp32 4x
    child = paired_figures.columns(_result("m/int8b", [0.5]), "m/fp32", "m/int8", index, None)
    assert float(child["speedup_vs_parent"]) == 2.0 and float(child["speedup_vs_fp32"]) > 3.5


def test_without_a_group_the_isolated_figure_stays_and_says_so(tmp_path):
    r = _result("m/int8", [1.0, 1.1])
    iso = intervals.ratio_interval([2.0, 2.2], r.process_medians_ms)
    cols = paired_figures.columns(r, "m/fp32", "m/fp32", paired_figures.load_index(tmp_path), iso)
    assert cols["speedup_vs_fp32_design"] == "isolated" and cols["speedup_vs_fp32 [95% CI]"].endswith("isolated")
    assert "speedup_vs_fp32" not in cols  # the isolated columns of report/tables.py are left as they are
