"""Immutable, typed records: Variant, Timing, Feeds, CellSpec and Result.

Results carry ``schema_version``. Bump RESULT_SCHEMA_VERSION on any change to the
Result fields and say why here:

  1 (2026-11-29): first version.
  2 (2026-11-29): ``parity`` (outputs vs the fp32 root and vs ONNX Runtime), the FAIL verdict and
                  ``runtime_options``; CellSpec gains ``parity``.
  3 (2026-11-29): ``processes``: each fresh process's samples in order, with its own warm-up count,
                  start time and one-time costs (the process is the unit of replication); the pooled
                  ``samples_ms`` and ``process_medians_ms`` become properties derived from it; ``looks``
                  counts the batches of processes a cell was judged on (verdicts/gate.py spends its error
                  rate over them). Cells no longer get UNSTABLE (intervals carry the noise); old ones
                  still read. v1/v2 files read as one batch whose process boundaries are recovered from
                  their per-process medians where they can be, else marked unknown.
"""
from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from odbench.core.envs import CELL_CONTRACT_VERSION

RESULT_SCHEMA_VERSION = 3
VARIANT_SCHEMA_VERSION = 1


class Verdict(StrEnum):
    """A cell's outcome. FAIL: measured, but the outputs do not match the references (bench/parity.py),
    so its speed means nothing. UNSTABLE is only read from v1/v2 results."""

    OK = "OK"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    UNSTABLE = "UNSTABLE"
    SKIPPED = "SKIPPED"
    FAIL = "FAIL"


NOT_MEASURED = (Verdict.ERROR, Verdict.TIMEOUT, Verdict.SKIPPED)
# Runtimes that measure the harness itself, not a model: never in tables' comparisons or the gate.
HARNESS_RUNTIMES = ("null", "faulty")


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, np.generic):
        return obj.item()
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
    """How a cell is measured: ``processes`` fresh processes (the replicates), each warming up and
    then timing one inference per sample until both ``min_samples`` and ``min_time_s`` are met,
    capped by ``max_time_s`` and ``max_samples``. The local executor interleaves the processes of
    all cells. ``gating``: whether the gate may decide on it (one process cannot show the
    between-process variation, so a one-process design never gates)."""

    warmup_s: float = 3.0
    warmup_runs: int = 10
    min_time_s: float = 4.0
    min_samples: int = 200
    max_time_s: float = 15.0
    processes: int = 5
    max_samples: int = 20_000  # a cap for micro-models (and the null session): bounds time and file size
    gating: bool = True

    def __post_init__(self) -> None:
        if self.gating and self.processes < 2:
            raise ValueError("a gating design needs at least 2 processes: one cannot show the variation between processes")


# The designs follow Kalibera & Jones's cost-optimal rule on this project's machines (README, "Run
# design"): fresh processes differ far more than samples within one, and starting one costs ~2-3 s
# against well under 1 ms a sample, so precision comes from more processes with short runs, with
# MLPerf's minimum sample counts (p99: 662) reached by the pooled samples.
TIMING_PRESETS: dict[str, Timing] = {
    # tests: seconds, one process, never gating
    "smoke": Timing(warmup_s=0.2, warmup_runs=3, min_time_s=0.5, min_samples=30, max_time_s=2.0, processes=1, max_samples=5000,
                    gating=False),
    # the README's default matrix: 5 interleaved processes x (0.5 s warm-up + 0.5-2 s, >= 200 samples)
    "default": Timing(warmup_s=0.5, min_time_s=0.5, max_time_s=2.0, processes=5),
    # release gates: a latency PASS needs >= 57 processes at the first look (verdicts/gate.py MIN_GROUP: a slower
    # group of 10% of processes is seen with probability 99.75%), so 64 short processes x (1 s warm-up + 1-3 s,
    # >= 100 samples): >= 64 s timed in all, about 5 minutes of wall time per cell with process start-up
    "gate": Timing(warmup_s=1.0, min_time_s=1.0, min_samples=100, max_time_s=3.0, processes=64, max_samples=100_000),
}


