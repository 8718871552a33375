"""The figures a user decides on, per row: an estimate with its 95% interval (or honestly none), the
model's task metric and fidelity metric, and a row's task-metric delta vs fp32.

An interval is usable only when both ends are finite numbers: an old result's ``p50 [nan, nan]`` is
"no interval", never a number to scale an axis by or to compare against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from odbench.models import get_model
from odbench.models.metrics import FIDELITY_METRICS, LOWER_IS_BETTER, metric_kind, point_metrics


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its 95% interval; ``lo``/``hi`` None when there is no (finite) interval."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, value, lo=None, hi=None) -> "Estimate | None":
        """None when the point itself is missing or not finite; the interval dropped when either end is."""
        if not finite(value):
            return None
        if finite(lo) and finite(hi):
            return cls(float(value), float(min(lo, hi)), float(max(lo, hi)))
        return cls(float(value))

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None

    def text(self, fmt: str = ".3g", signed: bool = False, unit: str = "") -> str:
        """'1.23 [1.10, 1.38] ms', or '1.23 ms (no interval)'."""
        f = ("+" if signed else "") + fmt
        point = format(self.value, f)
        if self.has_interval:
            return f"{point} [{format(self.lo, f)}, {format(self.hi, f)}]{unit}"
        return f"{point}{unit} (no interval)"

    def above(self, other: "Estimate") -> bool:
        """Higher than ``other`` beyond both intervals (never, when either has no interval)."""
        return self.has_interval and other.has_interval and self.lo > other.hi

    def overlaps(self, other: "Estimate") -> bool:
        """The two cannot be told apart: their intervals overlap, or either has none."""
        return not (self.above(other) or other.above(self))


def stat_estimate(stats: Mapping | None, key: str) -> Estimate | None:
    """``p50`` -> Estimate(p50, p50_lo, p50_hi) from Result.stats."""
    stats = stats or {}
    return Estimate.of(stats.get(key), stats.get(f"{key}_lo"), stats.get(f"{key}_hi"))


USER_PRIMARY = ("auc", "ndcg@10", "macro_f1")  # ranking, retrieval, classification (models/user_task.py PRIMARY)


def _model_attr(model: str, attr: str) -> str | None:
    try:
        return getattr(get_model(model), attr, None)
    except KeyError:  # a user's ONNX file: not a zoo model
        return None


def task_metric(model: str, accuracies: Iterable[Mapping]) -> str | None:
    """The model's task metric (the zoo model's ``primary_metric``: recall@10, AUC, macro-F1), else the
    first task metric (one with ground truth, not fidelity) the records hold."""
    keys = {k for acc in accuracies for k in point_metrics(acc or {})}
    named = _model_attr(model, "primary_metric")
    if named in keys:
        return named
    for k in USER_PRIMARY:  # a user's model on an evaluation set (models/user_task.py): its task's primary metric
        if k in keys:
            return k
    return next((k for k in sorted(keys) if metric_kind(k) == "task"), None)


def fidelity_metric(model: str, accuracies: Iterable[Mapping]) -> str | None:
    """How close a variant's outputs stay to fp32's (top-10 overlap, agreement, cosine), when recorded."""
    keys = {k for acc in accuracies for k in point_metrics(acc or {})}
    named = _model_attr(model, "fidelity_metric")
    if named in keys:
        return named
    return next((k for k in sorted(keys) if k in FIDELITY_METRICS), None)


def metric_estimate(acc: Mapping | None, metric: str | None) -> Estimate | None:
    if not acc or not metric:
        return None
    return Estimate.of(acc.get(metric), acc.get(f"{metric}_lo"), acc.get(f"{metric}_hi"))


def delta_estimate(acc: Mapping | None, base: Mapping | None, metric: str | None) -> Estimate | None:
    """The row's ``metric`` minus fp32's: the paired delta with its interval where recorded, else the bare
    difference of the two points (no interval)."""
    if not acc or not metric:
        return None
    paired = Estimate.of(acc.get(f"delta_{metric}"), acc.get(f"delta_{metric}_lo"), acc.get(f"delta_{metric}_hi"))
    if paired is not None:
        return paired
    if base and finite(acc.get(metric)) and finite(base.get(metric)):
        return Estimate(acc[metric] - base[metric])
    return None


def better_is_higher(metric: str | None) -> bool:
    return metric not in LOWER_IS_BETTER


def no_detected_loss(delta: Estimate | None, metric: str | None) -> bool:
    """The delta's interval does not lie wholly on the worse side of 0 (a point without interval: not worse)."""
    if delta is None:
        return False
    if not delta.has_interval:
        return (delta.value >= 0) == better_is_higher(metric) or delta.value == 0
    return delta.hi >= 0 if better_is_higher(metric) else delta.lo <= 0
