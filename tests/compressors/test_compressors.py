"""Every compressor on tiny models: valid ONNX that runs, lineage, accuracy from its own outputs."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

from odbench.compressors import COMPRESSORS, NEEDS_TORCH, get_compressor
from odbench.compressors.base import config_dict
from odbench.compressors.embedding import EmbeddingQuantConfig, quantize_blocks_int4, quantize_rows_int8
from odbench.compressors.inc import IncConfig, variant_name
from odbench.compressors.isa import host_int8_isa
from odbench.compressors.lowrank import LowRankConfig, factorise
from odbench.compressors.prune import MagnitudePruneConfig
from odbench.compressors.recipes import RECIPES
from odbench.core.onnx_tools import ort_run_fn
from tests.compressors.conftest import baseline_variant, make_tiny_ranker

GRAPH_CASES = [
    ("prune-magnitude", MagnitudePruneConfig(0.5)),
    ("prune-magnitude", MagnitudePruneConfig(0.9, scope="per_layer")),
    ("lowrank-svd", LowRankConfig(target="matmul", energy=None, rank=4)),
    ("lowrank-svd", LowRankConfig(target="gather", energy=None, rank=8)),
    ("embedding-quant", EmbeddingQuantConfig(bits=8)),
    ("embedding-quant", EmbeddingQuantConfig(bits=4, block_size=16)),
    ("inc-int8", IncConfig(approach="dynamic", tune=False)),
]


def test_registry_lists_every_compressor():
    for name in COMPRESSORS:
        c = get_compressor(name)
        assert c.name == name and dataclasses.is_dataclass(c.Config) and c.Config.__dataclass_params__.frozen


@pytest.mark.parametrize("name, config", GRAPH_CASES, ids=lambda x: str(x) if isinstance(x, str) else type(x).__name__)
def test_graph_compressor_output_is_valid_runs_and_records_lineage(tiny, name, config):
    base, task, out = tiny
    v = get_compressor(name).compress(base, task, config, out)
    onnx.checker.check_model(v.path)
    run = ort_run_fn(v.path)
    (y,) = run(task.eval_feeds[0])
    assert y.shape == (16, 8) and np.all(np.isfinite(y))
    assert v.parent == base.id and v.compressor == name
    expected = config_dict(config)
    if expected.get("target_isa") == "host":  # int8 records the ISA it was built for, never "host"
        expected["target_isa"] = host_int8_isa()
    assert {k: v.config[k] for k in expected} == expected
    assert v.accuracy == task.evaluate(run)  # measured from this file's own outputs
    assert 0 < v.accuracy["fidelity_cosine"] <= 1.0 + 1e-9
    assert v.gzip_bytes and v.size_bytes and v.embedding_mb is not None
    # cached by content hash: a rerun returns the same variant without rebuilding
    assert get_compressor(name).compress(base, task, config, out) == v


def test_accuracy_reflects_the_damage(tiny):
    base, task, out = tiny
    p = get_compressor("prune-magnitude")
    mild = p.compress(base, task, MagnitudePruneConfig(0.3), out)
    harsh = p.compress(base, task, MagnitudePruneConfig(0.95), out)
    assert harsh.accuracy["fidelity_cosine"] < mild.accuracy["fidelity_cosine"] < 1.0
    assert harsh.sparsity > 0.9 and 0.25 < mild.sparsity < 0.35
    assert harsh.gzip_bytes < mild.gzip_bytes  # sparsity shrinks the compressed file


def test_svd_at_full_rank_reproduces_the_layer(tmp_path):
    w = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    a, b = factorise(w, 32)
    np.testing.assert_allclose(a @ b, w, atol=1e-4)
    # through the graph: a rank-4 weight factorised by energy keeps the outputs
    from odbench.compressors.fidelity import OnnxFidelityTask
    from odbench.core.records import Feeds

    path = make_tiny_ranker(tmp_path / "lr.onnx", low_rank_w1=True)
    task = OnnxFidelityTask(path, Feeds(dims=(("batch", 4),), int_high=2000), n_eval=4)
    v = get_compressor("lowrank-svd").compress(baseline_variant(path), task, LowRankConfig(energy=0.999999), tmp_path / "v")
    assert "rank 4" in " ".join(v.notes)
    assert v.accuracy["max_abs_diff"] < 1e-4


def test_int8_rows_dequantize_within_their_scale():
    t = np.random.default_rng(1).standard_normal((500, 32)).astype(np.float32) * np.linspace(0.01, 3, 500)[:, None]
    q, scale = quantize_rows_int8(t)
    assert q.dtype == np.int8 and scale.dtype == np.float16
    err = np.abs(q.astype(np.float32) * scale.astype(np.float32)[:, None] - t)
    assert np.all(err <= scale.astype(np.float32)[:, None] / 2 + 1e-6)


def test_int4_blocks_dequantize_within_their_scale_and_run_in_ort(tiny):
    t = np.random.default_rng(2).standard_normal((100, 32)).astype(np.float32)
    packed, scale = quantize_blocks_int4(t, 16)
    lo, hi = (packed & 0x0F).astype(np.int16) - 8, (packed >> 4).astype(np.int16) - 8
    q = np.empty((100, 32), np.int16)
    q[:, 0::2], q[:, 1::2] = lo, hi
    deq = q.reshape(100, 2, 16) * scale[..., None]
    assert np.all(np.abs(deq.reshape(100, 32) - t) <= np.repeat(scale, 16, axis=1) / 2 + 1e-6)
    base, task, out = tiny
    v = get_compressor("embedding-quant").compress(base, task, EmbeddingQuantConfig(bits=4, block_size=16), out)
    assert v.accuracy["fidelity_cosine"] > 0.99  # ORT's GatherBlockQuantized decodes what we packed
    assert v.embedding_mb < 0.2 * (2000 * 32 * 4 / 2**20) + 0.1


def test_static_calibration_uses_the_samples_it_was_given(tiny, monkeypatch):
    import odbench.compressors.inc as inc

    base, task, out = tiny
    asked, seen = [], []
    real = task.calibration_feeds
    monkeypatch.setattr(task, "calibration_feeds", lambda n: asked.append(n) or real(n))

    class SpyLoader(inc._Loader):
        def __iter__(self):
            for feed, label in super().__iter__():
                seen.append(feed)
                yield feed, label

    monkeypatch.setattr(inc, "_Loader", SpyLoader)
    v = get_compressor("inc-int8").compress(base, task, IncConfig(approach="static", tune=False, calibration_samples=6), out)
    assert asked == [6]
    assert len(seen) >= 6 and any(np.array_equal(seen[0]["x"], f["x"]) for f in real(6))
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(v.path).graph.node)


def test_training_compressors_refuse_without_a_torch_model(tiny):
    from odbench.compressors.base import CompressionError

    base, task, out = tiny
    for name in NEEDS_TORCH:
        c = get_compressor(name)
        with pytest.raises(CompressionError, match="TorchTask"):
            c.compress(base, task, c.Config(), out)


def test_inc_builds_for_the_target_isa_not_the_build_host(tiny):
    """INC's reduce_range follows target_isa (7-bit weights for x86-avx2), whatever CPU builds it."""
    from onnx import numpy_helper

    from odbench.compressors.isa import isa_mismatch_warning

    base, task, out = tiny
    inc = get_compressor("inc-int8")
    vnni = inc.compress(base, task, IncConfig(approach="dynamic", tune=False, target_isa="x86-vnni"), out)
    avx2 = inc.compress(base, task, IncConfig(approach="dynamic", tune=False, target_isa="x86-avx2"), out)
    assert vnni.path != avx2.path
    assert (vnni.config["target_isa"], vnni.config["weight_bits"]) == ("x86-vnni", 8)
    assert (avx2.config["target_isa"], avx2.config["weight_bits"]) == ("x86-avx2", 7)

    def widest_weight(path):
        m = onnx.load(path)
        return max(int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max()) for i in m.graph.initializer
                   if numpy_helper.to_array(i).dtype == np.int8 and i.name.startswith("w1"))

    assert widest_weight(avx2.path) <= 64 < widest_weight(vnni.path)  # ORT reduce_range: [-64, 64]
    assert "saturate" in isa_mismatch_warning(vnni, "x86-avx2")


def test_every_inc_recipe_in_the_recipes_has_its_own_variant_name():
    """Two INC configs of one model under one id would share cells and rows (found in an encoder run)."""
    for (model, recipe), steps in RECIPES.items():
        names = [variant_name(s.config) for s in steps if isinstance(s.config, IncConfig) and s.parent is None]
        assert len(names) == len(set(names)), (model, recipe, names)
