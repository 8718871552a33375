"""Output parity: the metrics, the floors, and a fast-but-wrong variant turning its cell to FAIL."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from odbench.bench import parity
from odbench.bench.executors.local import run_cell
from odbench.bench.matrix import Workload, plan
from odbench.core.feeds import save_feeds
from odbench.core.records import Feeds, sha256_file
from odbench.devices.host import detect_host
from tests.conftest import make_tiny_onnx
from tests.helpers import FAST, variant_for


def test_ranking_metrics():
    a = np.arange(50, dtype=np.float32)
    assert parity.spearman(a, a) == pytest.approx(1.0)
    assert parity.spearman(a, -a) == pytest.approx(-1.0)
    assert parity.topk_overlap(a, a) == 1.0
    assert parity.topk_overlap(a, -a) == 0.0
    shuffled = np.random.default_rng(0).permutation(a)
    m = parity.compare("ranking", [[shuffled]], [[a]])
    assert m["top10_overlap"] < 0.5 and abs(m["spearman"]) < 0.5
    assert parity.judge("ranking", {"fp32": m}) and not parity.judge("ranking", {"fp32": parity.compare("ranking", [[a]], [[a]])})


def test_embedding_metrics_and_floors():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((3, 16)).astype(np.float32)
    same = parity.compare("embedding", [[e]], [[e]])
    assert same["cosine"] == pytest.approx(1.0) and same["max_abs_diff"] == 0.0
    noisy = parity.compare("embedding", [[e + 0.05 * rng.standard_normal(e.shape)]], [[e]])
    assert 0.99 < noisy["cosine"] < 1.0 and not parity.judge("embedding", {"fp32": noisy})
    # small compression noise passes vs fp32 but a runtime may not add it: tighter floor
    worse = parity.compare("embedding", [[e + 0.3 * rng.standard_normal(e.shape)]], [[e]])
    assert 0.90 < worse["cosine"] < 0.99
    assert not parity.judge("embedding", {"fp32": worse}) and parity.judge("embedding", {"runtime": worse})
    garbage = parity.compare("embedding", [[rng.standard_normal(e.shape)]], [[e]])
    (reason,) = parity.judge("embedding", {"fp32": garbage})
    assert reason.startswith("vs fp32 on onnxruntime: cosine")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        parity.compare("values", [[np.zeros(3)]], [[np.zeros(4)]])


def _corrupt(src, dst):
    """An 'int8-like' child of src that runs just as fast but answers wrong: weights sign-flipped."""
    m = onnx.load(str(src))
    for i, t in enumerate(m.graph.initializer):
        if t.name == "W":
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(t), "W"))
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(dst))
    return dst


@pytest.fixture(scope="module")
def lineage(tmp_path_factory):
    d = tmp_path_factory.mktemp("parity")
    root = make_tiny_onnx(d / "fp32" / "model.onnx", width=16, seed=3)
    bad = _corrupt(root, d / "bad" / "model.onnx")
    feeds = save_feeds([{"x": np.random.default_rng(i).standard_normal((8, 16)).astype(np.float32)} for i in range(6)], d / "feeds.npz")
    v_root = variant_for(root, "tiny")
    v_bad = dataclasses.replace(variant_for(bad, "tiny"), id="tiny/bad-int8", parent="tiny/fp32")
    variants = {v.id: v for v in (v_root, v_bad)}
    workloads = [Workload(v, {"synthetic": (Feeds(path=str(feeds)), 8)}, "embedding") for v in (v_root, v_bad)]
    specs = parity.prepare(workloads, variants, d / "run", log=lambda *_: None)
    return workloads, specs


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_fast_but_wrong_variant_fails_and_the_good_one_passes(lineage, runtime):
    workloads, specs = lineage
    from odbench.runtimes import get_runtime

    ok, why = get_runtime(runtime).available()
    if not ok:
        pytest.skip(why)
    cells = plan(workloads, [(runtime, {})], [detect_host()], FAST, timeout_s=60, parity=specs)
    good, bad = (run_cell(c) for c in cells)
    assert good.verdict in ("OK", "UNSTABLE"), good.reason
    assert good.parity["fp32"]["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert bad.verdict == "FAIL" and "vs fp32 on onnxruntime: cosine" in bad.reason
    assert bad.stats["p50"] > 0  # it was still timed: fast, but wrong
    if runtime == "onnxruntime":  # the reference runtime is not compared with itself
        assert "runtime" not in good.parity
    else:
        assert good.parity["runtime"]["cosine"] == pytest.approx(1.0, abs=1e-4)
        assert bad.parity["runtime"]["cosine"] == pytest.approx(1.0, abs=1e-4)  # same file, same answer


def test_a_changed_reference_file_is_an_error(lineage, tmp_path):
    workloads, specs = lineage
    key = ("tiny/fp32", "synthetic")
    moved = tmp_path / "ref.npz"
    moved.write_bytes(b"not the reference")
    specs = {key: dataclasses.replace(specs[key], reference=str(moved))}
    (c,) = plan(workloads[:1], [("onnxruntime", {})], [detect_host()], FAST, timeout_s=60, parity=specs)
    r = run_cell(c)
    assert r.verdict == "ERROR" and "parity reference" in r.reason


def test_reference_that_cannot_be_computed_is_recorded(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x01garbage")
    before = sha256_file(broken)
    w = Workload(variant_for(broken, "broken"),
                 {"synthetic": (Feeds(path=str(save_feeds([{"x": np.zeros((1, 4), np.float32)}], tmp_path / "f.npz"))), 1)})
    logged = []
    specs = parity.prepare([w], {}, tmp_path / "run", log=logged.append)
    spec = specs[("broken/fp32", "synthetic")]
    assert spec.error.startswith("reference outputs could not be computed") and not spec.reference
    assert len(logged) == 1 and "broken/fp32 synthetic: no reference outputs" in logged[0]
    assert not list((tmp_path / "run").rglob("*.npz"))  # no half-written reference is left behind
    assert sha256_file(broken) == before  # the input is left as it was


def test_synthetic_feeds_without_a_file_get_no_reference(tmp_path):
    path = make_tiny_onnx(tmp_path / "m" / "model.onnx")
    w = Workload(variant_for(path, "tiny"), {"synthetic": (Feeds(dims=(("batch", 2),)), 2)})
    spec = parity.prepare([w], {}, tmp_path / "run", log=lambda *_: None)[("tiny/fp32", "synthetic")]
    assert "synthetic feeds were not materialised to a file" in spec.error and not spec.reference
