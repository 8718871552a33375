"""The Compressor seam: a compressor turns a Variant into a new Variant.

Every output variant records its parent, the compressor's name and its typed, frozen
config (its lineage), and its accuracy measured from its own outputs on the task's
held-out data. Calibration and fine-tuning data come from the task, not the compressor.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from bench.records import Variant


class Task(Protocol):
    """What a compressor may use of a model: its data and its metric (models.base.ZooModel fits)."""

    def evaluate(self, run: Any, cache_dir: Path) -> dict[str, float]: ...


class Compressor(Protocol):
    name: str
    Config: type  # a frozen dataclass

    def compress(self, variant: Variant, task: Task, config: Any, out_dir: Path) -> Variant: ...
