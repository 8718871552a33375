"""Paired intervals and per-example task metrics, checked on seeded simulations with a known truth."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from odbench.models import metrics as M
from odbench.models.base import auc_logloss


def test_paired_bootstrap_covers_the_true_delta():
    """At a nominal 95%, the paired interval of mean(variant - base) covers the true delta >= 90% of the time."""
    rng = np.random.default_rng(0)
    # The variant flips the fp32 model's per-example hit on 10% of examples (E = 0.1 * (0.4 - 0.6)) and
    # misses on another 1% (E = -0.01 * 0.6): a small, real loss like a mild int8 one.
    truth, hits, reps = 0.1 * (0.4 - 0.6) - 0.01 * 0.6, 0, 200
    for rep in range(reps):
        base = (rng.random(300) < 0.6).astype(float)  # per-example hit (e.g. recall@10) of the fp32 model
        u = rng.random(300)
        variant = np.where(u < 0.10, 1 - base, base)
        variant = np.where((u > 0.90) & (u < 0.91), 0.0, variant)
        lo, hi = M.bootstrap_mean(variant, base, n_boot=400, seed=rep)["delta"][1:]
        hits += lo <= truth <= hi
    assert hits / reps >= 0.90, f"coverage {hits / reps:.2f}"


def test_delong_interval_covers_the_true_auc_delta():
    """Binormal scores: AUC = Phi(mu / sqrt(var_pos + var_neg)); the variant adds noise to the baseline's scores."""
    rng = np.random.default_rng(1)
    truth = sps.norm.cdf(1 / np.sqrt(2.5)) - sps.norm.cdf(1 / np.sqrt(2.0))
    hits, reps = 0, 300
    for _ in range(reps):
        y = rng.random(400) < 0.5
        base = y * 1.0 + rng.standard_normal(400)
        variant = base + 0.5 * rng.standard_normal(400)
        lo, hi = M.delong_intervals(y, variant, base)["delta"][1:]
        hits += lo <= truth <= hi
    assert hits / reps >= 0.90, f"coverage {hits / reps:.2f}"


def test_delong_auc_matches_the_rank_auc_and_an_identical_model_has_zero_delta():
    rng = np.random.default_rng(2)
    y = rng.random(500) < 0.3
    s = y + rng.standard_normal(500)
    out = M.delong_intervals(y, s, s)
    assert out["value"][0] == pytest.approx(auc_logloss(y, 1 / (1 + np.exp(-s)))["auc"])
    assert out["value"][1] < out["value"][0] < out["value"][2]
    assert out["delta"] == pytest.approx((0.0, 0.0, 0.0))


def test_bootstrap_metric_agrees_with_the_mean_bootstrap_for_a_mean():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 400)
    a = np.where(rng.random(400) < 0.7, labels, (labels + 1) % 3)
    b = np.where(rng.random(400) < 0.6, labels, (labels + 2) % 3)
    acc = lambda y, p: float(np.mean(y == p))  # noqa: E731
    generic = M.bootstrap_metric(acc, (labels, a), (labels, b), n_boot=300)
    direct = M.bootstrap_mean((labels == a).astype(float), (labels == b).astype(float), n_boot=300)
    for key in ("value", "delta"):
        assert generic[key][0] == pytest.approx(direct[key][0])
        assert generic[key][1] == pytest.approx(direct[key][1], abs=0.02) and generic[key][2] == pytest.approx(direct[key][2], abs=0.02)


def test_retrieval_metrics_by_hand():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.5, 0.5, 0.1]])
    out = M.retrieval_per_query(scores, np.array([0, 0, 1]), k=2)
    np.testing.assert_allclose(out["recall@2"], [1, 0, 1])  # ranks 0, 2, and 1 (a tie counts against it)
    np.testing.assert_allclose(out["mrr"], [1, 1 / 3, 1 / 2])
    np.testing.assert_allclose(out["ndcg@2"], [1, 0, 1 / np.log2(3)])


def test_ndcg_per_group_by_hand():
    groups = np.array([1, 1, 1, 2, 2, 3])
    labels = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([0.9, 0.5, 0.1, 0.2, 0.3, 0.4])
    values, ids = M.ndcg_per_group(groups, labels, scores, k=10)
    assert list(ids) == [1, 2]  # user 3 has no relevant item: left out
    np.testing.assert_allclose(values, [1 / np.log2(3), 1.0])


