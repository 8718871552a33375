"""Export three zoo models and their held-out data the way a user would hold them: per task shape a folder
with model.onnx, a tokenizer folder (text models), the rows and an eval.yaml (docs/your-data.md).

    ODBENCH_CACHE=/work/cache HF_HUB_OFFLINE=1 .venv/bin/python scripts/export_user_examples.py OUT [--n N]

* OUT/ranking: the zoo CTR ranker (ctr-ml100k) + its MovieLens-100k *test-period* ratings (never trained on),
  split per user by time (each user's latest half is the test part); timing: 50 candidates of one user.
* OUT/retrieval: the zoo MiniLM encoder + N held-out (title, review) pairs of the Women's Clothing reviews:
  a title is a query, its own review the relevant document; split by a hash of the query id.
* OUT/classification: the zoo review router (reviews-dept-clf) + N of its *test* reviews with their
  department; split by a hash of the review id.

Only rows the zoo models never trained or tuned on are exported, so each example's test part is honest.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from odbench.models.base import cache_dir
from odbench.models.classifier import ClassifierModel
from odbench.models.ctr import CtrModel
from odbench.models.data import movielens_100k
from odbench.models.encoder import EncoderModel, model_dir


def _copy_tokenizer(dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(model_dir() / name, dst / name)


def _write(folder: Path, spec: dict, model_path: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, folder / "model.onnx")
    (folder / "eval.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def ranking(out: Path, cache: Path, n_users: int) -> None:
    model = CtrModel()
    variant = model.build(cache)
    d = model.data
    ratings = movielens_100k()[0].sort_values("timestamp", kind="stable").reset_index(drop=True)
    test = ratings.iloc[d.row_ids["test"]].reset_index(drop=True)
    x = d.test
    df = pd.DataFrame({"user_id": x["user_id"], "item_id": x["item_id"], "clicked": d.test_y.astype(int),
                       "timestamp": test["timestamp"].to_numpy()})
    for i, name in enumerate(("gender", "occupation", "age_bucket")):
        df[name] = x["cat"][:, i]
    dense = [f"dense_{i}" for i in range(x["dense"].shape[1])]
    df = pd.concat([df, pd.DataFrame(x["dense"], columns=dense)], axis=1)
    users = df["user_id"].value_counts()
    keep = users[users >= 20].index.sort_values()[:n_users]  # users with enough ratings to rank
    df = df[df["user_id"].isin(keep)].reset_index(drop=True)
    (out / "ranking").mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "ranking" / "ratings.parquet")
    spec = {"task": "ranking", "data": "ratings.parquet",
            "columns": {"user": "user_id", "item": "item_id", "label": "clicked", "time": "timestamp"},
            "inputs": {"user_id": "user_id", "item_id": "item_id", "cat": ["gender", "occupation", "age_bucket"], "dense": dense},
            "output": "score", "split": {"rule": "time", "test_fraction": 0.5},
            "timing": {"candidates": 50, "count": 16}}
    _write(out / "ranking", spec, variant.path)


def retrieval(out: Path, cache: Path, n: int) -> None:
    model = EncoderModel()
    variant = model.build(cache)
    d = model.data
    folder = out / "retrieval"
    folder.mkdir(parents=True, exist_ok=True)
    ids = d.ids["evaluation"][:n]
    queries = [{"query_id": f"q{r}", "text": q} for r, q in zip(ids, d.queries[:n])]
    docs = [{"doc_id": f"r{r}", "text": t} for r, t in zip(ids, d.corpus[:n])]
    qrels = [{"query_id": f"q{r}", "doc_id": f"r{r}"} for r in ids]
    for name, rows in (("queries", queries), ("documents", docs), ("qrels", qrels)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _copy_tokenizer(folder / "tokenizer")
    spec = {"task": "retrieval", "retrieval": {"queries": "queries.jsonl", "documents": "documents.jsonl", "qrels": "qrels.jsonl"},
            "text": {"tokenizer": "tokenizer", "max_len": 128, "pooling": "pooled"}, "output": "embedding",
            "split": {"rule": "hash", "test_fraction": 0.5, "seed": 0}, "timing": {"batch": 1, "count": 16}}
    _write(folder, spec, variant.path)


def classification(out: Path, cache: Path, n: int) -> None:
    model = ClassifierModel()
    variant = model.build(cache)
    d = model.data
    folder = out / "classification"
    folder.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({"review_id": d.ids["test"][:n], "text": d.texts["test"][:n],
                       "department": np.asarray(d.classes)[d.labels["test"][:n]]})
    df.to_csv(folder / "reviews.csv", index=False)
    _copy_tokenizer(folder / "tokenizer")
    spec = {"task": "classification", "data": "reviews.csv", "columns": {"id": "review_id", "text": "text", "label": "department"},
            "text": {"tokenizer": "tokenizer", "max_len": 128}, "output": "logits", "classes": list(d.classes),
            "split": {"rule": "hash", "test_fraction": 0.5, "seed": 0}, "timing": {"batch": 1, "count": 16}}
    _write(folder, spec, variant.path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=400, help="pairs (retrieval) and reviews (classification) to export")
    p.add_argument("--users", type=int, default=100, help="test-period users to export (ranking)")
    args = p.parse_args()
    cache = cache_dir()
    ranking(args.out, cache, args.users)
    retrieval(args.out, cache, args.n)
    classification(args.out, cache, args.n)
    print(f"wrote {args.out}/ranking, {args.out}/retrieval, {args.out}/classification")


if __name__ == "__main__":
    main()
