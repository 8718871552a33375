"""Simple baselines for the CTR ranker on the same time split, so a reader can judge its AUC:

* item popularity: score = how many training-period ratings the item got (no personalisation);
* logistic regression on the same features: one-hot user and item ids, the three user categoricals,
  and the 23 dense features (scikit-learn's ``LogisticRegression``, L2, lbfgs).

Both baselines and the ranker (refit on fit+validation, models/ctr.py) learn from the same rows: the
whole training period. Intervals resample test users (cluster bootstrap, models/metrics.py), since a
user's ratings are not independent; the ranker's deltas are paired on the same user draws.

Run: ``odbench baselines`` (prints AUC [95% user-level interval] per baseline, on the test period,
and, when the fp32 ranker is built in the cache, the ranker's paired AUC delta against each baseline).
"""
from __future__ import annotations

import numpy as np

from odbench.models import metrics as M
from odbench.models.ctr import FP32_SCORES, CtrConfig, CtrData, CtrModel


def popularity_scores(data: CtrData) -> np.ndarray:
    fit, _ = data.split("fit")
    counts = dict(zip(*np.unique(np.concatenate([fit["item_id"], data.split("validation")[0]["item_id"]]), return_counts=True)))
    return np.array([counts.get(int(i), 0) for i in data.test["item_id"]], dtype=np.float64)


def _design(data: CtrData, feats: dict[str, np.ndarray]):
    from scipy import sparse

    n = len(feats["user_id"])
    blocks = []
    for col, size in (("user_id", 944), ("item_id", 1683)):
        blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), feats[col])), shape=(n, size)))
    for k, size in enumerate((2, 21, 7)):
        blocks.append(sparse.csr_matrix((np.ones(n), (np.arange(n), feats["cat"][:, k])), shape=(n, size)))
    blocks.append(sparse.csr_matrix(feats["dense"]))
    return sparse.hstack(blocks).tocsr()


def logistic_scores(data: CtrData, c: float = 1.0) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit(_design(data, data.train), data.train_y)
    return lr.predict_proba(_design(data, data.test))[:, 1]


def baselines(cfg: CtrConfig | None = None, ranker: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Each baseline's AUC and per-user nDCG@10 with user-level intervals; with the ranker's test scores,
    also ``ranker_minus_auc`` and ``ranker_minus_ndcg@10`` (+ ``_lo``/``_hi``): the ranker's paired deltas
    over that baseline, and ``ranker`` itself under the key "ranker"."""
    data = CtrData(cfg or CtrConfig())
    users = data.test["user_id"]
    out = {}
    candidates = [("item popularity", popularity_scores(data)), ("logistic regression", logistic_scores(data))]
    if ranker is not None:
        candidates.append(("ranker", ranker))
        ranker_ndcg = M.ndcg_per_group(users, data.test_y, ranker)[0]
    for name, scores in candidates:
        out[name] = M.with_intervals("auc", M.cluster_auc(data.test_y, scores, users))
        ndcg = M.ndcg_per_group(users, data.test_y, scores)[0]
        out[name].update(M.with_intervals("ndcg@10", M.bootstrap_mean(ndcg, seed=2)))
        if ranker is not None and name != "ranker":
            out[name].update(M.interval_keys("ranker_minus_auc", *M.cluster_auc(data.test_y, ranker, users, scores)["delta"]))
            out[name].update(M.interval_keys("ranker_minus_ndcg@10", *M.bootstrap_mean(ranker_ndcg, ndcg, seed=2)["delta"]))
    return out


def baselines_text(cache) -> str:
    """`odbench baselines`: AUC and nDCG@10 [95% CI] per baseline, and the ranker's lead when it is built."""
    model = CtrModel()
    path = model._dir(cache) / FP32_SCORES
    ranker = np.load(path) if path.exists() else None
    lines = []
    for name, acc in baselines(model.config, ranker).items():
        line = (f"{name:20s} AUC {acc['auc']:.4f} [{acc['auc_lo']:.4f}, {acc['auc_hi']:.4f}]  "
                f"nDCG@10 {acc['ndcg@10']:.4f} [{acc['ndcg@10_lo']:.4f}, {acc['ndcg@10_hi']:.4f}]")
        if "ranker_minus_auc" in acc:
            d = {k: acc[f"ranker_minus_{k}"] for k in ("auc", "ndcg@10")}
            lo = {k: acc[f"ranker_minus_{k}_lo"] for k in d}
            hi = {k: acc[f"ranker_minus_{k}_hi"] for k in d}
            names = {"auc": "AUC", "ndcg@10": "nDCG@10"}
            line += "  ranker - this: " + ", ".join(f"{names[k]} {d[k]:+.4f} [{lo[k]:+.4f}, {hi[k]:+.4f}]" for k in d)
        lines.append(line)
    return "\n".join(lines)
