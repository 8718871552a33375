"""Records of the paired design: a comparison group timed inside one process, round by round.

``PairedSpec`` says what one comparison process loads and how long it times; ``PairedProcess`` is what one
process measured (every member's samples, in round order); ``PairedResult`` is a group's processes.
Statistics are computed in the parent from the samples (stats/paired.py), never stored as the only copy.

Schema versions (bump PAIRED_SCHEMA_VERSION on any change of these fields and say why):

  1 (2026-12-03): first version.
  2 (2026-12-03): ``PairedProcess.load_order``: each process opens and binds its members in an order turned by
     its index, so that where a member's weights and buffers land (first or last loaded) is not the same in every
     process; a version-1 process loaded them in declaration order, and is read with that order.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odbench.core.records import Feeds, Verdict

PAIRED_SCHEMA_VERSION = 2
READABLE_PAIRED_VERSIONS = (1, 2)

# The thread setting every paired process applies to its ONNX Runtime members, recorded in each process: one
# intra-op pool shared by all sessions (ONNX Runtime's global thread pools), so that no member keeps workers of
# its own. Measured (docs/paired.md): per-session pools with spinning off gave per-process ratios of 0.57 and
# 1.73 between two copies of one file under load; the shared pool kept them within 0.5%.
PAIRED_ORT_OPTIONS = {"global_threads": True}


@dataclass(frozen=True)
class PairedMember:
    """One member of a comparison group: a model file on a runtime with its options."""

    variant_id: str
    path: str
    sha256: str | None
    runtime: str
    runtime_options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.runtime_options.items()))
        return f"{self.variant_id}@{self.runtime}" + (f"[{opts}]" if opts else "")


@dataclass(frozen=True)
class PairedSpec:
    """A comparison process: load ``members`` (one session each), bind the same feeds to each, warm up,
    then in each round give every member a turn, in a fresh seeded order (``turn_warm`` untimed inferences, then
    ``turn`` timed ones, on the same feeds for every member)."""

    model: str
    scenario: str
    profile: dict[str, Any]  # DeviceProfile.model_dump()
    members: tuple[PairedMember, ...]
    feeds: Feeds
    items_per_inference: int = 1
    warmup_s: float = 0.5
    min_rounds: int = 200
    min_time_s: float = 1.0
    max_time_s: float = 3.0
    max_rounds: int = 4000
    seed: int = 0
    timeout_s: float = 240.0
    # Each member's turn in a round: ``turn_warm`` untimed inferences (its caches refilled after the other
    # members ran), then ``turn`` timed ones. One timed inference each per round (1, 0) biased the memory-bound
    # CTR ranker's int8-dyn/fp32 ratio by 8% against isolated processes; 16 after 4 matched them (docs/paired.md).
    turn: int = 16
    turn_warm: int = 4

    @property
    def group_id(self) -> str:
        digest = hashlib.sha1(json.dumps([m.key for m in self.members] + [m.sha256 for m in self.members]).encode()).hexdigest()[:8]
        runtimes = "+".join(sorted({m.runtime for m in self.members}))
        return "__".join([self.model, runtimes, self.profile.get("name", "custom"), self.scenario, digest])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairedSpec":
        d = dict(d)
        f = dict(d["feeds"])
        f["dims"] = tuple((str(k), int(v)) for k, v in f.get("dims", ()))
        d["feeds"] = Feeds(**f)
        d["members"] = tuple(PairedMember(**m) for m in d["members"])
        return cls(**d)


@dataclass(frozen=True)
class PairedProcess:
    """One comparison process: each member's samples (ms) in round order, and what the process applied."""

    index: int
    order_seed: int
    samples_ms: dict[str, tuple[float, ...]]  # member key -> samples
    rounds: int = 0
    warmup_rounds: int = 0
    measure_s: float = 0.0
    session_create_ms: dict[str, float] = field(default_factory=dict)
    runtime_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: dict[str, Any] = field(default_factory=dict)  # the profile, and the paired thread setting as read back
    provenance: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    started_at: str = ""
    wall_s: float | None = None
    load_order: tuple[str, ...] = ()  # member keys in the order this process opened and bound them

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairedProcess":
        d = dict(d)
        d["load_order"] = tuple(d.get("load_order", ()))
        d["samples_ms"] = {k: tuple(v) for k, v in d.get("samples_ms", {}).items()}
        d["warnings"] = tuple(d.get("warnings", ()))
        return cls(**d)

    def median(self, key: str) -> float:
        return float(np.median(self.samples_ms[key]))


@dataclass(frozen=True)
class PairedResult:
    """A comparison group's processes. ``verdict``: OK, or ERROR/TIMEOUT/SKIPPED with the reason."""

    spec: PairedSpec
    verdict: Verdict
    reason: str = ""
    processes: tuple[PairedProcess, ...] = ()
    started_at: str = ""
    finished_at: str = ""
    schema_version: int = PAIRED_SCHEMA_VERSION

    @property
    def group_id(self) -> str:
        return self.spec.group_id

    def samples(self, key: str) -> list[tuple[float, ...]]:
        return [p.samples_ms[key] for p in self.processes if key in p.samples_ms]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PairedResult":
        if d.get("schema_version") not in READABLE_PAIRED_VERSIONS:
            raise ValueError(f"paired result schema version {d.get('schema_version')} is not supported "
                             f"(this odbench reads {', '.join(map(str, READABLE_PAIRED_VERSIONS))})")
        d = dict(d)
        spec = d["spec"] = PairedSpec.from_dict(d["spec"])
        d["verdict"] = Verdict(d["verdict"])
        d["processes"] = tuple(PairedProcess.from_dict(p) for p in d.get("processes", ()))
        if d["schema_version"] == 1:  # version 1 opened and bound the members in declaration order
            declared = tuple(m.key for m in spec.members)
            d["processes"] = tuple(dataclasses.replace(p, load_order=declared) for p in d["processes"])
        d["schema_version"] = PAIRED_SCHEMA_VERSION
        return cls(**d)

    def replace(self, **changes: Any) -> "PairedResult":
        return dataclasses.replace(self, **changes)
