"""The CTR ranker on real MovieLens-100k, at a tiny table size so the test stays fast."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from bench.feeds import load_feeds
from models.base import ort_run_fn
from models.ctr import CtrConfig, CtrModel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    model = CtrModel(CtrConfig(hash_rows=5000, emb_dim=8, top=(32,), epochs=1))
    return model, model.build(cache, log=lambda *_: None), cache


def test_time_split_and_labels(built):
    model, _, _ = built
    d = model.data
    assert len(d.train_y) == 80_000 and len(d.test_y) == 20_000
    assert 0.4 < d.train_y.mean() < 0.7  # rating >= 4 is a positive
    assert d.train["dense"].shape[1] == d.n_dense and d.train["cat"].shape[1] == 3


def test_export_is_valid_with_dynamic_batch_and_parity(built):
    model, variant, _ = built
    m = onnx.load(variant.path)
    onnx.checker.check_model(m)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert variant.parity["max_abs_diff_vs_torch"] < 1e-5
    assert variant.params >= 2 * 5000 * 8  # both hashed ID tables are in the graph


def test_accuracy_is_measured_from_the_variants_outputs(built):
    model, variant, cache = built
    assert 0.6 < variant.accuracy["auc"] < 1.0  # trained: clearly better than chance on the held-out period
    run = ort_run_fn(variant.path)
    assert model.evaluate(run, cache) == pytest.approx(variant.accuracy)
    flipped = model.evaluate(lambda feed: [1.0 - run(feed)[0]], cache)  # a wrong model scores worse
    assert flipped["auc"] == pytest.approx(1 - variant.accuracy["auc"])


def test_ids_are_hashed_inside_the_graph(built):
    model, variant, _ = built
    run = ort_run_fn(variant.path)
    feed = {k: v[:4].copy() for k, v in model.data.test.items()}
    feed["user_id"] = np.array([10**9, 10**9 + 1, 7, 123456789], dtype=np.int64)  # far beyond hash_rows
    (score,) = run(feed)
    assert score.shape == (4,) and np.all((score > 0) & (score < 1))


@pytest.mark.parametrize("scenario", CtrModel.scenarios)
def test_rank_feeds_are_one_user_by_n_candidates(built, scenario):
    model, _, cache = built
    fs = model.feeds(scenario, cache)
    feeds = load_feeds(fs.path)
    assert all(f["user_id"].shape == (fs.items_per_inference,) for f in feeds)
    if scenario.startswith("rank-"):
        assert fs.items_per_inference == int(scenario.split("-")[1])
        assert all(len(set(f["user_id"])) == 1 and len(set(f["item_id"])) == fs.items_per_inference for f in feeds)


def test_torch_eager_runtime_rebuilds_the_trained_module(built):
    """The sidecar names this very config, so the eager module is the trained one, not a default."""
    from runtimes import get_runtime

    model, variant, cache = built
    rt = get_runtime("torch")
    sess = rt.open(variant.path, 1, rt.Options())
    feed = {k: v[:16].copy() for k, v in model.data.test.items()}
    np.testing.assert_allclose(sess.run(feed)[0], ort_run_fn(variant.path)(feed)[0], rtol=1e-4, atol=1e-5)


def test_openvino_int64_id_hash_overflow_is_visible(built):
    """OpenVINO's CPU plugin computes int64 as int32: the in-graph ID hash (id * 2654435761) overflows,
    so its scores differ from ONNX Runtime's; parity (bench/parity.py) turns such cells to FAIL."""
    from runtimes import get_runtime

    rt = get_runtime("openvino")
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    model, variant, _ = built
    sess = rt.open(variant.path, 1, rt.Options())
    feed = {k: v[:64].copy() for k, v in model.data.test.items()}
    ref = ort_run_fn(variant.path)(feed)[0]
    assert np.max(np.abs(sess.run(feed)[0] - ref)) > 1e-3  # different rows were looked up
    zero = dict(feed, user_id=np.zeros(64, np.int64), item_id=np.zeros(64, np.int64))
    np.testing.assert_allclose(sess.run(zero)[0], ort_run_fn(variant.path)(zero)[0], atol=1e-5)  # no overflow at id 0
