"""Task metrics with ground truth, and paired 95% intervals for them and their delta vs fp32.

Every figure a zoo model reports is computed per test example from the variant's own outputs,
so a variant and its fp32 baseline, scored on the same examples, can be compared *paired*:

* mean-decomposable metrics (recall@10, MRR, nDCG@10, logloss, accuracy): a paired percentile
  bootstrap over test examples (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993,
  ch. 13; the paired form resamples the same example indices for both models);
* AUC: DeLong, DeLong & Clarke-Pearson (1988), "Comparing the areas under two or more correlated
  ROC curves", Biometrics 44(3), with the fast midrank algorithm of Sun & Xu (2014), IEEE SPL 21(11),
  when the examples are independent;
* examples that come in clusters (a CTR test period: 20,000 ratings from ~300 users): a cluster
  bootstrap that resamples whole users with replacement and recomputes the metric (AUC, mean logloss)
  with each row weighted by how often its user was drawn; paired deltas use the same draws for both
  models (Field & Welsh (2007), "Bootstrapping clustered data", JRSS B 69(3));
* any other metric (macro-F1): the same paired bootstrap around a metric function.

Outputs that are NaN or infinite are an error with the reason (``NonFiniteOutputError``), never a score.
Ties count against the relevant item everywhere a rank is taken (retrieval ranks, nDCG order); AUC
counts a tied positive-negative pair as half, its standard definition, which does not depend on row order.

Accuracy keys (``Variant.accuracy`` stays a flat ``dict[str, float]``): for a metric ``m``,
``m``, ``m_lo``, ``m_hi`` (its 95% interval) and ``delta_m``, ``delta_m_lo``, ``delta_m_hi``
(variant minus fp32, same examples). ``point_metrics`` strips the interval keys for tables.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

CONFIDENCE = 0.95
N_BOOT = 1000
# Fidelity metrics compare a variant with its fp32 outputs; anything else is a task metric with ground truth.
FIDELITY_METRICS = frozenset({"cosine", "top10_overlap", "fidelity_cosine", "max_abs_diff", "mse_to_teacher", "agreement"})
LOWER_IS_BETTER = frozenset({"logloss", "max_abs_diff", "mse_to_teacher"})
INTERVAL_SUFFIXES = ("_lo", "_hi")


def metric_kind(name: str) -> str:
    """'fidelity' or 'task'."""
    return "fidelity" if name in FIDELITY_METRICS else "task"


def point_metrics(accuracy: Mapping[str, float]) -> dict[str, float]:
    """The point values only: no ``_lo``/``_hi`` bounds and no ``delta_`` keys (for tables)."""
    return {k: v for k, v in accuracy.items() if not k.startswith("delta_") and not k.endswith(INTERVAL_SUFFIXES)}


def interval_keys(prefix: str, point: float, lo: float, hi: float) -> dict[str, float]:
    return {prefix: float(point), f"{prefix}_lo": float(lo), f"{prefix}_hi": float(hi)}


class NonFiniteOutputError(ValueError):
    """A model's outputs hold NaN or infinite values: no metric is computed from them."""


def check_finite(values: np.ndarray, what: str = "outputs") -> np.ndarray:
    """``values`` as float64, or NonFiniteOutputError naming how many are NaN / infinite."""
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v)
    if bad.any():
        n_nan = int(np.isnan(v).sum())
        raise NonFiniteOutputError(f"{what}: {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values of {v.size}; "
                                   "the variant's outputs are broken, no score is computed from them")
    return v


# ------------------------------------------------------------------ bootstrap