@dataclass(frozen=True)
class Feeds:
    """Where a cell's inputs come from.

    Either ``path``: an ``.npz`` written by ``bench.feeds.save_feeds`` from real task samples,
    or synthetic feeds derived from the model's input signature (``dims`` overrides
    symbolic dimensions; see core/feeds.py for the defaults).
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
    measured_on: Literal["device", "emulated", "functional-emulation"]
    scenario: str
    items_per_inference: int
    feeds: Feeds
    timing: Timing
    timeout_s: float
    parity: ParitySpec | None = None
    int8_target: str | None = None  # the int8 kernel class the variant was built for (compressors/isa.py)
    int8_weight_bits: int | None = None
    contract: int = CELL_CONTRACT_VERSION  # core/envs.py: the spec file is read by the runtime's own environment

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
class ProcessSamples:
    """One fresh process of a cell: its timed samples in the order they were taken (ms)."""

    samples_ms: tuple[float, ...]
    warmup_runs: int = 0
    started_at: str = ""
    measure_s: float = 0.0
    session_create_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    wall_s: float | None = None  # the whole process, start-up included (set by the executor)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProcessSamples":
        return cls(**{**d, "samples_ms": tuple(d.get("samples_ms", ()))})

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))


@dataclass(frozen=True)
class Result:
    """One cell's outcome. Latencies in milliseconds; every process's raw samples are kept."""

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
    stats: dict[str, float] = field(default_factory=dict)  # stats/summary.py: p50 and p50_lo/p50_hi, ... between_cv
    throughput_items_s: float | None = None
    peak_rss_mb: float | None = None
    rss_before_load_mb: float | None = None
    parity: dict[str, Any] = field(default_factory=dict)  # {"fp32": {...}, "runtime": {...}} metrics (bench/parity.py)
    applied: dict[str, Any] = field(default_factory=dict)  # the profile as it took effect in the cell
    runtime_info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    exit: dict[str, Any] = field(default_factory=dict)  # returncode / signal / stderr tail
    processes: tuple[ProcessSamples, ...] = ()
    processes_known: bool = True  # False: a v1/v2 result whose process boundaries could not be recovered
    looks: int = 1  # batches of processes this result was judged on (run --decide adds batches)
    started_at: str = ""
    finished_at: str = ""
    schema_version: int = RESULT_SCHEMA_VERSION

    @property
    def samples_ms(self) -> tuple[float, ...]:
        """Every process's samples, pooled (for plots; statistics use ``processes``)."""
        return tuple(x for p in self.processes for x in p.samples_ms)

    @property
    def process_samples(self) -> list[tuple[float, ...]]:
        return [p.samples_ms for p in self.processes if p.samples_ms]

    @property
    def process_medians_ms(self) -> tuple[float, ...]:
        return tuple(p.median_ms for p in self.processes if p.samples_ms)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        version = d.get("schema_version")
        if version in (1, 2):
            d = _upgrade_v2(d)
        elif version != RESULT_SCHEMA_VERSION:
            raise ValueError(f"result schema version {version} is not supported (expected 1 to {RESULT_SCHEMA_VERSION})")
        d = dict(d)
        d["verdict"] = Verdict(d["verdict"])
        d["warnings"] = tuple(d.get("warnings", ()))
        d["processes"] = tuple(ProcessSamples.from_dict(p) for p in d.get("processes", ()))
        return cls(**d)

    def replace(self, **changes: Any) -> "Result":
        return dataclasses.replace(self, **changes)

    @classmethod
    def for_cell(cls, spec: CellSpec, verdict: Verdict, reason: str = "", **fields: Any) -> "Result":
        """A Result carrying the cell's identity from its spec, plus the given fields."""
        return cls(
            cell_id=spec.cell_id, model=spec.model, variant_id=spec.variant_id, runtime=spec.runtime,
            runtime_options=dict(spec.runtime_options),
            profile=spec.profile_name, measured_on=spec.measured_on, scenario=spec.scenario,
            items_per_inference=spec.items_per_inference, gating=spec.timing.gating,
            verdict=Verdict(verdict), reason=reason, **fields,
        )


