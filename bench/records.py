"""Immutable, typed records: Variant, Timing, Feeds, CellSpec and Result.

Results carry ``schema_version``. Bump RESULT_SCHEMA_VERSION on any change to the
Result fields and say why here:

  1 (2026-11-29): first version.
  2 (2026-11-29): ``parity`` (outputs vs the fp32 root and vs ONNX Runtime), the FAIL verdict and
                  ``runtime_options``; CellSpec gains ``parity``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RESULT_SCHEMA_VERSION = 2
VARIANT_SCHEMA_VERSION = 1

# FAIL: measured, but the outputs do not match the references (bench/parity.py): its speed means nothing.
Verdict = Literal["OK", "ERROR", "TIMEOUT", "UNSTABLE", "SKIPPED", "FAIL"]
VERDICTS: tuple[str, ...] = ("OK", "ERROR", "TIMEOUT", "UNSTABLE", "SKIPPED", "FAIL")


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    return obj


def to_json(record: Any) -> str:
    return json.dumps(_to_jsonable(record), indent=1, sort_keys=False)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Variant:
    """One ONNX model file and where it came from (its lineage).

    ``parent`` is the id of the variant it was made from (None for a baseline);
    ``compressor``/``config`` say how. ``accuracy`` holds task metrics measured on
    this file's own outputs; ``parity`` compares the export to its source framework.
    """

    id: str  # "<model>/<name>", e.g. "ctr-ml100k/fp32"
    model: str
    path: str
    sha256: str
    size_bytes: int
    params: int | None = None
    parent: str | None = None
    compressor: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    parity: dict[str, float] = field(default_factory=dict)
    scenarios: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gzip_bytes: int | None = None  # unstructured sparsity only shrinks a file once compressed
    sparsity: float | None = None  # fraction of zero float weights
    embedding_mb: float | None = None  # embedding tables (Gather data)
    dense_mb: float | None = None  # everything else
    schema_version: int = VARIANT_SCHEMA_VERSION

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Variant":
        d = dict(d)
        d["scenarios"] = tuple(d.get("scenarios", ()))
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), to_json(self))

    @classmethod
    def load(cls, path: str | Path) -> "Variant":
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Timing:
    """How long a cell measures. One inference per sample, never averaged.

    A cell runs in ``processes`` fresh processes one after another (pyperf-style); each
    warms up, then measures until both ``min_samples`` and ``min_time_s`` are met, capped by
    ``max_time_s`` and ``max_samples``. The per-process figures are per process; the
    cell's samples are the union. The CV of per-process medians decides UNSTABLE.
    """

    warmup_s: float = 3.0
    warmup_runs: int = 10
    min_time_s: float = 4.0
    min_samples: int = 200
    max_time_s: float = 15.0
    processes: int = 3
    max_samples: int = 20_000  # a cap for micro-models (and the null session): bounds time and JSON size
    gating: bool = True  # smoke runs are marked non-gating: the gate will not trust them


TIMING_PRESETS: dict[str, Timing] = {
    # tests: seconds, never gating
    "smoke": Timing(warmup_s=0.2, warmup_runs=3, min_time_s=0.5, min_samples=30, max_time_s=2.0, processes=1, max_samples=5000, gating=False),
    # the README's default matrix: 2 processes x (1.5 s warm-up + 2.5-6 s), about 10-20 s a cell, so that
    # the zoo, its compressed variants, three runtimes and setup fit in 15 minutes on 2 cores. Below
    # MEASUREMENT.md's 3 s warm-up: use --preset gate (5 processes, >= 60 s) for release decisions.
    "default": Timing(warmup_s=1.5, min_time_s=2.5, max_time_s=6.0, processes=2),
    # release gates: MEASUREMENT.md's 60 s in all and more than the p99 minimum of 662 samples
    "gate": Timing(min_time_s=12.0, min_samples=150, max_time_s=60.0, processes=5, max_samples=100_000),
}


@dataclass(frozen=True)
class Feeds:
    """Where a cell's inputs come from.

    Either ``path``: an ``.npz`` written by ``bench.feeds.save_feeds`` from real task samples,
    or synthetic feeds derived from the model's input signature (``dims`` overrides
    symbolic dimensions; see bench/feeds.py for the defaults).
    """

    path: str | None = None
    dims: tuple[tuple[str, int], ...] = ()
    int_low: int = 0
    int_high: int = 100
    count: int = 16
    seed: int = 0


@dataclass(frozen=True)
class ParitySpec:
    """How a cell checks its outputs (bench/parity.py). ``kind``: embedding | ranking | values.
    ``reference``: an .npz of reference outputs for the first ``n_feeds`` feeds; empty with
    ``error`` set when the references could not be computed."""

    kind: str
    reference: str = ""
    reference_sha256: str | None = None
    n_feeds: int = 4
    compare_runtime: bool = True  # also compare with the same variant on ONNX Runtime
    error: str = ""


@dataclass(frozen=True)
class CellSpec:
    model: str
    variant_id: str
    variant_path: str
    variant_sha256: str | None
    runtime: str
    runtime_options: dict[str, Any]
    profile: dict[str, Any]  # DeviceProfile.model_dump()
    measured_on: Literal["device", "emulated"]
    scenario: str
    items_per_inference: int
    feeds: Feeds
    timing: Timing
    timeout_s: float
    parity: ParitySpec | None = None

    @property
    def profile_name(self) -> str:
        return self.profile["name"]

    @property
    def cell_id(self) -> str:
        rt = self.runtime
        if self.runtime_options:
            digest = hashlib.sha1(json.dumps(self.runtime_options, sort_keys=True).encode()).hexdigest()[:6]
            rt = f"{rt}-{digest}"
        return "__".join([self.variant_id.replace("/", "."), rt, self.profile_name, self.scenario])

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CellSpec":
        d = dict(d)
        f = dict(d["feeds"])
        f["dims"] = tuple((str(k), int(v)) for k, v in f.get("dims", ()))
        d["feeds"] = Feeds(**f)
        d["timing"] = Timing(**d["timing"])
        if d.get("parity"):
            d["parity"] = ParitySpec(**d["parity"])
        return cls(**d)


@dataclass(frozen=True)
class Result:
    """One cell's outcome. Latencies in milliseconds; raw samples are kept."""

    cell_id: str
    model: str
    variant_id: str
    runtime: str
    profile: str
    measured_on: str
    scenario: str
    verdict: Verdict
    runtime_options: dict[str, Any] = field(default_factory=dict)  # the non-default options of the runtime
    reason: str = ""
    warnings: tuple[str, ...] = ()
    items_per_inference: int = 1
    n_samples: int = 0
    measure_s: float = 0.0
    warmup_runs: int = 0
    gating: bool = False
    session_create_ms: float | None = None
    first_inference_ms: float | None = None
    stats: dict[str, float] = field(default_factory=dict)  # p50/p90/p95/p99/mean/stdev/cv/min/max/...
    process_medians_ms: tuple[float, ...] = ()  # one median per fresh process
    throughput_items_s: float | None = None
    peak_rss_mb: float | None = None
    rss_before_load_mb: float | None = None
    parity: dict[str, Any] = field(default_factory=dict)  # {"fp32": {...}, "runtime": {...}} metrics (bench/parity.py)
    applied: dict[str, Any] = field(default_factory=dict)  # the profile as it took effect in the cell
    runtime_info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    exit: dict[str, Any] = field(default_factory=dict)  # returncode / signal / stderr tail
    samples_ms: tuple[float, ...] = ()
    started_at: str = ""
    finished_at: str = ""
    schema_version: int = RESULT_SCHEMA_VERSION

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        version = d.get("schema_version")
        if version == 1:  # v2 only added fields (parity, the FAIL verdict): a v1 result reads as a v2 one without parity
            d = {**d, "schema_version": RESULT_SCHEMA_VERSION}
            version = RESULT_SCHEMA_VERSION
        if version != RESULT_SCHEMA_VERSION:
            raise ValueError(f"result schema version {version} is not supported (expected {RESULT_SCHEMA_VERSION})")
        d = dict(d)
        d["warnings"] = tuple(d.get("warnings", ()))
        d["samples_ms"] = tuple(d.get("samples_ms", ()))
        d["process_medians_ms"] = tuple(d.get("process_medians_ms", ()))
        return cls(**d)

    def replace(self, **changes: Any) -> "Result":
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_cell(cls, spec: CellSpec, verdict: str, reason: str = "", **fields: Any) -> "Result":
        """A Result carrying the cell's identity from its spec, plus the given fields."""
        return cls(
            cell_id=spec.cell_id, model=spec.model, variant_id=spec.variant_id, runtime=spec.runtime,
            runtime_options=dict(spec.runtime_options),
            profile=spec.profile_name, measured_on=spec.measured_on, scenario=spec.scenario,
            items_per_inference=spec.items_per_inference, gating=spec.timing.gating,
            verdict=verdict, reason=reason, **fields,
        )


def lineage_root(variant_id: str, variants: dict[str, "Variant"]) -> str:
    """The id of the baseline a variant descends from (its own id for a baseline)."""
    seen = set()
    while variant_id in variants and variants[variant_id].parent and variant_id not in seen:
        seen.add(variant_id)
        variant_id = variants[variant_id].parent
    return variant_id


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename in the same folder: readers see the old file or the new one, never half."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write-then-rename in the same folder: readers see the old file or the new one, never half."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
