"""Tiny user models and evaluation sets, built in the test (onnx.helper, pandas, a word-level tokenizer):
one per task shape, each with a real signal so that a harmed variant scores visibly worse."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def _save(nodes, inputs, outputs, inits: dict, path: Path) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    def array(a):
        a = np.asarray(a)
        return a.astype(np.float32) if a.dtype.kind == "f" else a

    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              initializer=[numpy_helper.from_array(array(a), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_eval(folder: Path, spec: dict) -> Path:
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ------------------------------------------------------------------ ranking


def ranking_model(path: Path, v: np.ndarray, n_items: int, zero_w1: bool = False) -> Path:
    """score = sigmoid(3 * x @ v + item_bias[item]); the MLP x -> relu(x W1) -> W2 computes x @ v exactly."""
    from onnx import TensorProto, helper

    d = len(v)
    w1 = np.zeros((d, 8))
    w1[:, 0], w1[:, 1] = 3 * v, -3 * v
    w2 = np.zeros((8, 1))
    w2[0, 0], w2[1, 0] = 1.0, -1.0
    if zero_w1:
        w1[:] = 0.0
    bias = np.random.default_rng(5).standard_normal((n_items, 1)) * 0.01
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["z"]),
        helper.make_node("Gather", ["item_bias", "item"], ["b"], axis=0),
        helper.make_node("Add", ["z", "b"], ["zb"]), helper.make_node("Sigmoid", ["zb"], ["s"]),
        helper.make_node("Identity", ["s"], ["score"]),
    ]
    return _save(nodes, [helper.make_tensor_value_info("item", TensorProto.INT64, ["batch"]),
                         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", d])],
                 [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
                 {"w1": w1, "w2": w2, "item_bias": bias}, path)


def ranking_set(folder: Path, n_users: int = 60, per_user: int = 12, seed: int = 0, **spec_over) -> tuple[Path, Path, Path]:
    """(model.onnx, harmed.onnx with W1 zeroed, eval.yaml); item ids are row positions (a spy can tell rows apart)."""
    rng = np.random.default_rng(seed)
    n = n_users * per_user
    d = 4
    v = rng.standard_normal(d)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-3 * x @ v))).astype(int)
    df = pd.DataFrame({"user": np.repeat(np.arange(n_users), per_user), "item": np.arange(n), "clicked": y,
                       "ts": np.tile(np.arange(per_user), n_users), **{f"f{i}": x[:, i] for i in range(d)}})
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "rows.parquet")
    model = ranking_model(folder / "model.onnx", v, n)
    harmed = ranking_model(folder / "harmed.onnx", v, n, zero_w1=True)
    spec = {"task": "ranking", "data": "rows.parquet",
            "columns": {"user": "user", "item": "item", "label": "clicked", "time": "ts"},
            "inputs": {"item": "item", "x": [f"f{i}" for i in range(d)]},
            "split": {"rule": "hash", "test_fraction": 0.5, "seed": 0},
            "timing": {"candidates": 8, "count": 4}, **spec_over}
    return model, harmed, write_eval(folder, spec)


# ------------------------------------------------------------------ classification (features)


def classifier_model(path: Path, w: np.ndarray, zero_w1: bool = False) -> Path:
    """logits = relu(x W1) W2 with W1 = [w, -w] and W2 = [I; -I]: exactly x @ w."""
    from onnx import TensorProto, helper

    d, c = w.shape
    w1 = np.concatenate([w, -w], axis=1)
    w2 = np.concatenate([np.eye(c), -np.eye(c)], axis=0)
    if zero_w1:
        w1[:] = 0.0
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["z"]), helper.make_node("Add", ["z", "b"], ["logits"])]
    return _save(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", d])],
                 [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", c])],
                 {"w1": w1, "w2": w2, "b": np.array([0.0, 0.01, 0.02])}, path)


def classification_set(folder: Path, n: int = 600, seed: int = 0, **spec_over) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(seed)
    d, c = 5, 3
    w = rng.standard_normal((d, c))
    x = rng.standard_normal((n, d)).astype(np.float32)
    noisy = x @ w + 0.5 * rng.standard_normal((n, c))
    names = np.array(["shoes", "dresses", "tops"])
    df = pd.DataFrame({**{f"f{i}": x[:, i] for i in range(d)}, "dept": names[noisy.argmax(1)],
                       "split": np.where(rng.random(n) < 0.5, "test", "tuning")})
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "rows.csv", index=False)
    spec = {"task": "classification", "data": "rows.csv", "columns": {"label": "dept"},
            "inputs": {"x": [f"f{i}" for i in range(d)]}, "classes": [str(c) for c in names],
            "split": {"rule": "column", "column": "split"}, "timing": {"batch": 1, "count": 4}, **spec_over}
    return classifier_model(folder / "model.onnx", w), classifier_model(folder / "harmed.onnx", w, zero_w1=True), write_eval(folder, spec)


# ------------------------------------------------------------------ retrieval (text)


def word_tokenizer(path: Path, words: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    return path


def encoder_model(path: Path, vocab: int, dim: int = 32, zero_w: bool = False, seed: int = 0) -> Path:
    """input_ids, attention_mask -> token embeddings [b, s, dim] @ W (token-level output; pooling is the eval's)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((vocab, dim))
    w = np.zeros((dim, dim)) if zero_w else np.eye(dim) + 0.05 * rng.standard_normal((dim, dim))
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["e"], axis=0),
             helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["mf", "ax"], ["m3"]),
             helper.make_node("Mul", ["e", "m3"], ["em"]),
             helper.make_node("MatMul", ["em", "w"], ["hidden"])]
    return _save(nodes, [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
                         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
                 [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", dim])],
                 {"emb": emb, "w": w, "ax": np.array([2], dtype=np.int64)}, path)


def retrieval_set(folder: Path, n_topics: int = 120, seed: int = 0, **spec_over) -> tuple[Path, Path, Path]:
    """One document and one query per topic; each topic has its own 3 words, shared by its query and document."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(3 * n_topics)] + [f"n{i}" for i in range(40)]
    docs, queries, qrels = [], [], []
    for t in range(n_topics):
        topic = [f"w{3 * t + j}" for j in range(3)]
        noise = [f"n{i}" for i in rng.integers(0, 40, 6)]
        docs.append({"doc_id": f"d{t}", "text": " ".join(topic + noise[:4])})
        queries.append({"query_id": f"q{t}", "text": " ".join(topic[:2] + noise[4:])})
        qrels.append({"query_id": f"q{t}", "doc_id": f"d{t}"})
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("queries", queries), ("documents", docs), ("qrels", qrels)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    word_tokenizer(folder / "tokenizer", words)
    vocab = len(words) + 2
    spec = {"task": "retrieval", "retrieval": {"queries": "queries.jsonl", "documents": "documents.jsonl", "qrels": "qrels.jsonl"},
            "text": {"tokenizer": "tokenizer", "max_len": 16, "pooling": "mean"}, "eval_batch": 32,
            "split": {"rule": "hash", "test_fraction": 0.5}, "timing": {"batch": 1, "count": 4}, **spec_over}
    return encoder_model(folder / "model.onnx", vocab), encoder_model(folder / "harmed.onnx", vocab, zero_w=True), write_eval(folder, spec)