def _upgrade_v2(d: dict[str, Any]) -> dict[str, Any]:
    """A v1/v2 result as v3. v2 pooled its processes' samples in process order and kept each one's
    median: the boundaries are recovered where exactly one split reproduces those medians."""
    d = dict(d)
    pooled = tuple(d.pop("samples_ms", ()) or ())
    medians = tuple(d.pop("process_medians_ms", ()) or ())
    parts = split_by_medians(pooled, medians) if len(medians) > 1 else [pooled]
    d["processes_known"] = parts is not None and (len(medians) <= 1 or len(parts) == len(medians))
    if parts is None:
        parts = [pooled]
    d["processes"] = [{"samples_ms": p} for p in parts if p]
    d["schema_version"] = RESULT_SCHEMA_VERSION
    return d


def split_by_medians(pooled: tuple[float, ...], medians: tuple[float, ...]) -> list[tuple[float, ...]] | None:
    """Split ``pooled`` into two consecutive runs whose medians are ``medians`` (v2's default preset ran
    two processes). v2 rounded samples to 1 ns after taking the medians, hence the tolerance; ties give
    a range of splits a few samples wide, of which the first is taken. None when no split fits."""
    if len(medians) != 2 or len(pooled) < 2:
        return None
    head, tail = _running_medians(pooled), _running_medians(pooled[::-1])[::-1]
    hits = [i for i in range(1, len(pooled)) if abs(head[i - 1] - medians[0]) <= 2e-6 and abs(tail[i] - medians[1]) <= 2e-6]
    if not hits or hits[-1] - hits[0] > 10:
        return None
    return [tuple(pooled[: hits[0]]), tuple(pooled[hits[0]:])]


def _running_medians(x: tuple[float, ...]) -> list[float]:
    """Median of x[:i+1] for every i (two heaps)."""
    low: list[float] = []  # max-heap (negated)
    high: list[float] = []
    out = []
    for v in x:
        if low and v > -low[0]:
            heapq.heappush(high, v)
        else:
            heapq.heappush(low, -v)
        if len(low) > len(high) + 1:
            heapq.heappush(high, -heapq.heappop(low))
        elif len(high) > len(low):
            heapq.heappush(low, -heapq.heappop(high))
        out.append(-low[0] if len(low) > len(high) else (-low[0] + high[0]) / 2)
    return out


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


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the runtime reports it.

    ``shape`` holds ints for fixed dims and strings (or None) for symbolic ones.
    ``dtype`` is a numpy dtype name, e.g. ``"float32"`` or ``"int64"``.
    """

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]


@dataclass(frozen=True)
class LayerDistillData:
    """Layer-wise distillation data of a TorchTask (quantization-aware distillation, compressors/qat.py): rows no
    selection reads (for the encoder: not evaluation, not the tuning metric's), teacher targets of every layer.

    ``batches(steps, batch, seed)`` yields (inputs tuple, teacher targets); ``holdout()`` a fixed held-out slice of the
    same pool as a list of (inputs, targets), never trained on; ``loss(student, inputs, targets, parts)`` the objective
    (a scalar tensor; ``parts``, a dict or None, receives its terms as floats); ``rows`` what the pool is (split records).
    """

    batches: Callable[[int, int, int], Iterator[tuple[tuple, Any]]]
    holdout: Callable[[], list]
    loss: Callable[..., Any]
    rows: dict


@dataclass(frozen=True)
class TorchTask:
    module: Any
    batches: Callable[[int, int, int], Iterator[tuple[tuple, Any]]]
    loss: Callable[[Any, Any, tuple, Any], Any]
    export: Callable[[Any, Any], None]
    prunable: Callable[[Any], list[tuple[Any, Any]]]
    make_student: Callable[[Any, float, float], Any]
    lr: float = 1e-3
    # Fine-tuning a pretrained transformer (e.g. the MiniLM encoder) wants these (Devlin et al. 2019,
    # BERT, appendix A.3: AdamW with linear warmup and decay; Sanh et al. 2019, DistilBERT):
    freeze_embeddings: bool = False  # nn.Embedding weights stay as they are (no optimizer state over the vocab)
    dropout: bool = True  # False: train in eval mode (no dropout), as when matching a teacher's outputs
    warmup_frac: float = 0.0  # > 0: AdamW, linear warmup over this fraction of the steps, then linear decay to 0
    weight_decay: float = 0.0
    layer_distill: LayerDistillData | None = None  # quantization-aware distillation's data and objective (None: not offered)
