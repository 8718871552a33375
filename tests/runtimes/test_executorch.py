"""ExecuTorch on a small torch model built here: export to .pte (fp32, int8) in the executorch environment,
run its cells with that environment's Python, compare with the fp32 ONNX on ONNX Runtime (bench/parity.py floors).

Skipped, with the command that builds it, where the executorch environment is not built (`make mobile-setup`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from odbench.bench import parity
from odbench.bench.executors.local import run_cell, run_process
from odbench.bench.matrix import Workload, plan
from odbench.compressors.base import CompressionError
from odbench.compressors.executorch_export import ExecuTorchExport, ExecuTorchExportConfig, dim_limits, dynamic_dims, example_feed
from odbench.core.feeds import save_feeds
from odbench.core.records import Feeds, TensorSpec, Variant, sha256_file
from odbench.devices.host import detect_host
from odbench.runtimes.executorch import ENVIRONMENT, ExecuTorchRuntime, session_info
from odbench.runtimes.remote import RemoteSession
from tests.helpers import FAST, cell

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them

ready, why_not = ENVIRONMENT.status()
needs_env = pytest.mark.skipif(not ready, reason=why_not)


def _weights(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) * 0.3 for s in ((16, 32), (32,), (32, 8), (8,))]


def small_onnx(path: Path) -> Path:
    """y = relu(x @ W1 + b1) @ W2 + b2; x float32 [batch, 16]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1, b1, w2, b2 = _weights()
    inits = [numpy_helper.from_array(a, n) for a, n in zip((w1, b1, w2, b2), ("W1", "b1", "W2", "b2"))]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["z"]),
             helper.make_node("Relu", ["z"], ["r"]), helper.make_node("MatMul", ["r", "W2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def small_torch():
    import torch

    w1, b1, w2, b2 = (torch.from_numpy(a) for a in _weights())
    first, second = torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)  # nn.Linear: what the int8 flows quantize
    with torch.no_grad():
        first.weight.copy_(w1.T), first.bias.copy_(b1), second.weight.copy_(w2.T), second.bias.copy_(b2)

    class Small(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = first, second

        def forward(self, x):
            return self.second(torch.relu(self.first(x)))

    return Small().eval()


def small_task(feeds):
    return SimpleNamespace(name="small", model=SimpleNamespace(load_torch=lambda cache: small_torch()), cache=None,
                           calibration_feeds=lambda n: feeds[:n], evaluate=lambda run: {},
                           tuned_on=lambda: {"split": "tuning", "n": len(feeds), "sha256": "test"})


def test_a_text_model_bounds_its_dims_by_max_len_and_offline_batch():
    text = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(max_len=128, offline_batch=32)))
    inputs = [TensorSpec("input_ids", "int64", ("batch", "seq"))]
    assert dynamic_dims(inputs, dim_limits(text)) == {"input_ids": {"0": ("batch", 32), "1": ("seq", 128)}}
    assert dynamic_dims(inputs, dim_limits(SimpleNamespace())) == {"input_ids": {"0": ("batch", 4096), "1": ("seq", 512)}}


def test_dynamic_dims_and_the_example_avoid_size_one():
    inputs = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("dense", "float32", ("batch", 23))]
    dims = dynamic_dims(inputs)
    assert dims == {"input_ids": {"0": ("batch", 4096), "1": ("seq", 512)}, "dense": {"0": ("batch", 4096)}}
    ex = example_feed([{"input_ids": np.ones((1, 1), np.int64), "dense": np.ones((1, 23), np.float32)}], dims)
    assert ex["input_ids"].shape == (2, 2) and ex["dense"].shape == (2, 23)


def test_an_onnx_file_has_no_route_to_pte(tmp_path):
    ok, why = ExecuTorchRuntime().accepts(str(tmp_path / "model.onnx"))
    assert not ok and "no route to .pte" in why
    byo = SimpleNamespace(name="byo", calibration_feeds=lambda n: [], evaluate=lambda run: {})
    parent = Variant(id="byo/as-is", model="byo", path=str(small_onnx(tmp_path / "m.onnx")), sha256="0" * 64, size_bytes=1)
    if ready:
        with pytest.raises(CompressionError, match="no route to .pte"):
            ExecuTorchExport().compress(parent, byo, ExecuTorchExportConfig(), tmp_path / "out")


