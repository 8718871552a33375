"""The Compressor seam: a compressor turns a Variant into a new Variant.

    compress(variant, task, config, out_dir) -> Variant

Every output variant records its lineage (parent id, compressor name, typed frozen config),
its size on disk and gzipped, parameter count and sparsity, embedding vs dense MB, and
its task accuracy measured from its own outputs. Calibration and fine-tuning data come
from the task, never from the compressor.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from odbench.core.onnx_tools import gzip_size, ort_run_fn, quantized_ops, quantized_summary, weight_stats
from odbench.core.records import Variant, sha256_file

RunFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]


class CompressionError(RuntimeError):
    """A compressor cannot apply to this model (the reason says why)."""


class Task(Protocol):
    """What a compressor may use of a model: its held-out metric and real calibration samples.

    Zoo models give one through ``models.base.ZooTask``; a user's ONNX file through
    ``compressors.fidelity.OnnxFidelityTask`` (fidelity to its fp32 outputs).
    """

    name: str

    def evaluate(self, run: RunFn) -> dict[str, float]: ...

    def calibration_feeds(self, n: int) -> list[dict[str, np.ndarray]]: ...

    def tuning_metric(self, run: RunFn) -> float:
        """One fast, higher-is-better number for accuracy-aware tuning loops."""
        ...


class Compressor(Protocol):
    name: str
    Config: type  # a frozen dataclass with defaults

    def compress(self, variant: Variant, task: Task, config: Any, out_dir: Path) -> Variant: ...


# ------------------------------------------------------------------ shared helpers


def refuse_if_quantized(variant: Variant) -> None:
    """Quantizers leave an already-quantized graph alone (issue 24): quantizing int8 again only loses
    fidelity (a dynamic-int8 MiniLM quantized again kept cosine 0.917 to its own outputs)."""
    ops = quantized_ops(variant.path)
    if ops:
        raise CompressionError(f"{quantized_summary(ops)}: not quantized again; the file as-is is the baseline")


def config_dict(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def cache_key(parent: Variant, compressor: str, config: Any, code_version: int) -> str:
    """Parent file, compressor, config and code; for a zoo baseline also its folder (named by the model's
    config and code version), so a change in how the model's data or metrics are defined rebuilds its variants."""
    root = Path(parent.path).parent.parent.name if parent.parent is None and parent.config.get("model") else None
    payload = json.dumps({"parent": parent.sha256, "compressor": compressor, "config": config_dict(config), "code": code_version,
                          **({"root": root} if root else {})}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def finalize(parent: Variant, onnx_path: Path, name: str, compressor: str, config: Any, task: Task,
             notes: Sequence[str] = (), extra: Mapping[str, Any] | None = None) -> Variant:
    """Check the file, measure everything a variant records, save variant.json next to it."""
    import onnx

    onnx.checker.check_model(str(onnx_path))

    run = ort_run_fn(onnx_path)
    tuning = getattr(task, "tuning_accuracy", None)  # fidelity on the tuning split: what selection may read
    tuning_accuracy = tuning(run) if tuning is not None else None
    accuracy = task.evaluate(run)  # the evaluation split, read once, to report
    ws = weight_stats(onnx_path)
    tuned_on = getattr(task, "tuned_on", None)  # the split calibration/tuning/fine-tuning data came from
    extra = {**dict(extra or {}), **({"tuned_on": tuned_on()} if tuned_on else {}),
             **({"tuning_accuracy": tuning_accuracy} if tuning_accuracy else {})}
    variant = Variant(
        id=f"{parent.model}/{name}",
        model=parent.model,
        path=str(onnx_path.resolve()),
        sha256=sha256_file(onnx_path),
        size_bytes=onnx_path.stat().st_size,
        params=ws["params"],
        parent=parent.id,
        compressor=compressor,
        config={**config_dict(config), **dict(extra or {})},
        accuracy=accuracy,
        scenarios=parent.scenarios,
        notes=tuple(notes),
        gzip_bytes=gzip_size(onnx_path),
        sparsity=ws["sparsity"],
        embedding_mb=ws["embedding_mb"],
        dense_mb=ws["dense_mb"],
    )
    variant.save(onnx_path.parent / "variant.json")
    return variant


def cached(out_dir: Path) -> Variant | None:
    meta = out_dir / "variant.json"
    return Variant.load(meta) if meta.exists() else None


def output(parent: Variant, suffix: str, compressor: str, config: Any, code_version: int,
           out_dir: Path) -> tuple[str, Path, Variant | None]:
    """The new variant's name (``parent+suffix``; a baseline's name is dropped), its folder keyed by
    content hash, and the variant already built there, if any (a cache hit)."""
    base = parent.id.split("/", 1)[1]
    name = suffix if base in ("fp32", "as-is") else f"{base}+{suffix}"
    folder = out_dir / f"{name}-{cache_key(parent, compressor, config, code_version)}"
    return name, folder, cached(folder)


def fresh_dir(out_dir: Path) -> Path:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    return out_dir
