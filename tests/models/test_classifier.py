"""The customer-service classifier (reviews -> department) on real text, at a small split size."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.core.feeds import load_feeds
from odbench.models.base import ZooTask, split_record
from odbench.core.onnx_tools import ort_run_fn
from odbench.models.classifier import ClassifierConfig, ClassifierModel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    model = ClassifierModel(ClassifierConfig(n_train=400, n_val=150, n_test=300, classify_feeds=20))
    return model, model.build(cache, log=lambda *_: None), cache


def test_beats_the_majority_class_on_its_test_split(built):
    model, variant, _ = built
    acc, majority = variant.accuracy, model.majority_baseline()
    assert acc["accuracy_lo"] > majority["accuracy"]  # the whole 95% interval is above it
    assert acc["macro_f1_lo"] > majority["macro_f1"]
    assert acc["delta_accuracy"] == 0.0 and acc["agreement"] == 1.0


def test_export_has_dynamic_batch_and_sequence_and_matches_torch(built):
    model, variant, _ = built
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(variant.path).graph.input]
    assert dims == [["batch", "seq"], ["batch", "seq"]]
    assert variant.parity["max_abs_diff_vs_torch"] < 1e-4
    assert len(model.data.classes) == 6


def test_a_broken_variant_scores_worse_with_a_significant_paired_delta(built):
    model, variant, cache = built
    run = ort_run_fn(variant.path)
    rolled = model.evaluate(lambda f: [np.roll(run(f)[0], 1, axis=1)], cache)  # every class shifted by one
    assert rolled["delta_accuracy_hi"] < 0 and rolled["agreement"] < 0.5


def test_classify_feeds_are_single_messages_at_real_lengths(built):
    model, _, cache = built
    fs = model.feeds("classify", cache)
    feeds = load_feeds(fs.path)
    assert fs.items_per_inference == 1 and len(feeds) == 20
    assert all(f["input_ids"].shape[0] == 1 for f in feeds) and len({f["input_ids"].shape[1] for f in feeds}) > 1


def test_tuning_split_is_disjoint_from_the_test_split(built):
    model, variant, cache = built
    rec = ZooTask(model, cache).tuned_on()
    ids = model.split_ids(rec["split"])
    assert split_record(rec["split"], ids) == rec
    assert not set(ids.tolist()) & set(model.split_ids("test").tolist())
    trained = variant.config["trained_on"]
    assert not set(model.split_ids(trained["split"]).tolist()) & set(model.split_ids("test").tolist())
