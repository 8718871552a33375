"""A user's model on the user's data: a harmful variant's delta excludes 0, an identical copy's contains 0
(per task shape), and calibration never sees a test row."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Feeds
from odbench.models.base import split_record
from odbench.models.onnx_file import user_variant
from odbench.models.user_data import load_eval
from odbench.models.user_task import UserTask, retrieval_per_query
from tests.models.user_fixtures import classification_set, ranking_set, retrieval_set

SHAPES = {"ranking": (ranking_set, ("auc", "ndcg@10")), "classification": (classification_set, ("accuracy", "macro_f1")),
          "retrieval": (retrieval_set, ("recall@10", "mrr", "ndcg@10"))}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_harmful_variant_excluded_from_zero_and_identical_copy_contains_zero(tmp_path, shape):
    make, metrics = SHAPES[shape]
    model, harmed, ev = make(tmp_path / "d")
    task = UserTask(model, load_eval(ev))
    copy = shutil.copy(model, tmp_path / "copy.onnx")
    same, bad = task.evaluate(ort_run_fn(copy)), task.evaluate(ort_run_fn(harmed))
    assert task.primary_metric in metrics
    for m in metrics:
        assert same[f"delta_{m}_lo"] <= 0 <= same[f"delta_{m}_hi"], (m, same)
        assert bad[f"delta_{m}_hi"] < 0, (m, bad)  # worse, and the interval says so
        assert same[f"{m}_lo"] <= same[m] <= same[f"{m}_hi"]
    # the fp32 model does real work on this data (the check above is not vacuous)
    assert same[task.primary_metric] > bad[task.primary_metric] + 0.1


def test_nan_output_is_an_error_not_a_score(tmp_path):
    model, _, ev = classification_set(tmp_path / "d")
    task = UserTask(model, load_eval(ev))
    with pytest.raises(FloatingPointError, match="NaN"):
        task.evaluate(lambda feed: [np.full((len(feed["x"]), 3), np.nan, dtype=np.float32)])


def test_retrieval_ties_count_against_the_relevant_document():
    q = np.ones((1, 2))
    d = np.ones((5, 2))  # every document scores the same
    out = retrieval_per_query(q, d, [np.array([2])], k=3)
    assert out["recall@3"][0] == 0.0 and out["mrr"][0] == pytest.approx(1 / 5) and out["ndcg@3"][0] == 0.0


def test_pooling_mean_and_cls_differ_and_mean_ignores_padding(tmp_path):
    model, _, ev = retrieval_set(tmp_path / "d")
    task = UserTask(model, load_eval(ev))
    run = ort_run_fn(model)
    one = task.fz.text_feed(["w0 w1"])
    padded = task.fz.text_feed(["w0 w1", "w3 w4 w5 n1 n2"])
    a = task.fz.pick(run(one), one)[0]
    b = task.fz.pick(run(padded), padded)[0]
    assert np.allclose(a, b, atol=1e-5)  # the padding of a longer neighbour does not move the mean
    cls = type(task.spec.text)(tokenizer=task.spec.text.tokenizer, pooling="cls")
    task.fz.spec = task.spec.model_copy(update={"text": cls})
    assert not np.allclose(task.fz.pick(run(one), one)[0], a)


def test_calibration_reads_tuning_rows_only(tmp_path, monkeypatch):
    """A spy on what INC's static calibration actually receives: every row it sees is a tuning row."""
    from odbench.compressors import inc
    from odbench.compressors.build import compress_onnx_file

    model, _, ev = ranking_set(tmp_path / "d")
    data = load_eval(ev)
    task = UserTask(model, data)
    seen: list[np.ndarray] = []
    real_loader = inc._Loader

    class Spy(real_loader):
        def __init__(self, feeds):
            seen.extend(f["item"] for f in feeds)  # item ids are row positions in the fixture
            super().__init__(feeds)

    monkeypatch.setattr(inc, "_Loader", Spy)
    baseline = user_variant(model)
    feeds = Feeds(path=str(task.write_timing_feeds(tmp_path / "feeds")))
    _, built = compress_onnx_file(baseline, feeds, "default", tmp_path / "cache", log=lambda m: None, task=task)
    static = next(b for b in built if b.step.key == "int8static")
    assert static.variant is not None, static.error
    rows = np.unique(np.concatenate(seen))
    assert len(rows) > 0
    assert not np.intersect1d(rows, data.ids("test")).size, "a test row reached the calibrator"
    assert np.isin(rows, data.ids("tuning")).all()
    # every variant records the rows it was tuned on: the tuning part, disjoint from the test part
    for b in built:
        if b.variant is not None:
            rec = b.variant.config["tuned_on"]
            assert rec["sha256"] == split_record("tuning", data.ids("tuning"))["sha256"] and rec["n"] == len(data.ids("tuning"))
    assert static.variant.accuracy["delta_auc_lo"] <= static.variant.accuracy["delta_auc"] <= static.variant.accuracy["delta_auc_hi"]


def test_tuning_metric_never_reads_test_rows(tmp_path):
    model, _, ev = classification_set(tmp_path / "d")
    data = load_eval(ev)
    task = UserTask(model, data)
    seen = []
    run = ort_run_fn(model)

    def spy(feed):
        seen.append(feed["x"].copy())
        return run(feed)

    task.tuning_metric(spy)
    x = data.rows[[f"f{i}" for i in range(5)]].to_numpy(np.float32)
    got = np.concatenate(seen)
    assert len(got) == len(data.ids("tuning")) and np.array_equal(got, x[data.ids("tuning")])
