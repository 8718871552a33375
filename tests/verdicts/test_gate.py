"""Gate verdicts, budgets-file validation, regression checks and outputs, on fabricated runs."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from odbench.bench.run_folder import RunFolder
from odbench.core.records import ProcessSamples, Result, Variant, to_json
from odbench.verdicts import gate
from odbench.verdicts.budgets import BudgetError, BudgetFile, load_budgets

REPO = Path(__file__).resolve().parents[2]
MACHINE = {"cpu_model": "AMD EPYC", "arch": "x86_64", "isa": ["avx2", "fma"], "physical_cores": 2, "logical_cpus": 2, "memory_mb": 24105}


def result(scenario, samples, variant="fp32", model="ctr", verdict="OK", gating=True, runtime_version="1.32.0", items=200,
           processes=64, sha="a", **kw):
    """A result whose samples are dealt round-robin over ``processes`` processes (or a list of arrays)."""
    parts = samples if isinstance(samples, list) else [np.asarray(samples, dtype=float)[i::processes] for i in range(processes)]
    procs = tuple(ProcessSamples(tuple(float(v) for v in p)) for p in parts if len(p))
    x = np.concatenate([np.asarray(p, dtype=float) for p in parts]) if procs else np.array([])
    stats = {"p50": float(np.median(x)), "mean": float(x.mean())} if len(x) else {}
    return Result(cell_id=f"{model}.{variant}__onnxruntime__host__{scenario}", model=model, variant_id=f"{model}/{variant}",
                  runtime="onnxruntime", profile="host", measured_on="device", scenario=scenario, verdict=verdict,
                  processes=procs, n_samples=len(x), stats=stats, gating=gating, items_per_inference=items,
                  throughput_items_s=items / (x.mean() / 1e3) if len(x) else None, peak_rss_mb=300.0,
                  provenance={"runtime_version": runtime_version, "model_sha256": sha}, **kw)


VARIANTS = {
    "ctr/fp32": Variant(id="ctr/fp32", model="ctr", path="x", sha256="a", size_bytes=64 * 2**20, accuracy={"auc": 0.80, "logloss": 0.50}),
    "ctr/int8": Variant(id="ctr/int8", model="ctr", path="y", sha256="b", size_bytes=16 * 2**20, accuracy={"auc": 0.79, "logloss": 0.52},
                        parent="ctr/fp32"),
}


def budgets(**budget):
    return BudgetFile.model_validate({"budgets": [{"model": "ctr", **budget}]})


rng = np.random.default_rng(0)
FAST = 1.0 + 0.05 * rng.random(1000)  # all under 1.1 ms


def test_pass_fail_inconclusive_error():
    results = [
        result("rank-50", FAST),
        result("rank-200", np.concatenate([FAST[:900], np.full(100, 5.0)])),  # 10% over a 5% tail
        result("rank-500", FAST[:100]),  # too few samples for p95
        result("offline", [], verdict="ERROR", reason="SIGSEGV"),
    ]
    verdicts = {v.cell_id.split("__")[-1]: v for v in gate.evaluate(results, VARIANTS, budgets(latency_ms={"p95": 2.0}))}
    assert verdicts["rank-50"].verdict == "PASS"
    assert verdicts["rank-200"].verdict == "FAIL" and "100/1000 samples over budget" in verdicts["rank-200"].reason
    assert verdicts["rank-500"].verdict == "INCONCLUSIVE" and "more samples" in verdicts["rank-500"].reason
    assert verdicts["offline"].verdict == "ERROR" and "SIGSEGV" in verdicts["offline"].reason
    assert gate.exit_code(list(verdicts.values()), []) == gate.EXIT_FAIL
    assert gate.exit_code([verdicts["rank-50"], verdicts["rank-500"]], []) == gate.EXIT_INCONCLUSIVE
    assert gate.exit_code([verdicts["rank-50"]], []) == gate.EXIT_PASS


def test_processes_that_disagree_widen_the_bound_and_block_a_pass():
    """The same pooled samples PASS when the processes agree, and not when one process is 60% slower."""
    agree = [FAST[i::64] for i in range(64)]
    slow_one = [FAST[i::64] * (1.6 if i == 0 else 1.0) for i in range(64)]
    b = budgets(latency_ms={"p50": 1.2})
    (ok,) = gate.evaluate([result("rank-50", agree)], VARIANTS, b)
    (wide,) = gate.evaluate([result("rank-50", slow_one)], VARIANTS, b)
    assert ok.verdict == "PASS"
    assert wide.verdict == "INCONCLUSIVE" and "not one normal group" in wide.reason and "over 64 processes" in wide.reason


def test_a_pass_needs_enough_processes_to_see_a_group_and_says_how_many_at_the_next_look():
    """5 processes that agree: no PASS (a 10% group goes unseen 59% of the time); the hint is sized for look 2."""
    (v,) = gate.evaluate([result("rank-50", FAST, processes=5)], VARIANTS, budgets(latency_ms={"p95": 2.0}))
    assert v.verdict == "INCONCLUSIVE" and "a PASS needs 57 processes" in v.reason and "59.0%" in v.reason
    assert v.checks[0].more_samples == gate.processes_for_pass(gate.look_confidence(0.99, 2)) - 5 == 59
    (w,) = gate.evaluate([result("rank-50", FAST, processes=10)], VARIANTS, budgets(latency_ms={"p95": 2.0}), min_group=0.5)
    assert w.verdict == "PASS"  # 0.5^10 < 0.25%: the user may state a weaker assumption (--min-group), and the verdict rests on it


def test_processes_whose_tail_differs_are_inconclusive_with_the_reason():
    rng = np.random.default_rng(5)
    procs = [rng.lognormal(0, 0.05, 200) for _ in range(64)]
    for p in procs[:12]:  # a group of processes that spikes 10% of the time
        p[rng.random(200) < 0.10] *= 2.0
    (v,) = gate.evaluate([result("rank-50", procs)], VARIANTS, budgets(latency_ms={"p95": 3.0}))
    assert v.verdict == "INCONCLUSIVE" and "tails differ" in v.reason and "will not decide it" in v.reason


def test_timing_noise_never_blocks_size_or_memory_budgets():
    noisy = [FAST[i::5] * (1 + i) for i in range(5)]  # processes 1x..5x apart, and too few for a timing PASS
    (v,) = gate.evaluate([result("rank-50", noisy)], VARIANTS, budgets(size_mb_max=100, peak_rss_mb_max=400))
    assert v.verdict == "PASS"


def test_a_later_look_is_judged_at_a_stricter_level():
    assert gate.look_confidence(0.99, 1) == pytest.approx(0.995)
    assert gate.look_confidence(0.99, 2) == pytest.approx(0.9975)
    assert sum(1 - gate.look_confidence(0.99, j) for j in range(1, 60)) <= 0.01 + 1e-12


def test_smoke_results_never_pass():
    (v,) = gate.evaluate([result("rank-50", FAST, gating=False)], VARIANTS, budgets(latency_ms={"p95": 2.0}))
    assert v.verdict == "INCONCLUSIVE" and "non-gating" in v.reason
    (one,) = gate.evaluate([result("rank-50", FAST, processes=1)], VARIANTS, budgets(latency_ms={"p95": 2.0}))
    assert one.verdict == "INCONCLUSIVE" and "fewer than 2 processes" in one.reason


def test_size_memory_throughput_and_accuracy_caps():
    r = result("rank-200", FAST, variant="int8")
    (v,) = gate.evaluate([r], VARIANTS, budgets(size_mb_max=20, peak_rss_mb_max=250, throughput_min=150_000, accuracy_drop_max=0.01))
    checks = {c.name.split("<")[0].split(">")[0]: c for c in v.checks}
    assert checks["size"].verdict == "PASS"
    assert checks["peak_rss"].verdict == "FAIL"
    assert checks["throughput"].verdict == "PASS"  # ~194k items/s, tight interval
    assert checks["accuracy_drop"].verdict == "FAIL" and "logloss" in checks["accuracy_drop"].reason  # 4% worse logloss
    assert v.verdict == "FAIL"
    (v2,) = gate.evaluate([r], VARIANTS, budgets(throughput_min=250_000))
    assert v2.verdict == "FAIL"


def test_budget_matching_nothing_is_an_error():
    (v,) = gate.evaluate([result("rank-50", FAST)], VARIANTS, budgets(scenario="rank-5000", latency_ms={"p95": 2}))
    assert v.verdict == "ERROR" and "matched no result" in v.reason


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"budgets": [{"model": "ctr", "latency_ms": {"p97": 3}}]}, "budgets.0.latency_ms.p97"),
        ({"budgets": [{"model": "ctr", "latency_ms": {"p95": -1}}]}, "budgets.0"),
        ({"budgets": [{"model": "ctr"}]}, "budgets.0"),
        ({"budgets": [{"model": "ctr", "size_mb_max": 5, "colour": "red"}]}, "budgets.0.colour"),
        ({"budgets": []}, "budgets"),
        ({"version": 2, "budgets": [{"size_mb_max": 5}]}, "version"),
    ],
)
def test_bad_budget_file_is_refused_naming_the_field(tmp_path, doc, field):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(BudgetError) as err:
        load_budgets(path)
    assert f"field '{field}'" in str(err.value)


def test_regression_needs_effect_and_significance_on_processes():
    rule = gate.RegressionRule.parse("10%:0.01")
    assert rule == gate.RegressionRule(0.10, 0.01)
    assert gate.RegressionRule.parse("10%") == gate.RegressionRule()
    base = [result("rank-50", FAST)]
    (g,) = gate.compare([result("rank-50", FAST * 1.2)], base, rule)
    assert g.verdict == "REGRESSION" and g.effect == pytest.approx(0.2, abs=0.01) and g.p_value < 0.01
    assert g.effect_lo < 0.2 < g.effect_hi
    assert gate.compare([result("rank-50", FAST * 0.8)], base, rule)[0].verdict == "IMPROVEMENT"
    assert gate.compare([result("rank-50", FAST * 1.03)], base, rule)[0].verdict == "SAME"  # significant but small
    # 20% slower on average, but the processes scatter by 30%: 2 processes cannot tell
    scattered = [result("rank-50", [FAST[:200] * 1.0, FAST[200:400] * 1.4], processes=2)]
    assert gate.compare(scattered, [result("rank-50", [FAST[:200], FAST[200:400] * 1.02], processes=2)], rule)[0].verdict == "SAME"
    with pytest.raises(ValueError):
        gate.RegressionRule.parse("ten percent")


def test_a_changed_model_file_is_model_changed_never_a_regression():
    (g,) = gate.compare([result("rank-50", FAST * 3, sha="b")], [result("rank-50", FAST, sha="a")], gate.RegressionRule())
    assert g.verdict == gate.Change.MODEL_CHANGED and "model file changed" in g.reason


def test_baseline_from_another_machine_or_runtime_version_is_refused():
    with pytest.raises(gate.BaselineRefused, match="another machine.*cpu_model"):
        gate.check_same_machine(MACHINE, {**MACHINE, "cpu_model": "Cortex-A76"})
    with pytest.raises(gate.BaselineRefused, match="isa: baseline has .*avx512_vnni"):
        gate.check_same_machine(MACHINE, {**MACHINE, "isa": MACHINE["isa"] + ["avx512f", "avx512_vnni"]})
    gate.check_same_machine(MACHINE, {**MACHINE, "isa": list(reversed(MACHINE["isa"])), "hostname": "other"})
    with pytest.raises(gate.BaselineRefused, match="runtime version 1.32.0 vs baseline 1.20.0"):
        gate.compare([result("rank-50", FAST)], [result("rank-50", FAST, runtime_version="1.20.0")], gate.RegressionRule())


def test_junit_and_markdown_outputs(tmp_path):
    results = [result("rank-50", FAST), result("rank-500", FAST[:100]), result("offline", [], verdict="ERROR", reason="boom")]
    verdicts = gate.evaluate(results, VARIANTS, budgets(latency_ms={"p95": 2.0}))
    paths = gate.write_outputs(tmp_path, verdicts, [], gate.exit_code(verdicts, []))
    suite = ET.parse(paths["junit"]).getroot().find("testsuite")
    assert suite.get("tests") == "3" and suite.get("errors") == "1" and suite.get("skipped") == "1"
    md = paths["markdown"].read_text()
    assert "PASS 1" in md and "INCONCLUSIVE 1" in md and "(exit 1)" in md
    assert json.loads(paths["json"].read_text())["exit_code"] == 1


def _write_run(root: Path, results, machine=MACHINE):
    store = RunFolder(root)
    for r in results:
        store.put(r)
    store.write_json("machine.json", machine)
    store.write_json("variants.json", [json.loads(to_json(v)) for v in VARIANTS.values()])


@pytest.mark.slow  # a subprocess matrix: make test runs it, the quick loop does not
def test_gate_cli_exit_codes(tmp_path):
    _write_run(tmp_path / "run", [result("rank-50", FAST), result("rank-500", FAST[:100])])
    _write_run(tmp_path / "other", [result("rank-50", FAST)], machine={**MACHINE, "physical_cores": 64})
    b = tmp_path / "b.yaml"

    def gate_cli(*extra):
        return subprocess.run([sys.executable, "-m", "odbench", "gate", str(tmp_path / "run"), "--budgets", str(b), *extra],
                              capture_output=True, text=True, cwd=REPO)

    b.write_text(yaml.safe_dump({"budgets": [{"scenario": "rank-50", "latency_ms": {"p95": 2}}]}))
    assert gate_cli().returncode == 0
    b.write_text(yaml.safe_dump({"budgets": [{"latency_ms": {"p95": 2}}]}))
    p = gate_cli()
    assert p.returncode == 3 and "INCONCLUSIVE" in p.stdout
    b.write_text(yaml.safe_dump({"budgets": [{"latency_ms": {"p95": 0.5}}]}))
    assert gate_cli().returncode == 1
    b.write_text(yaml.safe_dump({"budgets": [{"latency_ms": {"p42": 2}}]}))
    p = gate_cli()
    assert p.returncode == 2 and "field 'budgets.0.latency_ms.p42'" in p.stderr
    b.write_text(yaml.safe_dump({"budgets": [{"scenario": "rank-50", "latency_ms": {"p95": 2}}]}))
    p = gate_cli("--baseline", str(tmp_path / "other"))
    assert p.returncode == 2 and "another machine" in p.stderr
    _write_run(tmp_path / "vnni", [result("rank-50", FAST)], machine={**MACHINE, "isa": MACHINE["isa"] + ["avx512_vnni"]})
    p = gate_cli("--baseline", str(tmp_path / "vnni"))
    assert p.returncode == 2 and "avx512_vnni" in p.stderr


@pytest.mark.slow  # cells in fresh processes, looked at twice: make test runs it, the quick loop does not
def test_decide_adds_processes_to_an_inconclusive_cell_and_counts_the_look(tmp_path):
    """Too few processes for a tight budget -> INCONCLUSIVE with how many would decide -> a batch added -> look 2."""
    import dataclasses

    from odbench.bench.executors.local import LocalExecutor
    from odbench.verdicts.decide import extend
    from tests.conftest import make_tiny_onnx
    from tests.helpers import cell

    store = RunFolder(tmp_path / "run")
    spec = cell(make_tiny_onnx(tmp_path / "m.onnx"), "tiny")
    spec = dataclasses.replace(spec, timing=dataclasses.replace(spec.timing, min_samples=20, max_samples=40, processes=2, gating=True))
    LocalExecutor().run([spec], store)
    b = BudgetFile.model_validate({"budgets": [{"model": "tiny", "latency_ms": {"p95": 1000}}]})
    (before,) = gate.evaluate(store.all(), {}, b)
    assert before.verdict == "INCONCLUSIVE"  # 2 x <= 40 samples: under MLPerf's 130 for p95
    assert extend(store, [dataclasses.replace(before, checks=(dataclasses.replace(before.checks[0], more_samples=2),))],
                  max_processes=8) == 1
    after = store.get(spec.cell_id)
    assert len(after.processes) == 4 and after.looks == 2
    (again,) = gate.evaluate(store.all(), {}, b)
    assert "look 2" in again.reason


def test_a_parity_fail_cell_fails_its_budget_however_fast():
    wrong = result("rank-200", FAST, variant="int8", verdict="FAIL",
                   reason="outputs do not match: vs fp32 on onnxruntime: top10_overlap 0.30 < 0.5")
    (v,) = gate.evaluate([wrong], VARIANTS, budgets(latency_ms={"p95": 2.0}))
    assert v.verdict == "FAIL" and "outputs do not match" in v.reason
    assert gate.exit_code([v], []) == 1
