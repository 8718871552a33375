"""The zoo's seam: a ZooModel builds its fp32 ONNX baseline, writes real-sample feeds
for each scenario it supports, and evaluates any variant from that variant's own outputs."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from odbench.core.onnx_tools import RunFn, gzip_size, weight_stats
from odbench.core.records import Variant, sha256_file
from odbench.models import get_model
from odbench.models.metrics import check_finite


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str


SCENARIOS: dict[str, Scenario] = {
    "query": Scenario("query", "one real search query (a review title) at batch 1, each at its own token length"),
    "rank-50": Scenario("rank-50", "one user x 50 candidate items (on-device re-rank)"),
    "rank-200": Scenario("rank-200", "one user x 200 candidate items (on-device re-rank)"),
    "rank-500": Scenario("rank-500", "one user x 500 candidate items (on-device re-rank)"),
    "classify": Scenario("classify", "one real customer message (a review) routed at batch 1, each at its own token length"),
    "offline": Scenario("offline", "a large batch: indexing product texts or scoring a candidate pool"),
    "synthetic": Scenario("synthetic", "feeds generated from a user model's input signature"),
}


@dataclass(frozen=True)
class FeedSet:
    path: Path
    items_per_inference: int


class ZooModel(Protocol):
    name: str
    description: str
    scenarios: tuple[str, ...]
    output_kind: str  # what the first output means, for parity checks: "embedding" | "ranking"

    def load_torch(self, cache_dir: Path):
        """The fp32 torch module, taking the ONNX inputs in order, positionally (runtimes/torch_eager.py)."""
        ...

    def build(self, cache_dir: Path) -> Variant:
        """Train/load, export the fp32 ONNX baseline, check parity, measure accuracy. Cached."""
        ...

    def feeds(self, scenario: str, cache_dir: Path) -> FeedSet: ...

    def evaluate(self, run: RunFn, cache_dir: Path) -> dict[str, float]:
        """Task accuracy computed from ``run``'s outputs on held-out data."""
        ...


@dataclass(frozen=True)
class ZooTask:
    """A zoo model bound to its cache folder: the compressors' view of it (compressors.base.Task)."""

    model: Any
    cache: Path

    @property
    def name(self) -> str:
        return self.model.name

    def evaluate(self, run: RunFn) -> dict[str, float]:
        return self.model.evaluate(run, self.cache)

    def calibration_feeds(self, n: int) -> list[dict[str, np.ndarray]]:
        return self.model.calibration_feeds(n, self.cache)

    def tuning_metric(self, run: RunFn) -> float:
        return self.model.tuning_metric(run, self.cache)

    def tuning_accuracy(self, run: RunFn) -> dict[str, float] | None:
        """The fidelity figures selection reads, on the tuning split (None when the model has none)."""
        fn = getattr(self.model, "tuning_accuracy", None)
        return fn(run, self.cache) if fn is not None else None

    def tuned_on(self) -> dict:
        """The split compressors' calibration, tuning and fine-tuning data come from (``split_record``)."""
        return self.model.tuned_on(self.cache)


def split_record(split: str, ids: np.ndarray) -> dict:
    """What a variant records about the data it was tuned (or trained) on: the split's name,
    its size and a sha256 of its sorted example ids, so disjointness can be checked later."""
    ids = np.sort(np.asarray(ids, dtype=np.int64))
    return {"split": split, "n": int(len(ids)), "sha256": hashlib.sha256(ids.tobytes()).hexdigest()}


def cache_dir(default: str | Path = "artifacts") -> Path:
    return Path(os.environ.get("ODBENCH_CACHE", default)).resolve()


def config_hash(config: Any, code_version: int) -> str:
    payload = json.dumps({"config": asdict(config), "code": code_version}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def make_variant(model: str, name: str, onnx_path: Path, scenarios: Sequence[str], **fields: Any) -> Variant:
    ws = weight_stats(onnx_path)
    return Variant(
        id=f"{model}/{name}",
        model=model,
        path=str(onnx_path.resolve()),
        sha256=sha256_file(onnx_path),
        size_bytes=onnx_path.stat().st_size,
        params=ws["params"],
        scenarios=tuple(scenarios),
        gzip_bytes=gzip_size(onnx_path),
        sparsity=ws["sparsity"],
        embedding_mb=ws["embedding_mb"],
        dense_mb=ws["dense_mb"],
        **fields,
    )


def auc_logloss(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    p = np.clip(check_finite(probs, "probabilities"), 1e-7, 1 - 1e-7)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both classes")
    ranks = rankdata(p)
    auc = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    logloss = -np.mean(np.where(y, np.log(p), np.log1p(-p)))
    return {"auc": float(auc), "logloss": float(logloss)}


# Next to a zoo fp32 model.onnx: a factory that rebuilds it as a torch module, for the PyTorch eager
# runtime (runtimes/torch_eager.py). Compressed variants have none: they exist only as ONNX.
TORCH_SIDECAR = "torch_module.json"


def write_torch_sidecar(model, onnx_dir: Path, cache: Path) -> None:
    onnx_dir.mkdir(parents=True, exist_ok=True)
    path = onnx_dir / TORCH_SIDECAR
    data = {"factory": "odbench.models.base:zoo_torch_module",
            "kwargs": {"zoo_model": model.name, "config": asdict(model.config),
                       "cache": os.path.relpath(Path(cache).resolve(), onnx_dir.resolve())}}
    if not path.exists() or json.loads(path.read_text()) != data:
        path.write_text(json.dumps(data, indent=1))


def zoo_torch_module(onnx_dir: Path, zoo_model: str, config: dict, cache: str):
    """The torch module of a zoo model built with ``config`` in ``cache`` (relative to ``onnx_dir``)."""

    model = get_model(zoo_model)
    model = type(model)(type(model.config)(**config))
    return model.load_torch((Path(onnx_dir) / cache).resolve())
