"""How a user's rows become model feeds (models/user_data.py loads and splits them).

* Tabular: ``inputs`` maps each model input to a column (or a list of columns, stacked as
  [rows, k]); each column's dtype is checked against the input's dtype in the ONNX signature
  (integers fit integer or float inputs; floats fit float inputs only; text fits neither).
* Text: a local Hugging Face ``tokenizer.json`` (nothing is downloaded); each batch is padded to
  its longest text (pad id 0, mask 0). Inputs are filled by role (core.feeds.input_role): token
  ids, attention mask, token type ids (zeros), position ids.
* Pooling of a token-level output [batch, seq, dim]: ``mean`` over the attention mask, or ``cls``
  (the first token); ``pooled`` names an output that is already [batch, dim] (e.g. a model's
  ``sentence_embedding``). A 2-D output is used as it is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from odbench.core.feeds import input_role
from odbench.core.onnx_tools import onnx_signature
from odbench.models.user_data import EvalData, EvalError


def _fits(col: pd.Series, dtype: np.dtype) -> bool:
    kind = col.dtype.kind
    if dtype.kind in "iu":
        return kind in "iub"
    if dtype.kind == "f":
        return kind in "iubf"
    if dtype.kind == "b":
        return kind == "b"
    return False


class Featurizer:
    """Rows (or texts) -> feeds for one ONNX model, checked against its signature at construction."""

    def __init__(self, onnx_path: str | Path, data: EvalData):
        self.data, self.spec = data, data.spec
        self.inputs, self.outputs = onnx_signature(str(onnx_path))
        self.where = str(data.path)
        if self.spec.text is not None:
            self._init_text()
        else:
            self._check_tabular(data.rows)
        self.output_index = self._output_index()

    # ---------------------------------------------------------------- tabular

    def _check_tabular(self, df: pd.DataFrame) -> None:
        names = {s.name for s in self.inputs}
        unknown = sorted(set(self.spec.inputs) - names)
        if unknown:
            raise EvalError(f"{self.where}: inputs names {unknown[0]!r}, which the model does not have (its inputs: {sorted(names)})")
        unmapped = [s.name for s in self.inputs if s.name not in self.spec.inputs]
        if unmapped:
            raise EvalError(f"{self.where}: model input {unmapped[0]!r} has no column (add it under 'inputs')")
        for spec in self.inputs:
            cols = self.spec.inputs[spec.name]
            for col in [cols] if isinstance(cols, str) else cols:
                dt = np.dtype(spec.dtype)
                if not _fits(df[col], dt):
                    raise EvalError(f"{self.where}: column {col!r} ({df[col].dtype}) does not fit model input "
                                    f"{spec.name!r} ({spec.dtype})")
                if dt.kind in "iu" and len(df) and (df[col].min() < np.iinfo(dt).min or df[col].max() > np.iinfo(dt).max):
                    raise EvalError(f"{self.where}: column {col!r} holds values outside {spec.dtype} (model input {spec.name!r})")

    def rows_feed(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """One feed of these rows (batch = len(df)), shaped to each input's rank."""
        feed = {}
        for spec in self.inputs:
            cols = self.spec.inputs[spec.name]
            dt = np.dtype(spec.dtype)
            if isinstance(cols, str):
                arr = df[cols].to_numpy().astype(dt)
                if len(spec.shape) == 2:
                    arr = arr[:, None]
                elif len(spec.shape) != 1:
                    raise EvalError(f"{self.where}: model input {spec.name!r} has rank {len(spec.shape)}; map it to a list of columns")
            else:
                arr = df[list(cols)].to_numpy().astype(dt)
                if len(spec.shape) != 2:
                    raise EvalError(f"{self.where}: model input {spec.name!r} has rank {len(spec.shape)}, a list of columns makes rank 2")
            fixed = spec.shape[1] if len(spec.shape) == 2 else None
            if isinstance(fixed, int) and fixed > 0 and arr.shape[1] != fixed:
                raise EvalError(f"{self.where}: model input {spec.name!r} takes {fixed} columns, 'inputs' gives {arr.shape[1]}")
            feed[spec.name] = np.ascontiguousarray(arr)
        return feed

    # ---------------------------------------------------------------- text

    def _init_text(self) -> None:
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(self.data.tokenizer))
        except Exception as exc:  # noqa: BLE001
            raise EvalError(f"cannot read tokenizer {self.data.tokenizer}: {str(exc).splitlines()[0][:200]}") from None
        tok.no_padding()
        tok.enable_truncation(max_length=self.spec.text.max_len)
        self.tok = tok
        ids = [s for s in self.inputs if input_role(s.name) == "data"]
        if len(ids) != 1 or np.dtype(ids[0].dtype).kind not in "iu":
            raise EvalError(f"{self.where}: a text model needs exactly one integer token-id input; the model has "
                            f"{[(s.name, s.dtype) for s in self.inputs]}")

    def text_feed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encs = self.tok.encode_batch([str(t) for t in texts])
        width = max(1, max(len(e.ids) for e in encs))
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        feed = {}
        for spec in self.inputs:
            role = input_role(spec.name)
            arr = {"data": ids, "mask": mask, "token_type": np.zeros_like(ids),
                   "position": np.broadcast_to(np.arange(width), ids.shape)}[role]
            feed[spec.name] = np.ascontiguousarray(arr.astype(np.dtype(spec.dtype)))
        return feed

    # ---------------------------------------------------------------- outputs

    def _output_index(self) -> int:
        out = self.spec.output
        names = [s.name for s in self.outputs]
        if isinstance(out, int):
            if not 0 <= out < len(names):
                raise EvalError(f"{self.where}: output {out} does not exist; the model has {len(names)} output(s) {names}")
            return out
        if out not in names:
            raise EvalError(f"{self.where}: output {out!r} is not a model output; it has {names}")
        return names.index(out)

    def pick(self, outputs: Sequence[np.ndarray], feed: dict[str, np.ndarray]) -> np.ndarray:
        """The scored output of one call, pooled to [batch, dim] (text) or flattened per row."""
        out = np.asarray(outputs[self.output_index])
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(f"the model's output {self.outputs[self.output_index].name!r} holds NaN or infinite values")
        if self.spec.text is None or out.ndim < 3:
            return out
        pooling = self.spec.text.pooling
        if pooling == "pooled":
            raise EvalError(f"{self.where}: pooling 'pooled' needs a [batch, dim] output; {self.outputs[self.output_index].name!r} "
                            f"is {out.ndim}-D (use mean or cls, or name the pooled output under 'output')")
        if pooling == "cls":
            return out[:, 0]
        mask = next((v for k, v in feed.items() if input_role(k) == "mask"), None)
        m = np.ones(out.shape[:2]) if mask is None else mask.astype(np.float64)
        return (out * m[..., None]).sum(axis=1) / np.maximum(m.sum(axis=1, keepdims=True), 1.0)


def run_rows(fz: Featurizer, run, df: pd.DataFrame, batch: int) -> np.ndarray:
    """The scored output of every (tabular) row of ``df``, in order, ``batch`` rows per call."""
    outs = []
    for s in range(0, len(df), batch):
        feed = fz.rows_feed(df.iloc[s : s + batch])
        outs.append(fz.pick(run(feed), feed))
    return np.concatenate(outs, axis=0)


def run_texts(fz: Featurizer, run, texts: Sequence[str], batch: int) -> np.ndarray:
    order = np.argsort([len(str(t)) for t in texts], kind="stable")  # similar lengths together: less padding
    out = None
    for s in range(0, len(texts), batch):
        idx = order[s : s + batch]
        feed = fz.text_feed([texts[i] for i in idx])
        y = fz.pick(run(feed), feed)
        if out is None:
            out = np.zeros((len(texts),) + y.shape[1:], dtype=np.float64)
        out[idx] = y
    return out