def test_macro_f1_and_key_helpers():
    assert M.macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])) == 1.0
    assert M.macro_f1(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])) == pytest.approx((6 / 7 + 0) / 2)
    # a fixed class set: a class absent from labels and predictions scores 0, it is not dropped
    assert M.macro_f1(np.array([0, 0, 1]), np.array([0, 0, 1]), classes=[0, 1, 2]) == pytest.approx(2 / 3)
    acc = {**M.with_intervals("auc", {"value": (0.7, 0.69, 0.71), "delta": (0.0, -0.01, 0.01)}), "cosine": 1.0}
    assert M.point_metrics(acc) == {"auc": 0.7, "cosine": 1.0}
    assert M.metric_kind("cosine") == "fidelity" and M.metric_kind("auc") == "task"


# ------------------------------------------------------------------ issue 20: errors, ties, clusters


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_outputs_are_an_error_never_a_score(bad):
    scores = np.random.default_rng(0).standard_normal((5, 5))
    scores[2, 2] = bad  # query 2's relevant document: NaN once ranked it first (recall 1, MRR inf)
    with pytest.raises(M.NonFiniteOutputError, match="NaN|infinite"):
        M.retrieval_per_query(scores, np.arange(5))
    with pytest.raises(M.NonFiniteOutputError):
        M.ndcg_per_group(np.zeros(5), np.array([1, 0, 0, 0, 0]), scores[2])
    with pytest.raises(M.NonFiniteOutputError):
        M.logloss_per_example(np.array([1, 0, 1, 0, 1]), np.where(np.isfinite(scores[2]), 0.5, bad))
    with pytest.raises(M.NonFiniteOutputError):
        M.cluster_auc(np.array([1, 0, 1, 0, 1]), scores[2], np.arange(5))
    with pytest.raises(M.NonFiniteOutputError):
        M.pessimistic_argmax(scores, np.arange(5))


def test_an_all_nan_variant_is_an_error_not_perfect_retrieval():
    with pytest.raises(M.NonFiniteOutputError, match="25 NaN"):
        M.retrieval_per_query(np.full((5, 5), np.nan), np.arange(5))


def test_ndcg_ties_are_pessimistic_whatever_the_row_order():
    """An all-tied group scores the same (the worst order) whether its relevant item comes first or last."""
    first = M.ndcg_per_group(np.zeros(4), np.array([1, 0, 0, 0]), np.zeros(4))[0]
    last = M.ndcg_per_group(np.zeros(4), np.array([0, 0, 0, 1]), np.zeros(4))[0]
    worst = 1.0 / np.log2(4 + 1)  # the relevant item ranked 4th of 4
    assert first[0] == pytest.approx(worst) and last[0] == pytest.approx(worst)


def test_a_tied_true_class_is_never_counted_correct():
    logits = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 0.0, 0.0]])
    labels = np.array([0, 2, 0])
    pred = M.pessimistic_argmax(logits, labels)
    assert pred[0] != 0 and pred[1] != 2 and pred[2] == 0


def test_cluster_bootstrap_auc_matches_the_point_and_widens_with_clustered_rows():
    """Users whose ratings share one user-level effect: resampling users gives a wider AUC interval than
    DeLong's, which treats every rating as independent; with one row per user the two agree."""
    rng = np.random.default_rng(0)
    n_users, per = 60, 40
    users = np.repeat(np.arange(n_users), per)
    effect = rng.standard_normal(n_users)[users] * 1.5
    y = (effect + rng.standard_normal(len(users)) > 0).astype(float)
    s = effect + rng.standard_normal(len(users)) * 2  # the score knows the user's effect
    clustered = M.cluster_auc(y, s, users, seed=1)["value"]
    delong = M.delong_intervals(y, s)["value"]
    assert clustered[0] == pytest.approx(delong[0])
    assert clustered[2] - clustered[1] > 1.5 * (delong[2] - delong[1])
    independent = M.cluster_auc(y, s, np.arange(len(y)), seed=1)["value"]
    assert independent[2] - independent[1] == pytest.approx(delong[2] - delong[1], rel=0.25)