def _boot_indices(n: int, n_boot: int, seed: int, chunk: int = 200):
    rng = np.random.default_rng(seed)
    for s in range(0, n_boot, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_boot - s), n))


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo, hi = np.quantile(values, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_mean(x: np.ndarray, base: np.ndarray | None = None, n_boot: int = N_BOOT, seed: int = 0,
                   confidence: float = CONFIDENCE) -> dict[str, tuple[float, float, float]]:
    """Percentile intervals of mean(x) and, when ``base`` (same examples) is given, of mean(x - base)."""
    x = np.asarray(x, dtype=np.float64)
    arrays = {"value": x}
    if base is not None:
        base = np.asarray(base, dtype=np.float64)
        if base.shape != x.shape:
            raise ValueError(f"paired bootstrap: {x.shape} values vs {base.shape} baseline values")
        arrays["delta"] = x - base
    draws = {k: [] for k in arrays}
    for idx in _boot_indices(len(x), n_boot, seed):
        for k, a in arrays.items():
            draws[k].append(a[idx].mean(axis=1))
    return {k: (float(a.mean()), *_percentile(np.concatenate(draws[k]), confidence)) for k, a in arrays.items()}


LCB = "_lcb95"  # suffix of a one-sided 95% lower confidence bound in a fidelity record


def lower_bound_mean(x: np.ndarray, confidence: float = CONFIDENCE, n_boot: int = 2000, seed: int = 0) -> float:
    """One-sided lower confidence bound of mean(x): the (1 - confidence) percentile of the bootstrap
    means over examples (Efron & Tibshirani 1993, ch. 13). Constant ``x`` gives its value exactly."""
    x = check_finite(x, "per-example values")
    if len(x) == 0:
        raise ValueError("a lower bound of no values")
    if np.all(x == x[0]):
        return float(x[0])
    means = np.concatenate([x[idx].mean(axis=1) for idx in _boot_indices(len(x), n_boot, seed)])
    return float(np.quantile(means, 1 - confidence))


def goal_holds(record: Mapping[str, float], goals: Mapping[str, float]) -> bool:
    """A fidelity goal with a margin: every metric's one-sided 95% lower bound (``{m}_lcb95``) is at
    least its line. A record without the bound cannot show the margin and never meets the goal; a mean
    exactly at the line with any spread has its bound below it and is refused."""
    return all(record.get(f"{m}{LCB}", -np.inf) >= line for m, line in goals.items())


def bootstrap_metric(fn: Callable[..., float], arrays: Sequence[np.ndarray], base_arrays: Sequence[np.ndarray] | None = None,
                     n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE) -> dict[str, tuple[float, float, float]]:
    """Percentile intervals of ``fn(*arrays)`` (any metric of per-example arrays, e.g. macro-F1 of
    (labels, predictions)) and of ``fn(*arrays) - fn(*base_arrays)`` resampled on the same examples."""
    n = len(arrays[0])
    value, delta = [], []
    for idx in _boot_indices(n, n_boot, seed, chunk=50):
        for row in idx:
            v = fn(*(a[row] for a in arrays))
            value.append(v)
            if base_arrays is not None:
                delta.append(v - fn(*(a[row] for a in base_arrays)))
    point = fn(*arrays)
    out = {"value": (float(point), *_percentile(np.asarray(value), confidence))}
    if base_arrays is not None:
        out["delta"] = (float(point - fn(*base_arrays)), *_percentile(np.asarray(delta), confidence))
    return out


def with_intervals(name: str, result: Mapping[str, tuple[float, float, float]]) -> dict[str, float]:
    """{'value': (p, lo, hi), 'delta': ...} -> the flat accuracy keys of metric ``name``."""
    out = interval_keys(name, *result["value"])
    if "delta" in result:
        out.update(interval_keys(f"delta_{name}", *result["delta"]))
    return out


# ------------------------------------------------------------------ cluster bootstrap


def cluster_weights(clusters: np.ndarray, n_boot: int = N_BOOT, seed: int = 0):
    """Row weights of each cluster-bootstrap draw: clusters (e.g. users) drawn with replacement,
    each row weighted by how many times its cluster was drawn."""
    _, inverse = np.unique(np.asarray(clusters), return_inverse=True)
    n = int(inverse.max()) + 1
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.bincount(rng.integers(0, n, size=n), minlength=n)[inverse].astype(np.float64)


def weighted_auc_fn(labels: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], float]:
    """w -> AUC with row weights w (ties between a positive and a negative count half)."""
    y = np.asarray(labels).astype(bool)
    _, inv = np.unique(check_finite(scores, "scores"), return_inverse=True)
    k = int(inv.max()) + 1

    def auc(w: np.ndarray) -> float:
        pos = np.bincount(inv, weights=w * y, minlength=k)
        neg = np.bincount(inv, weights=w * ~y, minlength=k)
        below = np.cumsum(neg) - neg
        denom = pos.sum() * neg.sum()
        return float(np.sum(pos * (below + 0.5 * neg)) / denom) if denom > 0 else float("nan")
    return auc


