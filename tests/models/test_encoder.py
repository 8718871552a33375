"""The real all-MiniLM-L6-v2 encoder on real review text, with a small evaluation set."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.core.feeds import load_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.models.encoder import EncoderConfig, EncoderModel, encode_batch, tokenizer

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them


def test_tokenizer_does_not_pad_to_128():
    tok = tokenizer(128)
    feed = encode_batch(tok, ["red summer dress"])
    assert feed["input_ids"].shape[1] < 10 and feed["attention_mask"].all()
    batch = encode_batch(tok, ["a", "a much longer product title for a knit sweater"])
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum() == batch["input_ids"].shape[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    model = EncoderModel(EncoderConfig(n_pairs=40, n_tune=60, offline_batch=8))
    return model, model.build(cache, log=lambda *_: None), cache


def test_export_has_dynamic_batch_and_sequence(built):
    _, variant, _ = built
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(variant.path).graph.input]
    assert dims == [["batch", "seq"], ["batch", "seq"]]
    assert variant.parity["max_abs_diff_vs_torch"] < 1e-4


def test_fidelity_is_measured_not_assumed(built):
    model, variant, cache = built
    assert variant.accuracy["cosine"] > 0.9999 and variant.accuracy["top10_overlap"] == 1.0
    run = ort_run_fn(variant.path)
    rng = np.random.default_rng(0)
    noisy = model.evaluate(lambda f: [run(f)[0] + 0.05 * rng.standard_normal(run(f)[0].shape).astype(np.float32)], cache)
    assert noisy["cosine"] < variant.accuracy["cosine"]
    embeddings = run(encode_batch(model.tok, ["linen shirt"]))[0]
    assert embeddings.shape == (1, 384) and np.linalg.norm(embeddings) == pytest.approx(1.0, abs=1e-5)


def test_query_feeds_keep_real_lengths(built):
    model, _, cache = built
    fs = model.feeds("query", cache)
    feeds = load_feeds(fs.path)
    lengths = {f["input_ids"].shape[1] for f in feeds}
    assert fs.items_per_inference == 1 and all(f["input_ids"].shape[0] == 1 for f in feeds)
    assert len(feeds) == 40 and len(lengths) > 1 and max(lengths) < 128


def test_retrieval_task_metrics_have_ground_truth_intervals_and_paired_deltas(built):
    model, variant, cache = built
    acc = variant.accuracy
    for m in ("recall@10", "mrr", "ndcg@10"):
        assert acc[f"{m}_lo"] <= acc[m] <= acc[f"{m}_hi"]
        assert acc[f"delta_{m}"] == 0.0  # fp32 against itself
    assert acc["recall@10"] > 10 / 40  # better than a random ranking of 40 documents (10/40 expected)
    run = ort_run_fn(variant.path)
    rng = np.random.default_rng(1)
    noisy = model.evaluate(lambda f: [run(f)[0] + 0.2 * rng.standard_normal(run(f)[0].shape).astype(np.float32)], cache)
    assert noisy["delta_mrr_hi"] < 0  # a broken variant's paired delta is significantly negative


def test_tuning_split_is_disjoint_from_evaluation(built):
    from odbench.models.base import ZooTask, split_record

    model, _, cache = built
    rec = ZooTask(model, cache).tuned_on()
    assert rec["split"] == "tuning" and rec["n"] == 60
    ids = model.split_ids(rec["split"])
    assert split_record("tuning", ids)["sha256"] == rec["sha256"]
    assert not set(ids.tolist()) & set(model.split_ids("evaluation").tolist())
    assert not set(model.data.train_texts) & set(model.data.corpus)  # no evaluation review is tuned on


def test_torch_task_trains_like_a_transformer_distillation(built, monkeypatch):
    """torch_task opts in to frozen embeddings, no dropout and AdamW warmup/decay; its batches are
    tuning-split text at the evaluation's max_len (not 64) with the teacher's targets as labels."""

    model, _, cache = built
    task = model.torch_task(cache)
    assert task.freeze_embeddings and not task.dropout and task.warmup_frac > 0
    tuning = set(model.data.train_titles) | set(model.data.train_texts)
    evaluation = set(model.data.queries) | set(model.data.corpus)
    widths, seen = [], []
    decode = model.tok.decode_batch
    for (ids, mask), (hidden, pooled) in task.batches(6, 8, 0):
        widths.append(ids.shape[1])
        assert hidden.shape == (*ids.shape, 384) and pooled.shape == (ids.shape[0], 384)
        seen += [t.lower() for t in decode(ids.tolist(), skip_special_tokens=True)]
        # the teacher matched against its own cached targets: both losses ~0
        assert float(task.loss(task.module, task.module, (ids, mask), (hidden, pooled), 2.0, 0.5)) < 1e-3
    assert max(widths) > 64 and max(widths) <= model.config.max_len  # real lengths, review texts past 64 tokens
    eval_only = {" ".join(t.lower().split()) for t in evaluation - tuning}
    assert seen and not any(" ".join(s.split()) in eval_only for s in seen)
    # cached: a second pass reads the teacher's targets from disk and never runs the teacher
    task2 = model.torch_task(cache)
    monkeypatch.setattr(type(task2.module), "forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher ran")))
    monkeypatch.setattr(task2.module.bert, "forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("teacher ran")))
    assert sum(1 for _ in task2.batches(6, 8, 0)) == 6


def test_torch_task_loss_sees_token_and_pooled_differences(built):
    import torch

    model, _, cache = built
    task = model.torch_task(cache)
    (ids, mask), (hidden, pooled) = next(iter(task.batches(1, 4, 1)))
    same = float(task.loss(task.module, None, (ids, mask), (hidden, pooled), 2.0, 0.5))
    off = float(task.loss(task.module, None, (ids, mask), (hidden * 1.5, pooled), 2.0, 0.5))  # token targets only
    assert same < 1e-3 < off
    rolled = torch.roll(pooled, 1, dims=0)  # another text's embedding as the target
    assert float(task.loss(task.module, None, (ids, mask), (hidden, rolled), 2.0, 0.5)) > off / 10


# ------------------------------------------------------------------ issue 20: spies on what tuners receive


def _tagged_reviews(n: int = 900):
    """Review rows whose title and text carry their own row number, so any text a spy sees names its row."""
    import pandas as pd

    return pd.DataFrame({"Title": [f"title row{i}" for i in range(n)],
                         "Review Text": [f"review text of row{i} with enough words" for i in range(n)]})


def _rows_in(texts) -> set[int]:
    import re

    return {int(m) for t in texts for m in re.findall(r"row(\d+)", t)}


def test_calibration_tuning_and_training_never_receive_an_evaluation_row(monkeypatch, tmp_path):
    """Spies on the functions that receive text (tokenisation, the teacher-target batches) while a
    calibrator, the tuning metric and a trainer draw their data: no evaluation row reaches any of them,
    and the calibration titles are apart from the tuning metric's pairs."""
    import odbench.models.encoder as E
    from odbench.models.base import ZooTask

    monkeypatch.setattr(E, "clothing_reviews", _tagged_reviews)
    seen: dict[str, list[str]] = {}
    real_encode = E.encode_batch
    where = ["none"]

    def spy_encode(tok, texts):
        seen.setdefault(where[0], []).extend(texts)
        return real_encode(tok, texts)

    def spy_batches(titles, texts, encode, teacher, cache_dir, tag):
        seen.setdefault("trainer", []).extend(list(titles) + list(texts))
        return lambda steps, batch, seed: iter(())

    monkeypatch.setattr(E, "encode_batch", spy_encode)
    monkeypatch.setattr(E, "make_batches", spy_batches)
    monkeypatch.setattr(E, "build_module", lambda: None)
    model = E.EncoderModel(E.EncoderConfig(n_pairs=100, n_tune=600))
    n_q, n_docs = model.tune_sizes
    rng = np.random.default_rng(0)
    ref = {"tune_queries": rng.standard_normal((n_q, 8)), "tune_corpus": rng.standard_normal((n_docs, 8))}
    monkeypatch.setattr(model, "_reference", lambda cache: ref)
    task = ZooTask(model, tmp_path)
    received, batch_sizes = [], set()

    def run(feed):  # the variant under tuning: records what it is fed
        batch_sizes.add(feed["input_ids"].shape[0])
        received.extend(model.tok.decode_batch(feed["input_ids"].tolist(), skip_special_tokens=True))
        return [rng.standard_normal((feed["input_ids"].shape[0], 8)).astype(np.float32)]

    where[0] = "calibration"
    feeds = task.calibration_feeds(64)
    where[0] = "tuning"
    task.tuning_metric(run)
    task.tuning_accuracy(run)
    where[0] = "trainer"
    model.torch_task(tmp_path)
    evaluation = set(model.split_ids("evaluation").tolist())
    tuning = set(model.split_ids("tuning").tolist())
    for who in ("calibration", "tuning", "trainer"):
        rows = _rows_in(seen[who])
        assert rows and rows <= tuning and not rows & evaluation, who
    assert _rows_in(received) and not _rows_in(received) & evaluation
    assert batch_sizes == {1}  # every text embedded alone, as a device does: no batch-dependent int8 scales
    assert len(feeds) == 64 and not _rows_in(seen["calibration"]) & _rows_in(seen["tuning"])
