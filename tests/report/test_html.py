"""The HTML report renders with every plot, checked in headless Chromium with a screenshot."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from odbench.core.records import ProcessSamples, Result, Variant
from odbench.devices.catalog import get_profile
from odbench.report import html as report
from odbench.verdicts import gate
from odbench.verdicts.budgets import BudgetFile


def _result(variant, scenario, profile, on, scale, items):
    x = scale * (1 + 0.1 * np.random.default_rng(len(scenario)).random(300))
    return Result(cell_id=f"ctr.{variant}__onnxruntime__{profile}__{scenario}", model="ctr", variant_id=f"ctr/{variant}",
                  runtime="onnxruntime", profile=profile, measured_on=on, scenario=scenario, verdict="OK",
                  processes=tuple(ProcessSamples(tuple(x[i::3])) for i in range(3)), n_samples=300,
                  stats={"p50": float(np.median(x)), "p95": float(np.percentile(x, 95)), "mean": float(x.mean())},
                  items_per_inference=items, throughput_items_s=items / (x.mean() / 1e3), gating=True)


@pytest.fixture
def run(tmp_path):
    variants = {
        "ctr/fp32": Variant(id="ctr/fp32", model="ctr", path="a", sha256="a", size_bytes=64 << 20, accuracy={"auc": 0.70}),
        "ctr/int8": Variant(id="ctr/int8", model="ctr", path="b", sha256="b", size_bytes=16 << 20, accuracy={"auc": 0.69},
                            parent="ctr/fp32"),
        "ctr/slow": Variant(id="ctr/slow", model="ctr", path="c", sha256="c", size_bytes=70 << 20, accuracy={"auc": 0.68}),
    }
    results = [
        _result(v, s, p, on, base * n / 200 * f, n)
        for v, f in (("fp32", 1.0), ("int8", 0.5), ("slow", 2.0))
        for s, n in (("rank-50", 50), ("rank-200", 200), ("rank-500", 500))
        for p, on, base in (("host", "device", 0.3), ("rpi5", "emulated", 1.2))
    ]
    return tmp_path, results, variants


def test_a_point_is_dominated_only_beyond_the_intervals():
    from odbench.report.decision import Point, dominated
    from odbench.report.figures import Estimate as E

    r = Result(cell_id="c", model="ctr", variant_id="ctr/x", runtime="onnxruntime", profile="host", measured_on="device",
               scenario="rank-200", verdict="OK")
    pts = [Point("M1", r, E(1.0, 1.0, 1.0), E(0.0, 0.0, 0.0), None, None),  # fp32: the reference, exact
           Point("M1", r, E(2.0, 1.8, 2.2), E(0.0, -0.01, 0.01), None, None),  # faster beyond the intervals, same accuracy
           Point("M1", r, E(1.9, 1.7, 2.1), E(-0.05, -0.06, -0.04), None, None),  # as fast as #2, worse beyond them
           Point("M1", r, E(1.1, 0.8, 1.4), E(0.001, -0.01, 0.012), None, None),  # overlaps #2 on speed? no: 1.4 < 1.8
           Point("M1", r, E(2.1, 1.5, 2.7), E(-0.001, -0.02, 0.02), None, None),  # overlaps #2 on both: indistinguishable
           Point("M1", r, E(3.0), E(-0.5), None, None)]  # no interval: never judged
    dom = dominated(pts)
    assert dom == {0: 1, 2: 1, 3: 1}
    assert 4 not in dom and 5 not in dom and 1 not in dom


def test_report_has_every_plot_and_the_selection(run):
    tmp_path, results, variants = run
    budgets = BudgetFile.model_validate({"min_group": 0.9, "budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 0.5}}]})
    verdicts = gate.evaluate(results, variants, budgets)
    html_path, md_path = report.render(tmp_path, results, variants, {"cpu_model": "test"}, verdicts, {})
    html = html_path.read_text()
    for kind in ("accuracy-speed", "runtimes", "distributions", "throughput", "size"):
        assert f"id='ctr-{kind}'" in html and (tmp_path / "report" / "plots" / f"ctr-{kind}.png").stat().st_size > 5000
    assert html.count("src='plots/") == 5 and "base64" not in html  # no fidelity metric recorded: no fidelity plot
    assert "Emulated on their machine" in html and "rpi5" in html
    md = md_path.read_text()
    assert md.index("## Decision") < md.index("## Machines")  # the answer first
    assert "**ctr: int8 on onnxruntime, M1:host**" in md  # only int8 on the host meets p95 <= 0.5 ms at rank-200
    assert "![auc change vs speedup" in md
    assert "| price" not in md and "power W" not in md and "ranked by worst p95" in md  # no datasheet: no empty columns


PROBE = ("<script>window.addEventListener('load',()=>{const w=innerWidth;document.body.dataset.sw=document.documentElement.scrollWidth;"
         "document.body.dataset.wide=[...document.querySelectorAll('section')].filter(s=>s.scrollWidth>s.clientWidth+1||"
         "s.getBoundingClientRect().right>w).map(s=>s.id).join(',')||'none'})</script></body>")


def chromium_or_skip() -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/ensure-chromium installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return chromium


def chromium_base(chromium: str, tmp_path) -> list[str]:
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]


def assert_fits_a_laptop_screen(html_path, tmp_path, width: int = 1366) -> None:
    """Loaded in headless Chromium at ``width`` px: neither the page nor any <section> scrolls sideways."""
    import re

    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE))
    dom = subprocess.run(chromium_base(chromium_or_skip(), tmp_path) + [f"--window-size={width},900", "--virtual-time-budget=5000",
                                                                         "--dump-dom", probe.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert int(re.search(r'data-sw="(\d+)"', dom).group(1)) <= width  # no sideways scrolling
    assert re.search(r'data-wide="([^"]*)"', dom).group(1) == "none"  # and no section wider than the page


def test_report_renders_in_headless_chromium_and_every_section_fits_a_laptop_screen(run):
    chromium = chromium_or_skip()
    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    folders = [write_run(tmp_path / "run-avx512", AVX512, [_with_ci(r, 1.0) for r in host], variants),
               write_run(tmp_path / "run-avx2", AVX2, [_with_ci(r, 3.0) for r in results], variants)]
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 1.0}}]})
    html_path, _ = report.render_folders(folders, budgets)
    assert "AVX2, 2 cores" in html_path.read_text() and "AVX-512 VNNI, 2 cores" in html_path.read_text()
    assert_fits_a_laptop_screen(html_path, tmp_path)
    shot = tmp_path / "screenshot.png"
    subprocess.run(chromium_base(chromium, tmp_path) + ["--window-size=1366,2400", f"--screenshot={shot}", html_path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1366)
    assert img.std() > 10  # plots drawn, not a blank page
    assert (img < 100).mean() > 0.002  # dark ink: axes, text and markers


def test_runtimes_are_compared_and_a_wrong_fast_cell_is_left_out(run):
    import dataclasses

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    other = [dataclasses.replace(r, cell_id=r.cell_id.replace("onnxruntime", "openvino"), runtime="openvino",
                                 stats={k: v / 4 for k, v in r.stats.items()}) for r in host]
    other[0] = dataclasses.replace(other[0], verdict="FAIL", reason="outputs do not match: vs fp32 on onnxruntime: cosine 0.2 < 0.9")
    budgets = BudgetFile.model_validate({"min_group": 0.9, "budgets": [{"scenario": other[0].scenario, "latency_ms": {"p95": 0.5}}]})
    verdicts = gate.evaluate(host + other, variants, budgets)
    html = report.render(tmp_path, host + other, variants, {"cpu_model": "test"}, verdicts, {})[0].read_text()
    assert "id='ctr-runtimes'" in html and (tmp_path / "report" / "plots" / "ctr-runtimes.png").stat().st_size > 5000
    assert "Left out: wrong outputs (parity FAIL)" in html and "cosine 0.2 &lt; 0.9" in html
    failed = f"{other[0].variant_id} on openvino"
    assert failed not in html.split("Left out")[0]  # never the pick, however fast


AVX512 = {"hostname": "a", "cpu_model": "AMD EPYC", "arch": "x86_64",
          "isa": ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"],
          "physical_cores": 2, "memory_mb": 24105}
AVX2 = {**AVX512, "hostname": "b", "isa": ["sse4_2", "avx", "avx2", "fma", "f16c"]}


def write_run(path, machine, results, variants):
    import json

    from odbench.bench.run_folder import RunFolder
    from odbench.core.records import to_json

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
    budgets = BudgetFile.model_validate({"min_group": 0.9, "budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 1.0}}]})
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
    selection = md.split("### Candidates meeting all budgets")[1].split("###")[0]
    assert "**ctr: int8 on onnxruntime, M1:host**" in md and "| M2 |" not in selection


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
    assert "No machine, device profile, variant and runtime meets all" in md
    assert "Never used: emulated beyond the machine that ran it" in md
    assert "machine that lacks avx512f, avx512bw, avx512vl, avx512_vnni" in md



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
    selection = md.split("### Candidates meeting all budgets")[1].split("###")[0]
    assert "| M1 | host (device) |" in selection and "rpi5" not in selection and "rpi5" not in md.split("## Machines")[0]


def test_parity_failures_are_one_table_row_each_with_the_value_furthest_below_its_floor(run):
    import dataclasses

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host" and r.scenario == "rank-200"]
    par = {"kind": "ranking", "fp32": {"top10_overlap": 0.45, "spearman": 0.79}, "runtime": {"top10_overlap": 0.3, "spearman": 0.99}}
    bad = [dataclasses.replace(r, cell_id=r.cell_id.replace("onnxruntime", "openvino"), runtime="openvino", verdict="FAIL",
                               parity=par, reason="outputs do not match") for r in host]
    md = report.render(tmp_path, host + bad, variants, {"cpu_model": "test"})[1].read_text()
    table = md.split("### Left out: wrong outputs (parity FAIL)")[1].split("###")[0]
    assert "| variant | runtime | machine | metric | value | floor |" in table
    assert "| int8 | openvino | M1 host | top10_overlap vs same variant on ORT (+2 more below) | 0.3000 | 0.8 |" in table
    assert table.count("| openvino |") == len(bad)  # one row per failing cell


def test_with_no_cell_passing_yet_the_decision_is_provisional_and_skips_cells_that_fail(run):
    """A default run (3 processes here) cannot PASS a latency budget: the report still names the fastest cell that FAILs
    no budget, labelled PROVISIONAL with the command that would confirm it; a cell that FAILs a budget is never it."""
    from odbench.report.runs import by_machine, load_runs

    tmp_path, results, variants = run
    host = [r for r in results if r.profile == "host"]
    folder = write_run(tmp_path / "run-default", AVX512, [_with_ci(r, 1.0) for r in host], variants)
    groups = by_machine(load_runs([folder]))
    budgets = BudgetFile.model_validate({"budgets": [{"scenario": "rank-200", "latency_ms": {"p95": 100.0}},
                                                     {"model": "ctr", "size_mb_max": 20}]})  # fp32 (64 MB) FAILs the size
    md = report.render_runs(groups, tmp_path / "out", report.evaluate_groups(groups, budgets))[1].read_text()
    decision = md.split("## Decision")[1].split("## Machines")[0]
    assert "PROVISIONAL" in decision and "--decide" in decision
    assert "**ctr: int8 on onnxruntime, M1:host**" in decision
