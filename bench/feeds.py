"""Feeds: real-sample feed files, and synthetic feeds derived from an input signature.

Feed files are ``.npz`` archives with keys ``"<index>/<input name>"``, so feeds may
differ in shape (e.g. one query per sequence length).

Synthetic feeds (for a user's own ONNX file) follow its input signature:
  * a fixed dimension keeps its size;
  * a symbolic dimension takes the size given with ``--dim NAME=SIZE``; otherwise
    ``1`` on axis 0 (the batch) and ``DEFAULT_SYMBOLIC_DIM`` (32) elsewhere;
  * floats are standard normal, integers uniform in [int_low, int_high), bools are random;
  * everything is seeded, so the same spec gives the same feeds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from runtimes.base import TensorSpec, onnx_signature

DEFAULT_SYMBOLIC_DIM = 32
DEFAULT_BATCH = 1


class FeedError(ValueError):
    """A feed does not match the model's input signature."""


def save_feeds(feeds: Sequence[Mapping[str, np.ndarray]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{i}/{name}": np.ascontiguousarray(arr) for i, feed in enumerate(feeds) for name, arr in feed.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def load_feeds(path: str | Path) -> list[dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        feeds: dict[int, dict[str, np.ndarray]] = {}
        for key in z.files:
            idx, _, name = key.partition("/")
            feeds.setdefault(int(idx), {})[name] = z[key]
    if not feeds:
        raise FeedError(f"feed file {path} holds no feeds")
    return [feeds[i] for i in sorted(feeds)]


def resolve_shape(spec: TensorSpec, dims: Mapping[str, int]) -> tuple[int, ...]:
    shape = []
    for axis, d in enumerate(spec.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif isinstance(d, str) and d in dims:
            shape.append(int(dims[d]))
        else:
            shape.append(DEFAULT_BATCH if axis == 0 else DEFAULT_SYMBOLIC_DIM)
    return tuple(shape)


def synthetic_feeds(
    inputs: Sequence[TensorSpec], dims: Mapping[str, int], int_low: int, int_high: int, count: int, seed: int
) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for spec in inputs:
            shape = resolve_shape(spec, dims)
            dt = np.dtype(spec.dtype)
            if dt.kind == "f":
                feed[spec.name] = rng.standard_normal(shape).astype(dt)
            elif dt.kind in "iu":
                feed[spec.name] = rng.integers(int_low, int_high, size=shape).astype(dt)
            elif dt.kind == "b":
                feed[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
            else:
                raise FeedError(f"input {spec.name!r}: cannot synthesise dtype {spec.dtype}")
        feeds.append(feed)
    return feeds


def check_feed(feed: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec]) -> None:
    """Raise FeedError naming the input when a feed does not fit the signature."""
    expected = {s.name: s for s in inputs}
    missing = sorted(set(expected) - set(feed))
    extra = sorted(set(feed) - set(expected))
    if missing or extra:
        raise FeedError(f"feed inputs do not match the model: missing {missing}, unexpected {extra}")
    for name, spec in expected.items():
        arr = feed[name]
        if arr.ndim != len(spec.shape):
            raise FeedError(
                f"input {name!r}: rank {arr.ndim} (shape {arr.shape}) but the model expects rank "
                f"{len(spec.shape)} {list(spec.shape)}"
            )
        if np.dtype(spec.dtype) != arr.dtype:
            raise FeedError(f"input {name!r}: dtype {arr.dtype} but the model expects {spec.dtype}")
        for axis, (got, want) in enumerate(zip(arr.shape, spec.shape)):
            if isinstance(want, int) and want > 0 and got != want:
                raise FeedError(
                    f"input {name!r}: axis {axis} has size {got} but the model fixes it at {want} "
                    f"(model shape {list(spec.shape)}, feed shape {list(arr.shape)})"
                )


def materialize_feeds(variant, feeds, out_dir: Path, log=print):
    """Synthetic feeds written to an .npz once, from the file's ONNX signature, so that every
    runtime and the parity references see the same arrays. A file that cannot be read keeps
    its synthetic Feeds: its cells then fail with the reader's own error."""
    if feeds.path:
        return feeds
    try:
        inputs, _ = onnx_signature(variant.path)
        arrays = synthetic_feeds(inputs, dict(feeds.dims), feeds.int_low, feeds.int_high, feeds.count, feeds.seed)
    except Exception as exc:  # noqa: BLE001
        log(f"[feeds] {variant.id}: cannot derive feeds from its signature ({type(exc).__name__}: {str(exc)[:200]})")
        return feeds
    key = hashlib.sha1(json.dumps([variant.sha256, list(feeds.dims), feeds.int_low, feeds.int_high, feeds.count, feeds.seed]).encode()).hexdigest()[:16]
    path = save_feeds(arrays, Path(out_dir) / f"synthetic-{key}.npz")
    return dataclasses.replace(feeds, path=str(path.resolve()))
