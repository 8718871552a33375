"""Run folders from several machines: loaded, grouped by machine, and never pooled across machines."""
from __future__ import annotations

import dataclasses

import pytest

from odbench.core.records import ProcessSamples, Result, Variant
from odbench.report.runs import Machine, RunError, by_machine, distinct_labels, gate_inputs, load_runs
from tests.report.test_html import AVX2, AVX512, write_run

VARIANTS = {"m/fp32": Variant(id="m/fp32", model="m", path="a", sha256="a", size_bytes=1, accuracy={"auc": 0.7})}


def _result(cell: str, p50: float, **kw) -> Result:
    return Result(cell_id=cell, model="m", variant_id="m/fp32", runtime="onnxruntime", profile="host", measured_on="device",
                  scenario="s", verdict="OK", processes=tuple(ProcessSamples((p50,) * 5) for _ in range(2)), n_samples=10,
                  stats={"p50": p50, "p95": p50}, **kw)


def test_folders_from_two_machines_stay_apart_and_folders_from_one_merge(tmp_path):
    a1 = write_run(tmp_path / "a1", AVX512, [_result("c1", 1.0), _result("c2", 1.0)], VARIANTS)
    a2 = write_run(tmp_path / "a2", {**AVX512, "hostname": "other-box", "memory_mb": 24100}, [_result("c2", 1.5)], VARIANTS)
    b = write_run(tmp_path / "b", AVX2, [_result("c1", 9.0)], VARIANTS)
    groups = by_machine(load_runs([a1, b, a2]))
    assert [g.machine.isa_class for g in groups] == ["AVX-512 VNNI", "AVX2"]
    a, avx2 = groups
    assert a.paths == (a1, a2)  # the same machine type: merged, the later folder's c2 wins
    assert {r.cell_id: r.stats["p50"] for r in a.results} == {"c1": 1.0, "c2": 1.5}
    assert {r.cell_id: r.stats["p50"] for r in avx2.results} == {"c1": 9.0}


def test_gate_inputs_yield_each_folder_with_its_machine(tmp_path):
    a = write_run(tmp_path / "a", AVX512, [_result("c1", 1.0)], VARIANTS)
    b = write_run(tmp_path / "b", AVX2, [_result("c1", 9.0)], VARIANTS)
    got = [(m.isa_class, [r.stats["p50"] for r in rs], sorted(vs)) for m, rs, vs in gate_inputs([a, b])]
    assert got == [("AVX-512 VNNI", [1.0], ["m/fp32"]), ("AVX2", [9.0], ["m/fp32"])]


def test_a_dask_workers_results_belong_to_the_workers_machine(tmp_path):
    remote = _result("c2", 5.0, provenance={"worker": "tcp://x:1", "worker_machine": {**AVX2, "cpu_model": "Cortex-A76",
                                                                                          "arch": "aarch64", "isa": ["asimd", "asimddp"]}})
    folder = write_run(tmp_path / "dask", AVX512, [_result("c1", 1.0), remote], VARIANTS)
    groups = by_machine(load_runs([folder]))
    assert [(g.machine.cpu_model, [r.cell_id for r in g.results]) for g in groups] == [("AMD EPYC", ["c1"]), ("Cortex-A76", ["c2"])]
    assert groups[1].machine.isa_class == "dotprod"


def test_a_folder_without_machine_json_is_its_own_unknown_machine(tmp_path):
    a = write_run(tmp_path / "a", {}, [_result("c1", 1.0)], VARIANTS)
    b = write_run(tmp_path / "b", {}, [_result("c1", 2.0)], VARIANTS)
    (a / "machine.json").unlink()
    (b / "machine.json").unlink()
    groups = by_machine(load_runs([a, b]))
    assert len(groups) == 2 and groups[0].machine.label == "unknown machine (a: no machine.json)"


def test_labels_are_distinct_and_bad_folders_are_named(tmp_path):
    m1 = Machine.from_json(AVX512)
    m2 = Machine.from_json({**AVX512, "hostname": "b", "isa": AVX512["isa"] + ["amx_tile"]})  # another machine, same label
    m3 = dataclasses.replace(m2, hostname="", isa=m2.isa + ("avx_vnni",))
    assert m1.label == m2.label == m3.label and len({m1.key, m2.key, m3.key}) == 3
    labels = distinct_labels([m1, m2, m3])
    assert labels[m1.key].endswith("[a]") and labels[m2.key].endswith("[b]") and len(set(labels.values())) == 3
    with pytest.raises(RunError, match="is not a run folder"):
        load_runs([tmp_path / "nope"])
    with pytest.raises(RunError, match="no run folder given"):
        load_runs([])


def test_each_machines_cells_are_judged_on_its_own_data(tmp_path):
    import numpy as np

    from odbench.verdicts import gate
    from odbench.verdicts.budgets import BudgetFile

    def timed(p50):
        x = p50 * (1 + 0.05 * np.random.default_rng(0).random(300))
        return _result("c1", float(np.median(x))).replace(processes=tuple(ProcessSamples(tuple(x[i::5])) for i in range(5)),
                                                          n_samples=300, gating=True,
                                                          stats={"p50": float(np.median(x)), "p95": float(np.percentile(x, 95))})

    fast = write_run(tmp_path / "fast", AVX512, [timed(1.0)], VARIANTS)
    slow = write_run(tmp_path / "slow", AVX2, [timed(9.0)], VARIANTS)
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "s", "latency_ms": {"p95": 5.0}}]})
    verdicts = {m.isa_class: [v.verdict for v in gate.evaluate(rs, vs, budgets)] for m, rs, vs in gate_inputs([fast, slow])}
    assert verdicts == {"AVX-512 VNNI": ["PASS"], "AVX2": ["FAIL"]}  # pooled, 600 samples half over: one FAIL for both
