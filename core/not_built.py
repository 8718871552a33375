"""A recipe step that produced no variant, as a typed record: a row in ``variants.json``, never a crash.

``variants.json`` is a list. Each entry is either a built ``Variant`` (core/records.py; no ``built`` key,
or ``built: true``) or a ``NotBuilt`` (``built: false``) naming the model, the step, the compressor and
why it was not built. Readers that want the built variants only (tables, gate, report) skip the
``built: false`` entries; ``split_variants_json`` hands back both, unparsed.

NOT_BUILT_SCHEMA_VERSION:
  1 (2026-12-03): first version (issue 24: a failed compression step is a row, not a crash).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable

NOT_BUILT_SCHEMA_VERSION = 1


class NotBuiltKind(StrEnum):
    """Why a step has no variant."""

    REFUSED = "refused"  # the compressor cannot apply to this model (a CompressionError): the reason says why
    SKIPPED = "skipped"  # not tried: its parent step did not build, or it needs a torch model
    FAILED = "failed"  # the compressor raised something else: a library error or a bug, with its type


@dataclass(frozen=True)
class NotBuilt:
    """One recipe step that built nothing: ``id`` is ``<model>/<step key>`` (built variants are named by
    their compressor's output name, so the two never collide in practice; they live in separate maps)."""

    id: str
    model: str
    step: str
    compressor: str
    kind: NotBuiltKind
    reason: str
    parent: str | None = None  # the parent variant id, or the parent step's key when that did not build
    seconds: float = 0.0  # time spent before it refused or failed
    config: dict[str, Any] = field(default_factory=dict)
    built: bool = False  # the discriminator in variants.json; always False
    schema_version: int = NOT_BUILT_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.built:
            raise ValueError("a NotBuilt record has built=False")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NotBuilt":
        d = dict(d)
        version = d.get("schema_version")
        if version != NOT_BUILT_SCHEMA_VERSION:
            raise ValueError(f"not-built record schema version {version} is not supported (expected {NOT_BUILT_SCHEMA_VERSION})")
        d["kind"] = NotBuiltKind(d["kind"])
        return cls(**d)

    def line(self) -> str:
        """One log/table line: 'onnx-m/svd (lowrank-svd): not built, refused: no matmul weight gets smaller'."""
        return f"{self.id} ({self.compressor}): not built, {self.kind}: {self.reason}"


def is_not_built(entry: dict[str, Any]) -> bool:
    return entry.get("built", True) is False


def split_variants_json(entries: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """variants.json entries -> (built variants' dicts, not-built entries' dicts), neither parsed: a reader of
    the built variants never fails on a not-built record (NotBuilt.from_dict parses those)."""
    built, not_built = [], []
    for entry in entries:
        if is_not_built(entry):
            not_built.append(entry)
        else:
            built.append({k: v for k, v in entry.items() if k != "built"})
    return built, not_built
