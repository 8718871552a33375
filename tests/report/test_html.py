"""The HTML report renders with every plot, checked in headless Chromium with a screenshot."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from odbench.verdicts import gate

from odbench.report import html as report
from odbench.verdicts.budgets import BudgetFile
from odbench.core.records import ProcessSamples, Result, Variant
from odbench.devices.catalog import get_profile


def _result(variant, scenario, profile, on, scale, items):
    x = scale * (1 + 0.1 * np.random.default_rng(len(scenario)).random(300))
    return Result(cell_id=f"ctr.{variant}__onnxruntime__{profile}__{scenario}", model="ctr", variant_id=f"ctr/{variant}",
                  runtime="onnxruntime", profile=profile, measured_on=on, scenario=scenario, verdict="OK",
                  processes=tuple(ProcessSamples(tuple(x[i::3])) for i in range(3)), n_samples=300, stats={"p50": float(np.median(x)), "p95": float(np.percentile(x, 95)), "mean": float(x.mean())},
                  items_per_inference=items, throughput_items_s=items / (x.mean() / 1e3), gating=True)


@pytest.fixture
def run(tmp_path):
    variants = {
        "ctr/fp32": Variant(id="ctr/fp32", model="ctr", path="a", sha256="a", size_bytes=64 << 20, accuracy={"auc": 0.70}),
        "ctr/int8": Variant(id="ctr/int8", model="ctr", path="b", sha256="b", size_bytes=16 << 20, accuracy={"auc": 0.69}, parent="ctr/fp32"),
        "ctr/slow": Variant(id="ctr/slow", model="ctr", path="c", sha256="c", size_bytes=70 << 20, accuracy={"auc": 0.68}),
    }
    results = [
        _result(v, s, p, on, base * n / 200 * f, n)
        for v, f in (("fp32", 1.0), ("int8", 0.5), ("slow", 2.0))
        for s, n in (("rank-50", 50), ("rank-200", 200), ("rank-500", 500))
        for p, on, base in (("host", "device", 0.3), ("rpi5", "emulated", 1.2))
    ]
    return tmp_path, results, variants


def test_pareto_frontier():
    assert report.pareto([(1, 0.5), (2, 0.7), (3, 0.6), (0.5, 0.4), (4, 0.9)]) == [(0.5, 0.4), (1, 0.5), (2, 0.7), (4, 0.9)]


def test_report_has_every_plot_and_the_selection(run):
    tmp_path, results, variants = run
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 0.5}}]})
    verdicts = gate.evaluate(results, variants, budgets)
    html_path, md_path = report.render(tmp_path, results, variants, {"cpu_model": "test"}, verdicts, {})
    html = html_path.read_text()
    for kind in ("pareto", "distributions", "throughput", "size"):
        assert f"id='ctr-{kind}'" in html and (tmp_path / "report" / "plots" / f"ctr-{kind}.png").stat().st_size > 5000
    assert html.count("data:image/png;base64,") == 5  # and p50 per variant, runtime and machine:profile
    assert "Emulated on their machine" in html and "rpi5" in html
    assert "Best: M1 host (device) + ctr/int8 on onnxruntime" in html  # only int8 on the host meets p95 <= 0.5 ms at rank-200
    assert "![Latency vs accuracy" in md_path.read_text()


def test_report_renders_in_headless_chromium(run):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/ensure-chromium installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    folders = [write_run(tmp_path / "run-avx512", AVX512, [_with_ci(r, 1.0) for r in host], variants),
               write_run(tmp_path / "run-avx2", AVX2, [_with_ci(r, 3.0) for r in results], variants)]
    html_path, _ = report.render_folders(folders, BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 1.0}}]}))
    assert "AVX2, 2 cores" in html_path.read_text() and "AVX-512 VNNI, 2 cores" in html_path.read_text()
    shot = tmp_path / "screenshot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400", f"--screenshot={shot}", html_path.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1200)
    assert img.std() > 10  # plots drawn, not a blank page
    assert (img < 100).mean() > 0.002  # dark ink: axes, text and markers


def test_runtimes_are_compared_and_a_wrong_fast_cell_is_left_out(run):
    import dataclasses

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    other = [dataclasses.replace(r, cell_id=r.cell_id.replace("onnxruntime", "openvino"), runtime="openvino",
                                 stats={k: v / 4 for k, v in r.stats.items()}) for r in host]
    other[0] = dataclasses.replace(other[0], verdict="FAIL", reason="outputs do not match: vs fp32 on onnxruntime: cosine 0.2 < 0.9")
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": other[0].scenario, "latency_ms": {"p95": 0.5}}]})
    verdicts = gate.evaluate(host + other, variants, budgets)
    html = report.render(tmp_path, host + other, variants, {"cpu_model": "test"}, verdicts, {})[0].read_text()
    assert "id='ctr-runtimes'" in html and (tmp_path / "report" / "plots" / "ctr-runtimes.png").stat().st_size > 5000
    assert "Left out: wrong outputs (parity FAIL)" in html and "cosine 0.2 &lt; 0.9" in html
    failed = f"{other[0].variant_id} on openvino"
    assert failed not in html.split("Left out")[0]  # never the pick, however fast


AVX512 = {"hostname": "a", "cpu_model": "AMD EPYC", "arch": "x86_64", "isa": ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"],
          "physical_cores": 2, "memory_mb": 24105}
AVX2 = {**AVX512, "hostname": "b", "isa": ["sse4_2", "avx", "avx2", "fma", "f16c"]}


def write_run(path, machine, results, variants):
    import json

    from odbench.core.records import to_json
    from odbench.bench.run_folder import RunFolder

    store = RunFolder(path)
    for r in results:
        store.put(r)
    store.write_json("machine.json", machine)
    store.write_json("variants.json", [json.loads(to_json(v)) for v in variants.values()])
    return path


def _with_ci(r, scale):
    """The same cell, `scale` times slower, with its own samples and 95% intervals."""
    import dataclasses

    x = np.asarray(r.samples_ms) * scale
    stats = {"p50": float(np.median(x)), "p95": float(np.percentile(x, 95)), "mean": float(x.mean()),
             "p50_lo": float(np.percentile(x, 45)), "p50_hi": float(np.percentile(x, 55)),
             "p95_lo": float(np.percentile(x, 93)), "p95_hi": float(np.percentile(x, 97))}
    procs = tuple(dataclasses.replace(p, samples_ms=tuple(np.asarray(p.samples_ms) * scale)) for p in r.processes)
    return dataclasses.replace(r, processes=procs, stats=stats, throughput_items_s=r.items_per_inference / (x.mean() / 1e3))


def test_a_report_over_two_machines_names_both_and_never_pools_their_samples(run):
    from odbench.report.runs import by_machine, load_runs

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    fast = write_run(tmp_path / "run-avx512", AVX512, [_with_ci(r, 1.0) for r in host], variants)
    slow = write_run(tmp_path / "run-avx2", AVX2, [_with_ci(r, 10.0) for r in host], variants)
    groups = by_machine(load_runs([fast, slow]))
    assert [len(g.results) for g in groups] == [len(host), len(host)]
    for g, scale in zip(groups, (1.0, 10.0)):  # each machine's statistics from its own samples only
        for r in g.results:
            own = next(h for h in host if h.cell_id == r.cell_id)
            assert r.n_samples == own.n_samples and r.stats["p50"] == pytest.approx(np.median(own.samples_ms) * scale)
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 1.0}}]})
    html_path, md_path = report.render_runs(groups, tmp_path / "out", report.evaluate_groups(groups, budgets))
    html, md = html_path.read_text(), md_path.read_text()
    assert "AMD EPYC (AVX-512 VNNI, 2 cores, 24 GiB)" in html and "AMD EPYC (AVX2, 2 cores, 24 GiB)" in html
    # the same cell on each machine: two rows with the machine's own p50 and interval, never one pooled row
    fp32_200 = next(r for r in host if r.variant_id == "ctr/fp32" and r.scenario == "rank-200")
    int8_200 = next(r for r in host if r.variant_id == "ctr/int8" and r.scenario == "rank-200")
    assert f"| M1 | host (device) | rank-200 | int8 | onnxruntime | {np.median(int8_200.samples_ms):.3f} [" in md
    assert f"| M2 | host (device) | rank-200 | int8 | onnxruntime | {10 * np.median(int8_200.samples_ms):.3f} [" in md
    assert "yes: int8 x" in md and fp32_200.stats["p50"] > int8_200.stats["p50"]
    # only the fast machine meets p95 <= 1 ms (M2's int8 p95 is ~1.6 ms): M2 never appears in the selection table
    selection = md.split("### Which machine")[1].split("### Where the machines")[0]
    assert "Best: M1 host (device) + ctr/int8 on onnxruntime" in selection and "| M2 |" not in selection


def test_rows_emulated_beyond_their_machine_are_never_selected(run):
    import dataclasses

    from odbench.report.runs import by_machine, load_runs

    tmp_path, results, variants = run
    server = {**get_profile("x86-server-avx512").model_dump(mode="json"), "name": "big-server"}
    fast = [dataclasses.replace(r, profile="big-server", measured_on="emulated", cell_id=r.cell_id.replace("host", "big-server"))
            for r in results if r.profile == "host"]
    folder = write_run(tmp_path / "run-avx2", AVX2, fast, variants)
    groups = by_machine(load_runs([folder]))
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 100.0}}]})
    md = report.render_runs(groups, tmp_path / "out", report.evaluate_groups(groups, budgets), {"big-server": server})[1].read_text()
    assert "No machine, device profile and variant meets all" in md
    assert "Never used: emulated beyond the machine that ran it" in md and "machine that lacks avx512f, avx512bw, avx512vl, avx512_vnni" in md



def test_untimed_functional_rows_are_shown_beside_timings_and_never_selected(run):
    import dataclasses

    from odbench.report.runs import by_machine, load_runs

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    arm = [dataclasses.replace(r, profile="rpi5", measured_on="functional-emulation", cell_id=r.cell_id.replace("host", "rpi5"),
                               processes=(), n_samples=0, stats={}, verdict="FAIL" if r.variant_id == "ctr/int8" else "OK",
                               reason="outputs do not match on aarch64" if r.variant_id == "ctr/int8" else "")
           for r in host if r.scenario == "rank-200"]
    folder = write_run(tmp_path / "run", AVX2, host + arm, variants)
    groups = by_machine(load_runs([folder]))
    budgets = BudgetFile.model_validate({"budgets": [{"model": "ctr", "size_mb_max": 1000}]})  # no latency: rpi5 rows could PASS it
    md = report.render_runs(groups, tmp_path / "out", report.evaluate_groups(groups, budgets))[1].read_text()
    table = md.split("### Functional checks (outputs checked, no timing)")[1]
    assert "| M1 | rpi5 | functional-emulation | int8 | onnxruntime | rank-200 | FAIL | outputs do not match on aarch64 |" in table
    selection = md.split("### Which machine")[1].split("###")[0]
    assert "| M1 | host (device) |" in selection and "rpi5" not in selection
