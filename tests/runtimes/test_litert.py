"""LiteRT on the small torch model of test_executorch.py: convert to .tflite (fp32, full int8) in the litert
environment, run its cells with that environment's Python, compare with the fp32 ONNX on ONNX Runtime.

Skipped, with the command that builds it, where the litert environment is not built (`make mobile-setup`)."""
from __future__ import annotations

import numpy as np
import pytest

from odbench.bench import parity
from odbench.bench.executors.local import run_cell
from odbench.bench.matrix import Workload, plan
from odbench.compressors.litert_export import LiteRTExport, LiteRTExportConfig
from odbench.core.feeds import save_feeds
from odbench.core.records import Feeds, Variant, sha256_file
from odbench.devices.host import detect_host
from odbench.runtimes.litert import ENVIRONMENT, LiteRTRuntime, delegation_info
from tests.helpers import FAST
from tests.runtimes.test_executorch import small_onnx, small_task

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them

ready, why_not = ENVIRONMENT.status()


def test_ops_left_off_xnnpack_are_visible():
    info = delegation_info(["DELEGATE", "GATHER", "DELEGATE", "GATHER"], 2)
    assert info["providers"] == ["XNNPACK", "builtin-cpu (fallback)"] and info["non_delegated_ops"] == {"GATHER": 2}
    assert "GATHER" in info["fallback"]
    assert delegation_info(["DELEGATE"], 1)["providers"] == ["XNNPACK"]


def test_an_onnx_file_has_no_route_to_tflite(tmp_path):
    ok, why = LiteRTRuntime().accepts(str(tmp_path / "model.onnx"))
    assert not ok and "no route to .tflite" in why


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not ready:
        pytest.skip(why_not)
    d = tmp_path_factory.mktemp("lt")
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((b, 16)).astype(np.float32)} for b in (4, 3, 5, 4, 6, 2, 4, 3)]
    onnx_path = small_onnx(d / "fp32" / "model.onnx")
    root = Variant(id="small/fp32", model="small", path=str(onnx_path), sha256=sha256_file(onnx_path),
                   size_bytes=onnx_path.stat().st_size, scenarios=("synthetic",))
    variants = {q: LiteRTExport().compress(root, small_task(feeds), LiteRTExportConfig(quant=q, calibration_samples=8), d / "variants")
                for q in ("fp32", "int8-full")}
    return root, variants, Feeds(path=str(save_feeds(feeds, d / "feeds.npz"))), d


@pytest.mark.slow  # two conversions and two cells in the litert environment
def test_litert_matches_ort_fp32_and_int8_stays_within_its_floor(converted):
    root, variants, feeds, d = converted
    results = {}
    for q, v in variants.items():
        assert v.parent == root.id and v.path.endswith(".tflite") and v.config["runtime"] == "litert"
        w = Workload(v, {"synthetic": (feeds, 4)}, "values")
        specs = parity.prepare([w], {root.id: root, v.id: v}, d, log=lambda m: None)
        results[q] = run_cell(plan([w], [("litert", {})], [detect_host()], FAST, timeout_s=240, parity=specs)[0])
    for q, r in results.items():
        assert r.verdict == "OK", (q, r.reason, r.exit.get("stderr_tail", "")[-800:])
        assert "XNNPACK" in r.runtime_info["providers"] and r.runtime_info["threads"] >= 1
    fp32, int8 = results["fp32"].parity["fp32"], results["int8-full"].parity["fp32"]
    assert fp32["max_abs_diff"] < 1e-4
    assert int8["max_abs_diff"] > 10 * max(fp32["max_abs_diff"], 1e-6)
    assert int8["cosine"] >= parity.FP32_FLOORS["values"].cosine