def weighted_mean_fn(x: np.ndarray) -> Callable[[np.ndarray], float]:
    x = np.asarray(x, dtype=np.float64)
    return lambda w: float(np.sum(w * x) / np.sum(w))


def cluster_bootstrap(stat: Callable[[np.ndarray], float], clusters: np.ndarray, base_stat: Callable[[np.ndarray], float] | None = None,
                      n_boot: int = N_BOOT, seed: int = 0, confidence: float = CONFIDENCE) -> dict[str, tuple[float, float, float]]:
    """Percentile intervals of ``stat(weights)`` and of ``stat - base_stat`` over cluster-bootstrap draws
    (the same draws for both: paired). The point values use unit weights."""
    ones = np.ones(len(clusters))
    value, delta = [], []
    for w in cluster_weights(clusters, n_boot, seed):
        v = stat(w)
        value.append(v)
        if base_stat is not None:
            delta.append(v - base_stat(w))
    point = stat(ones)
    out = {"value": (point, *_percentile(np.asarray(value), confidence))}
    if base_stat is not None:
        out["delta"] = (point - base_stat(ones), *_percentile(np.asarray(delta), confidence))
    return out


def cluster_auc(labels, scores, clusters, base_scores=None, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """AUC [95% cluster-bootstrap interval] and, with ``base_scores``, the paired delta."""
    base = None if base_scores is None else weighted_auc_fn(labels, base_scores)
    return cluster_bootstrap(weighted_auc_fn(labels, scores), clusters, base, n_boot, seed)


def cluster_mean(x, clusters, base=None, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Mean of per-row values [95% cluster-bootstrap interval] and, with ``base``, the paired delta."""
    return cluster_bootstrap(weighted_mean_fn(x), clusters, None if base is None else weighted_mean_fn(base), n_boot, seed)


# ------------------------------------------------------------------ DeLong AUC


def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    t = np.zeros(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n, dtype=np.float64)
    out[order] = t
    return out


def delong(labels: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each score vector on the same labels, and their DeLong covariance matrix."""
    y = np.asarray(labels).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("AUC needs both classes")
    aucs, v01, v10 = [], [], []
    for s in scores:
        s = check_finite(s, "scores")
        pos, neg = s[y], s[~y]
        tx, ty, tz = _midrank(pos), _midrank(neg), _midrank(np.concatenate([pos, neg]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v01.append((tz[:m] - tx) / n)  # structural components of the positives
        v10.append(1.0 - (tz[m:] - ty) / m)  # ... and of the negatives
    s01, s10 = np.cov(np.asarray(v01)), np.cov(np.asarray(v10))
    cov = np.atleast_2d(s01) / m + np.atleast_2d(s10) / n
    return np.asarray(aucs), cov


def delong_intervals(labels: np.ndarray, scores: np.ndarray, base_scores: np.ndarray | None = None,
                     confidence: float = CONFIDENCE) -> dict[str, tuple[float, float, float]]:
    """Normal-theory DeLong intervals of the AUC and of AUC(scores) - AUC(base_scores)."""
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    if base_scores is None:
        auc, cov = delong(labels, scores)
        se = float(np.sqrt(cov[0, 0]))
        return {"value": (float(auc[0]), float(auc[0]) - z * se, float(auc[0]) + z * se)}
    auc, cov = delong(labels, scores, base_scores)
    se = float(np.sqrt(cov[0, 0]))
    d = float(auc[0] - auc[1])
    se_d = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    return {"value": (float(auc[0]), float(auc[0]) - z * se, float(auc[0]) + z * se), "delta": (d, d - z * se_d, d + z * se_d)}


# ------------------------------------------------------------------ per-example task metrics


def retrieval_per_query(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> dict[str, np.ndarray]:
    """One relevant document per query: per-query recall@k, reciprocal rank and nDCG@k.

    ``scores`` is [queries, docs]; ``relevant[q]`` is the column of query q's relevant document.
    Ties count against the relevant document (its rank is 1 + the number of docs scoring >= it, minus itself).
    """
    scores = check_finite(scores, "retrieval scores")
    rel = scores[np.arange(len(scores)), relevant]
    rank = (scores >= rel[:, None]).sum(axis=1) - 1  # 0-based rank of the relevant document
    return {
        f"recall@{k}": (rank < k).astype(np.float64),
        "mrr": 1.0 / (rank + 1.0),
        f"ndcg@{k}": np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0),
    }


def ndcg_per_group(groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """nDCG@k of each group (e.g. each test user's rated items, binary relevance), and the group ids.

    Groups without any relevant item are left out (their nDCG is undefined). Ties are pessimistic: among
    items with the same score the non-relevant ones come first, so row order never matters.
    Järvelin & Kekäläinen (2002), "Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4).
    """
    groups, labels, scores = np.asarray(groups), np.asarray(labels, dtype=np.float64), check_finite(scores, "scores")
    order = np.lexsort((labels, -scores, groups))  # by group, then by descending score, then relevant last
    g, y = groups[order], labels[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    ends = np.r_[starts[1:], len(g)]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    values, ids = [], []
    for s, e in zip(starts, ends):
        rel = y[s:e]
        if rel.sum() == 0:
            continue
        top = rel[:k]
        ideal = np.sort(rel)[::-1][:k]
        values.append(float(top @ discount[: len(top)]) / float(ideal @ discount[: len(ideal)]))
        ids.append(g[s])
    return np.asarray(values), np.asarray(ids)


def pessimistic_argmax(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predicted class per row; when the true class ties the top logit with another class, the other
    class (a tie never counts as correct, whatever the class order)."""
    logits = check_finite(logits, "logits")
    labels = np.asarray(labels)
    pred = logits.argmax(1)
    top = logits.max(1)
    rows = np.arange(len(labels))
    others = logits.copy()
    others[rows, labels] = -np.inf
    tied = (logits[rows, labels] == top) & (others.max(1) == top)
    return np.where(tied, others.argmax(1), pred)


def logloss_per_example(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    y = np.asarray(labels).astype(bool)
    p = np.clip(check_finite(probs, "probabilities"), 1e-7, 1 - 1e-7)
    return -np.where(y, np.log(p), np.log1p(-p))


def macro_f1(labels: np.ndarray, preds: np.ndarray, classes: Sequence[int] | None = None) -> float:
    """Unweighted mean of per-class F1 (sklearn's ``f1_score(average="macro", zero_division=0)``).

    ``classes`` fixes the class set (e.g. the classes of the whole test split): a bootstrap resample
    that happens to hold no example of a rare class then scores F1 0 for it instead of dropping it,
    which would inflate the resampled values. Without it: the classes in labels or predictions.
    """
    labels, preds = np.asarray(labels), np.asarray(preds)
    classes = np.asarray(classes) if classes is not None else np.union1d(labels, preds)
    f1 = []
    for c in classes:
        tp = np.sum((preds == c) & (labels == c))
        fp = np.sum((preds == c) & (labels != c))
        fn = np.sum((preds != c) & (labels == c))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1)) if len(f1) else 0.0


def accuracy_line(accuracy: Mapping[str, float], task: str | None = None, fidelity: str | None = None) -> str:
    """One compact phrase for a build log: the task metric with its interval (and its paired delta vs
    fp32 when recorded) and the fidelity metric, e.g. 'recall@10 0.912 [0.89, 0.93] (Δ -0.004 [-0.01, +0.002]),
    top10_overlap 0.97'. ``task``/``fidelity``: the model's own (else the first of each kind recorded)."""
    points = [k for k in accuracy if not k.startswith("delta_") and not k.endswith(INTERVAL_SUFFIXES)]
    task = task if task in points else next((k for k in points if metric_kind(k) == "task"), None)
    fidelity = fidelity if fidelity in points else next((k for k in points if metric_kind(k) == "fidelity"), None)
    parts = []
    for k in (task, fidelity):
        if k is None:
            continue
        text = f"{k} {accuracy[k]:.4g}"
        if f"{k}_lo" in accuracy and f"{k}_hi" in accuracy:
            text += f" [{accuracy[f'{k}_lo']:.4g}, {accuracy[f'{k}_hi']:.4g}]"
        if k == task and f"delta_{k}" in accuracy:
            text += f" (Δ vs fp32 {accuracy[f'delta_{k}']:+.4f}"
            if f"delta_{k}_lo" in accuracy and f"delta_{k}_hi" in accuracy:
                text += f" [{accuracy[f'delta_{k}_lo']:+.4f}, {accuracy[f'delta_{k}_hi']:+.4f}]"
            text += ")"
        parts.append(text)
    return ", ".join(parts) or "no accuracy recorded"
