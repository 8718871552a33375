"""The customer-service classifier (reviews -> department) on real text, at a small split size."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.core.feeds import load_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.models.base import ZooTask, split_record
from odbench.models.classifier import ClassifierConfig, ClassifierModel

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them


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


# ------------------------------------------------------------------ issue 20: spies on what the trainer and tuners receive


def _tagged_reviews(n: int = 600):
    import pandas as pd

    depts = ["Tops", "Dresses", "Bottoms"]
    return pd.DataFrame({"Review Text": [f"review text of row{i} with enough words" for i in range(n)],
                         "Department Name": [depts[i % 3] for i in range(n)]})


def test_training_calibration_and_tuning_never_receive_a_test_row(monkeypatch, tmp_path):
    """Spies on tokenisation while the head's trainer embeds its data, the calibrator draws feeds and the
    tuning metric runs: no test row reaches any of them."""
    import re

    import torch

    import odbench.models.classifier as K

    monkeypatch.setattr(K, "clothing_reviews", _tagged_reviews)
    seen: dict[str, list[str]] = {}
    where = ["none"]
    real_encode = K.encode_batch

    def spy_encode(tok, texts):
        seen.setdefault(where[0], []).extend(texts)
        return real_encode(tok, texts)

    class Stop(Exception):
        pass

    def spy_train_head(x, y, xv, yv, n_classes, cfg):
        where[0] = "after training"
        raise Stop

    monkeypatch.setattr(K, "encode_batch", spy_encode)
    monkeypatch.setattr(K, "build_module", lambda: (lambda ids, mask: torch.zeros(ids.shape[0], 384)))
    monkeypatch.setattr(K, "train_head", spy_train_head)
    model = K.ClassifierModel(K.ClassifierConfig(n_train=200, n_val=100, n_test=150))
    where[0] = "trainer"
    with pytest.raises(Stop):
        model.build(tmp_path, log=lambda *_: None)
    task = ZooTask(model, tmp_path)
    where[0] = "calibration"
    task.calibration_feeds(16)
    where[0] = "tuning"
    task.tuning_metric(lambda feed: [np.random.default_rng(0).standard_normal((feed["input_ids"].shape[0], 3)).astype(np.float32)])
    test = set(model.split_ids("test").tolist())
    for who in ("trainer", "calibration", "tuning"):
        rows = {int(m) for t in seen[who] for m in re.findall(r"row(\d+)", t)}
        assert rows and not rows & test, who
