"""Feeds: real-sample feed files, and synthetic feeds derived from an input signature.

Feed files are ``.npz`` archives with keys ``"<index>/<input name>"``, so feeds may
differ in shape (e.g. one query per sequence length).

Synthetic feeds (for a user's own ONNX file) follow its input signature:
  * a fixed dimension keeps its size;
  * a symbolic dimension takes the size given with ``--dim NAME=SIZE``; otherwise
    ``1`` on axis 0 (the batch) and ``DEFAULT_SYMBOLIC_DIM`` (32) elsewhere;
  * floats are standard normal, integers uniform in [int_low, int_high), bools are random;
  * transformer-shaped integer inputs follow their role, read from the name (the Hugging Face
    tokenizer convention: https://huggingface.co/docs/transformers/glossary): ``*mask*`` all ones,
    ``token_type_ids``/``segment*`` zeros, ``position_ids`` 0..seq-1; an integer input that indexes
    an embedding table (a Gather on an initializer, found by ``embedding_vocab``) draws from
    [int_low, rows of that table) whatever ``int_high`` says, so ids are always in the vocabulary;
  * everything is seeded, so the same spec gives the same feeds.

``text_feeds`` builds real feeds instead: one per line of a text file, through a tokenizer.json.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from odbench.core.onnx_tools import onnx_signature
from odbench.core.records import TensorSpec

DEFAULT_SYMBOLIC_DIM = 32
DEFAULT_BATCH = 1
FEED_RULES = 2  # bump when the synthetic rules change (feed files are cached by it)


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


def input_role(name: str) -> str:
    """'mask' | 'token_type' | 'position' | 'data', from an input's name."""
    low = name.lower()
    if "mask" in low:
        return "mask"
    if "token_type" in low or "segment" in low:
        return "token_type"
    if "position" in low:
        return "position"
    return "data"


_PASS_THROUGH = ("Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity")


def embedding_vocab(onnx_path: str | Path) -> dict[str, int]:
    """Graph inputs that index an embedding table (Gather axis 0 on an initializer, possibly through
    Cast/Reshape/Unsqueeze), mapped to the table's row count."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    rows = {i.name: int(i.dims[0]) for i in model.graph.initializer if len(i.dims) >= 1}
    consumers: dict[str, list] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    vocab: dict[str, int] = {}
    for graph_input in model.graph.input:
        frontier, seen = [graph_input.name], set()
        while frontier:
            name = frontier.pop()
            for n in consumers.get(name, []):
                if id(n) in seen:
                    continue
                seen.add(id(n))
                axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
                if n.op_type == "Gather" and n.input[1] == name and axis == 0 and n.input[0] in rows:
                    vocab[graph_input.name] = min(vocab.get(graph_input.name, rows[n.input[0]]), rows[n.input[0]])
                elif n.op_type in _PASS_THROUGH and n.input[0] == name:
                    frontier.append(n.output[0])
    return vocab


def _integers(rng, spec: TensorSpec, shape, int_low: int, int_high: int, vocab: Mapping[str, int]) -> np.ndarray:
    role = input_role(spec.name)
    if role == "mask":
        return np.ones(shape, dtype=spec.dtype)
    if role == "token_type":
        return np.zeros(shape, dtype=spec.dtype)
    if role == "position" and len(shape) >= 1:
        return np.broadcast_to(np.arange(shape[-1]), shape).astype(spec.dtype)
    high = vocab[spec.name] if spec.name in vocab else int_high
    return rng.integers(int_low, max(high, int_low + 1), size=shape).astype(spec.dtype)


def synthetic_feeds(
    inputs: Sequence[TensorSpec], dims: Mapping[str, int], int_low: int, int_high: int, count: int, seed: int,
    vocab: Mapping[str, int] | None = None,
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
                feed[spec.name] = _integers(rng, spec, shape, int_low, int_high, vocab or {})
            elif dt.kind == "b" and input_role(spec.name) == "mask":
                feed[spec.name] = np.ones(shape, dtype=bool)
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
        arrays = synthetic_feeds(inputs, dict(feeds.dims), feeds.int_low, feeds.int_high, feeds.count, feeds.seed,
                                 vocab=embedding_vocab(variant.path))
    except Exception as exc:  # noqa: BLE001
        log(f"[feeds] {variant.id}: cannot derive feeds from its signature ({type(exc).__name__}: {str(exc)[:200]})")
        return feeds
    key = hashlib.sha1(json.dumps([FEED_RULES, variant.sha256, list(feeds.dims), feeds.int_low, feeds.int_high, feeds.count,
                                   feeds.seed]).encode()).hexdigest()[:16]
    path = save_feeds(arrays, Path(out_dir) / f"synthetic-{key}.npz")
    return dataclasses.replace(feeds, path=str(path.resolve()))


def text_feeds(text_path: str | Path, tokenizer_path: str | Path, inputs: Sequence[TensorSpec],
               max_len: int = 128, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Real feeds at batch 1: one per non-empty line of ``text_path``, tokenised with a Hugging Face
    ``tokenizer.json`` (no padding, truncated to ``max_len``). Inputs are filled by role: the ids,
    the attention mask (ones), token type ids (zeros), position ids (0..n-1)."""
    from tokenizers import Tokenizer

    lines = [ln.strip() for ln in Path(text_path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise FeedError(f"text file {text_path} holds no lines")
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    ids_inputs = [s for s in inputs if input_role(s.name) == "data"]
    if len(ids_inputs) != 1 or np.dtype(ids_inputs[0].dtype).kind not in "iu":
        raise FeedError(f"--text needs exactly one integer token-id input; the model has {[s.name for s in inputs]}")
    feeds = []
    for line in lines[:limit]:
        ids = np.asarray(tok.encode(line).ids, dtype=np.int64)[None, :]
        feed = {}
        for spec in inputs:
            if spec is ids_inputs[0]:
                feed[spec.name] = ids.astype(spec.dtype)
            else:
                feed[spec.name] = _integers(None, spec, ids.shape, 0, 1, {})
        feeds.append(feed)
    return feeds