def test_cluster_bootstrap_paired_delta_is_exact_zero_for_the_same_scores_and_pairs_draws():
    rng = np.random.default_rng(2)
    users = rng.integers(0, 30, 600)
    y = rng.random(600) < 0.4
    s = y + rng.standard_normal(600)
    same = M.cluster_auc(y, s, users, s)["delta"]
    assert same == (0.0, 0.0, 0.0)
    loss = M.logloss_per_example(y, 1 / (1 + np.exp(-s)))
    r = M.cluster_mean(loss, users, loss * 0 + loss.mean())
    assert r["value"][1] <= r["value"][0] <= r["value"][2]
    assert r["delta"][0] == pytest.approx(0.0, abs=1e-12)


def test_accuracy_line_is_the_task_metric_with_intervals_and_fidelity():
    from odbench.models.metrics import accuracy_line

    acc = {"mrr": 0.3, "recall@10": 0.18, "recall@10_lo": 0.16, "recall@10_hi": 0.2, "delta_recall@10": -0.004,
           "delta_recall@10_lo": -0.01, "delta_recall@10_hi": 0.002, "cosine": 0.98, "top10_overlap": 0.9}
    line = accuracy_line(acc, "recall@10", "top10_overlap")
    assert line == "recall@10 0.18 [0.16, 0.2] (Δ vs fp32 -0.0040 [-0.0100, +0.0020]), top10_overlap 0.9"
    assert accuracy_line({}) == "no accuracy recorded"


GOAL = {"top10_overlap": 0.95, "cosine": 0.995}


def _record(top: np.ndarray, cos: np.ndarray) -> dict:
    return {"top10_overlap": float(top.mean()), "top10_overlap_lcb95": M.lower_bound_mean(top),
            "cosine": float(cos.mean()), "cosine_lcb95": M.lower_bound_mean(cos)}


def test_a_tuning_point_exactly_at_the_line_is_refused_and_one_clear_of_it_is_kept():
    rng = np.random.default_rng(0)
    cos = 0.999 + rng.uniform(-0.001, 0.001, 1500)  # cosine well clear of 0.995
    at_line = rng.permutation(np.repeat([0.9, 1.0], 250))  # 500 titles, mean exactly 0.95
    rec = _record(at_line, cos)
    assert rec["top10_overlap"] == pytest.approx(0.95) and rec["top10_overlap"] >= 0.95 - 1e-12
    assert rec["top10_overlap_lcb95"] < 0.95 and not M.goal_holds(rec, GOAL)
    clear = rng.permutation(np.repeat([0.9, 1.0], [100, 400]))  # mean 0.98
    rec = _record(clear, cos)
    assert rec["top10_overlap_lcb95"] >= 0.95 and M.goal_holds(rec, GOAL)
    assert not M.goal_holds(_record(clear, cos - 0.0045), GOAL)  # cosine's bound under 0.995 fails it alone
    assert not M.goal_holds({"top10_overlap": 1.0, "cosine": 1.0}, GOAL)  # no bound: the margin is not shown


def test_the_lower_bound_wrongly_clears_a_line_the_truth_sits_on_about_5_percent_of_the_time():
    """Seeded simulation: per-title overlaps drawn with true mean exactly 0.95; the goal must be
    (wrongly) met in about 5% of tuning sets, not the ~50% a rule on the mean gives."""
    values, probs = np.array([0.7, 0.8, 0.9, 1.0]), np.array([0.05, 0.10, 0.15, 0.70])
    assert float(values @ probs) == pytest.approx(0.95)
    rng = np.random.default_rng(1)
    passes = means = 0
    for rep in range(300):
        x = rng.choice(values, size=500, p=probs)
        passes += M.lower_bound_mean(x, n_boot=400, seed=rep) >= 0.95
        means += x.mean() >= 0.95
    assert passes / 300 <= 0.09 and means / 300 >= 0.35


def test_the_lower_bound_of_constant_values_is_the_value():
    assert M.lower_bound_mean(np.ones(10)) == 1.0
    with pytest.raises(M.NonFiniteOutputError):
        M.lower_bound_mean(np.array([1.0, np.nan]))
