"""The CTR ranker on real MovieLens-100k, at a tiny table size so the test stays fast."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.core.feeds import load_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.models.ctr import CtrConfig, CtrModel

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    model = CtrModel(CtrConfig(hash_rows=5000, emb_dim=8, top=(32,), epochs=2))
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
    feed["user_id"] = np.array([10**7, 10**7 + 1, 7, 16_000_000], dtype=np.int64)  # far beyond hash_rows, below 2**24
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
    from odbench.runtimes import get_runtime

    model, variant, cache = built
    rt = get_runtime("torch")
    sess = rt.open(variant.path, 1, rt.Options())
    feed = {k: v[:16].copy() for k, v in model.data.test.items()}
    np.testing.assert_allclose(sess.run(feed)[0], ort_run_fn(variant.path)(feed)[0], rtol=1e-4, atol=1e-5)


def _parity_vs_ort(runtime: str, variant, model, cache) -> list[str]:
    """bench/parity.py's runtime check of ``variant`` on ``runtime`` against ONNX Runtime, on real rank-200 feeds."""
    from odbench.bench import parity
    from odbench.runtimes import get_runtime

    rt = get_runtime(runtime)
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    sess = rt.open(variant.path, 1, rt.Options())
    feeds = load_feeds(model.feeds("rank-200", cache).path)[:4]
    ref = ort_run_fn(variant.path)
    got = [sess.run(f) for f in feeds]
    return parity.judge("ranking", {"runtime": parity.compare("ranking", got, [ref(f) for f in feeds])})


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """The old export: ids * 2654435761 in int64, which int32 runtimes wrap."""
    cache = tmp_path_factory.mktemp("legacy")
    model = CtrModel(CtrConfig(hash_rows=5000, emb_dim=8, top=(32,), epochs=1, id_hash="int64"))
    return model, model.build(cache, log=lambda *_: None), cache


@pytest.mark.parametrize("runtime", ["openvino", "mnn"])
def test_portable_hash_passes_parity_where_the_int64_hash_fails(built, legacy, runtime):
    model, variant, cache = built
    assert _parity_vs_ort(runtime, variant, model, cache) == []
    if runtime == "openvino":  # OpenVINO's CPU plugin wraps int64 as int32: other rows are read
        reasons = _parity_vs_ort(runtime, legacy[1], legacy[0], legacy[2])
        assert reasons and "vs the same variant on onnxruntime" in reasons[0]


def test_portable_hash_keeps_ids_apart_and_in_range():
    import torch

    from odbench.models.ctr import HASH_A, HASH_B, HASH_P, ID_LIMIT, portable_hash

    assert (HASH_P - 1) * max(HASH_A, HASH_B) < 2**24 and 2 * 250_000 < 2**24  # exact in int32 and float32
    ids = torch.arange(0, 20_000, dtype=torch.int64)
    rows = portable_hash(ids, 250_000)
    assert int(rows.min()) >= 0 and int(rows.max()) < 250_000
    assert len(torch.unique(rows[:HASH_P])) == HASH_P  # MovieLens' ids (< 1,700) get rows of their own
    assert len(torch.unique(rows)) > 0.9 * len(ids)
    big = torch.tensor([10**6, ID_LIMIT - 1], dtype=torch.int64)
    as_float = portable_hash(big.to(torch.float32), 250_000).to(torch.int64)  # what a float32 Mod would give
    assert torch.equal(portable_hash(big, 250_000), as_float)
    assert torch.equal(portable_hash(big, 250_000), portable_hash(big.to(torch.int32), 250_000).to(torch.int64))


def test_early_stopping_on_the_validation_split(built):
    model, variant, _ = built
    d = model.data
    assert len(d.row_ids["fit"]) + len(d.row_ids["validation"]) == len(d.train_y)
    assert variant.config["best_epoch"] >= 1 and len(variant.config["val_auc_history"]) >= 1


