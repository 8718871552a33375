"""The budgets file: what a release must meet, per model/variant pattern and device profile.

```yaml
version: 1
confidence: 0.99            # for percentile and throughput verdicts
min_group: 0.10             # a PASS assumes any group of processes that differs is >= 10% of them
budgets:
  - name: ranker-on-host    # optional; shown in reports
    model: ctr-ml100k       # glob patterns; "*" (the default) matches anything
    variant: "*"
    profile: host
    runtime: onnxruntime
    scenario: rank-200
    latency_ms: {p95: 10}   # percentile budgets, judged by MLPerf early stopping
    throughput_min: 50000   # items/s, lower 99% bound of the mean must clear it
    peak_rss_mb_max: 600
    size_mb_max: 100
    accuracy_drop_max: 0.01 # relative drop vs the model's fp32 baseline: a non-inferiority test
    accuracy_metric: auc    # optional: the metric judged (default: every metric of accuracy_kind)
    accuracy_kind: task     # task (ground truth, the default) | fidelity (agreement with fp32)
```
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from odbench.core.records import Result
from odbench.core.validation import load_yaml_model
from odbench.models.metrics import metric_kind


class BudgetError(ValueError):
    """A budgets file is unreadable or invalid; the message names the field."""


Percentile = Literal["p50", "p90", "p95", "p99"]


class Budget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    model: str = "*"
    variant: str = "*"
    profile: str = "*"
    runtime: str = "*"
    scenario: str = "*"
    latency_ms: dict[Percentile, float] = Field(default_factory=dict)
    throughput_min: float | None = Field(default=None, gt=0)
    peak_rss_mb_max: float | None = Field(default=None, gt=0)
    size_mb_max: float | None = Field(default=None, gt=0)
    accuracy_drop_max: float | None = Field(default=None, ge=0, le=1)
    accuracy_metric: str | None = None
    accuracy_kind: Literal["task", "fidelity"] = "task"

    @model_validator(mode="after")
    def _something_to_check(self) -> "Budget":
        if any(v <= 0 for v in self.latency_ms.values()):
            raise ValueError("latency_ms: budgets must be positive milliseconds")
        if not (self.latency_ms or self.throughput_min or self.peak_rss_mb_max or self.size_mb_max or self.accuracy_drop_max is not None):
            raise ValueError("a budget must set at least one of latency_ms, throughput_min, peak_rss_mb_max, size_mb_max, "
                             "accuracy_drop_max")
        if self.accuracy_metric and "accuracy_kind" in self.model_fields_set and metric_kind(self.accuracy_metric) != self.accuracy_kind:
            raise ValueError(f"accuracy_metric {self.accuracy_metric!r} is a {metric_kind(self.accuracy_metric)} metric, "
                             f"not {self.accuracy_kind}")
        return self

    @property
    def label(self) -> str:
        return self.name or f"{self.model}/{self.variant}@{self.profile}:{self.scenario}"

    def matches(self, r: Result) -> bool:
        variant = r.variant_id.split("/", 1)[-1]
        return all(
            fnmatchcase(value, pattern)
            for value, pattern in (
                (r.model, self.model), (variant, self.variant), (r.profile, self.profile),
                (r.runtime, self.runtime), (r.scenario, self.scenario),
            )
        )


class BudgetFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    confidence: float = Field(default=0.99, gt=0.5, lt=1)
    min_group: float = Field(default=0.10, gt=0, lt=1)  # the gate's assumption (verdicts/gate.py MIN_GROUP)
    budgets: tuple[Budget, ...] = Field(min_length=1)


def load_budgets(path: str | Path) -> BudgetFile:
    return load_yaml_model(BudgetFile, path, "budgets file", BudgetError)