def test_fallback_off_xnnpack_is_visible():
    sig = {"delegation": {"delegates": ["XnnpackBackend"], "delegated_count": 3, "non_delegated": {"aten_cumsum_default": 1}}}
    info = session_info(sig, ["XnnpackBackend"], 2)
    assert info["providers"] == ["XnnpackBackend", "portable-cpu (fallback)"]
    assert "aten_cumsum_default" in info["fallback"] and info["threads"] == 2
    clean = session_info({"delegation": {"delegates": ["XnnpackBackend"], "delegated_count": 5, "non_delegated": {}}}, [], 1)
    assert clean["providers"] == ["XnnpackBackend"] and "fallback" not in clean


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not ready:
        pytest.skip(why_not)
    d = tmp_path_factory.mktemp("et")
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((b, 16)).astype(np.float32)} for b in (4, 3, 5, 4, 6, 2, 4, 3)]
    onnx_path = small_onnx(d / "fp32" / "model.onnx")
    root = Variant(id="small/fp32", model="small", path=str(onnx_path), sha256=sha256_file(onnx_path),
                   size_bytes=onnx_path.stat().st_size, scenarios=("synthetic",))
    task = small_task(feeds)
    variants = {q: ExecuTorchExport().compress(root, task, ExecuTorchExportConfig(quant=q, calibration_samples=8), d / "variants")
                for q in ("fp32", "int8-static")}
    feeds_path = save_feeds(feeds, d / "feeds.npz")
    return root, variants, Feeds(path=str(feeds_path)), d


def _cell(root, variant, feeds, d):
    w = Workload(variant, {"synthetic": (feeds, 4)}, "values")
    specs = parity.prepare([w], {root.id: root, variant.id: variant}, d, log=lambda m: None)
    return plan([w], [("executorch", {})], [detect_host()], FAST, timeout_s=240, parity=specs)[0]


@pytest.mark.slow  # two exports and two cells in the executorch environment: ~70 s of CPU
@needs_env
def test_pte_variants_carry_lineage_settings_and_delegation(exported):
    root, variants, _, _ = exported
    v = variants["int8-static"]
    assert v.parent == root.id and v.path.endswith(".pte") and v.size_bytes > 0
    assert v.config["quant"] == "int8-static" and v.config["toolchain"] == ENVIRONMENT.lock_hash()
    assert v.config["tuned_on"]["split"] == "tuning" and v.config["export_isa"]
    assert v.config["delegation"]["delegates"] == ["XnnpackBackend"]
    assert variants["fp32"].path != v.path  # the cache key covers the export settings


@pytest.mark.slow
@needs_env
def test_executorch_matches_ort_fp32_and_int8_stays_within_its_floor(exported):
    root, variants, feeds, d = exported
    results = {q: run_cell(_cell(root, v, feeds, d)) for q, v in variants.items()}
    for q, r in results.items():
        assert r.verdict == "OK", (q, r.reason, r.exit.get("stderr_tail", "")[-800:])
        assert r.runtime_info["providers"][0] == "XnnpackBackend" and r.runtime_info["threads"] >= 1
        assert "runtime" not in r.parity  # no ONNX Runtime run of a .pte: compared with the fp32 root only
    fp32, int8 = results["fp32"].parity["fp32"], results["int8-static"].parity["fp32"]
    assert fp32["max_abs_diff"] < 1e-4 and fp32["cosine_min"] > 0.9999
    assert int8["max_abs_diff"] > 10 * max(fp32["max_abs_diff"], 1e-6)  # int8 really differs
    assert int8["cosine"] >= parity.FP32_FLOORS["values"].cosine  # ... within its floor
    assert results["fp32"].provenance["runtime_version"] == "1.5.1"


@needs_env
def test_the_executorch_environment_checks_the_spec_contract(tmp_path):
    pte = tmp_path / "model.pte"
    pte.write_bytes(b"x")
    r = run_process(dataclasses.replace(cell(pte, name="mob", runtime="executorch"), contract=99))
    assert r.verdict == "ERROR" and "contract version 99" in r.reason and "environment executorch" in r.reason


@pytest.mark.slow
@needs_env
def test_outside_its_environment_open_gives_a_remote_session_for_untimed_uses(exported):
    root, variants, feeds, _ = exported
    rt = ExecuTorchRuntime()
    session = rt.open(variants["fp32"].path, 1, rt.Options())
    try:
        assert isinstance(session, RemoteSession) and session.info()["remote"] == "environment executorch"
        assert [t.name for t in session.inputs] == ["x"]
        x = np.random.default_rng(3).standard_normal((3, 16)).astype(np.float32)
        (y,) = session.run({"x": x})
        expected = np.maximum(x @ _weights()[0] + _weights()[1], 0) @ _weights()[2] + _weights()[3]
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    finally:
        session.close()