def test_task_metrics_carry_intervals_and_zero_delta_for_fp32(built):
    _, variant, _ = built
    acc = variant.accuracy
    for m in ("auc", "logloss", "ndcg@10"):
        assert acc[f"{m}_lo"] < acc[m] < acc[f"{m}_hi"]
        assert acc[f"delta_{m}"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < acc["ndcg@10"] <= 1.0


def test_tuning_data_is_disjoint_from_the_test_period(built):
    """Checked from what the fp32 variant and the task record, not from the code's intent."""
    from odbench.models.base import ZooTask, split_record

    model, variant, cache = built
    rec = ZooTask(model, cache).tuned_on()
    ids = model.split_ids(rec["split"])
    assert split_record(rec["split"], ids) == rec == variant.config["trained_on"]
    assert not set(ids.tolist()) & set(model.split_ids("test").tolist())


def test_a_compressed_variant_records_its_tuning_split_and_paired_deltas(built, tmp_path):
    """From what the variant records: the split its compressor could see is disjoint from the test period."""
    from odbench.compressors import get_compressor
    from odbench.compressors.prune import MagnitudePruneConfig
    from odbench.models.base import ZooTask, split_record

    model, variant, cache = built
    pruned = get_compressor("prune-magnitude").compress(variant, ZooTask(model, cache), MagnitudePruneConfig(0.5), tmp_path)
    rec = pruned.config["tuned_on"]
    ids = model.split_ids(rec["split"])
    assert split_record(rec["split"], ids)["sha256"] == rec["sha256"]
    assert not set(ids.tolist()) & set(model.split_ids("test").tolist())
    acc = pruned.accuracy
    assert acc["delta_auc_lo"] <= acc["delta_auc"] <= acc["delta_auc_hi"]
    assert acc["delta_auc"] == pytest.approx(acc["auc"] - variant.accuracy["auc"])


# ------------------------------------------------------------------ issue 20: spies on what tuners and trainers receive


def _pairs(feed) -> set[tuple[int, int]]:
    """(user, item) pairs of a feed: one MovieLens rating each (a user rates an item once)."""
    return set(zip(np.asarray(feed["user_id"]).tolist(), np.asarray(feed["item_id"]).tolist()))


@pytest.mark.slow  # loads and featurises the real 100k ratings (~15 s on 2 loaded cores)
def test_calibration_tuning_and_training_never_receive_a_test_row(monkeypatch, tmp_path):
    """Spies on what the trainer (epoch selection and the refit), the calibrator, the tuning metric and a
    compressor's training batches actually receive: no test-period rating reaches any of them, and the
    shipped ranker's refit sees fit+validation, the rows the CTR variants and the baselines train on."""
    import odbench.models.ctr as C
    from odbench.models.base import ZooTask

    model = CtrModel(CtrConfig(hash_rows=4096, emb_dim=4, bottom=(8,), top=(16, 8), epochs=2))
    data = model.data
    test = _pairs(data.test)
    calls = []

    def spy_fit(cfg, data_, rows, y, epochs, log, label, val=None):
        calls.append((label, _pairs(rows), None if val is None else _pairs(val[0]), len(y)))
        return C.build_net(cfg, data_.n_dense).eval(), 1, [0.5]

    monkeypatch.setattr(C, "_fit_epochs", spy_fit)
    C.train(model.config, data, log=lambda *_: None)
    (sel, sel_rows, sel_val, _), (refit, refit_rows, refit_val, n_refit) = calls
    assert sel_rows == _pairs(data.split("fit")[0]) and sel_val == _pairs(data.split("validation")[0])
    assert refit_rows == _pairs(data.train) and n_refit == len(model.split_ids("fit+validation")) and refit_val is None
    assert not (sel_rows | sel_val | refit_rows) & test

    received = []

    rng = np.random.default_rng(0)

    def run(feed):  # the variant under tuning: records what it is fed
        received.append(_pairs(feed))
        return [rng.random(len(feed["user_id"])).astype(np.float32)]

    task = ZooTask(model, tmp_path)
    calib = set().union(*(_pairs(f) for f in task.calibration_feeds(8)))
    task.tuning_metric(run)
    monkeypatch.setattr(model, "load_torch", lambda cache: C.build_net(model.config, data.n_dense).eval())
    batches = set()
    real_as_torch = C._as_torch
    monkeypatch.setattr(C, "_as_torch", lambda b: (batches.update(_pairs(b)), real_as_torch(b))[1])
    for _ in model.torch_task(tmp_path).batches(5, 64, 0):
        pass
    for who, rows in (("calibration", calib), ("tuning", set().union(*received)), ("training batches", batches)):
        assert rows and not rows & test, who
