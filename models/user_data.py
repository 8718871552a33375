"""A user's own evaluation set: a small YAML file (``eval.yaml``) pointing at Parquet, CSV or JSONL rows.

Three task shapes (see docs/your-data.md):

* ``ranking``: rows of (user, item, label) plus the model's input columns (``inputs``: model input ->
  column); optional ``group`` (default: the user column) and ``time`` columns for a per-user time split.
* ``retrieval``: ``queries``, ``documents`` (id + text) and ``qrels`` (query id, document id).
* ``classification``: ``text`` (with a local tokenizer) or feature columns, plus a ``label`` column.

Rows are split into a *tuning* part (calibration, op-wise tuning) and a *test* part (read to report) by a
seeded rule: a given split column, time (the latest rows test), or a hash of the group key. The split
unit is the row, the group (e.g. user) or the query. Every problem is one line (``EvalError``): the CLI
prints it and exits 2. Feeds are built in models/user_feeds.py; metrics in models/user_task.py.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class EvalError(ValueError):
    """A problem with a user's evaluation set: one line, naming the file and what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    id: str | None = None  # a row id column (default: the row's position in the file)
    user: str | None = None
    item: str | None = None
    label: str | None = None
    group: str | None = None  # split unit and nDCG group (ranking: default the user column)
    time: str | None = None
    text: str | None = None


class TextSpec(_Strict):
    tokenizer: str  # a local Hugging Face tokenizer folder (holding tokenizer.json) or a tokenizer.json file
    max_len: int = Field(128, gt=0)
    pooling: Literal["mean", "cls", "pooled"] = "mean"  # token-level outputs [batch, seq, dim] only


class SplitSpec(_Strict):
    rule: Literal["column", "time", "hash"] = "hash"
    column: str | None = None  # rule 'column': the column holding tuning_value / test_value
    tuning_value: str = "tuning"
    test_value: str = "test"
    test_fraction: float = Field(0.5, gt=0, lt=1)
    seed: int = 0


class TimingSpec(_Strict):
    """The timing scenario: ``candidates`` rows of one user per inference (ranking), else ``batch`` rows."""

    batch: int = Field(1, gt=0)
    candidates: int | None = Field(None, gt=0)
    count: int = Field(16, gt=0)  # distinct feeds the timing cycles through


class RetrievalFiles(_Strict):
    queries: str
    documents: str
    qrels: str
    query_id: str = "query_id"
    doc_id: str = "doc_id"


class EvalSpec(_Strict):
    task: Literal["ranking", "retrieval", "classification"]
    data: str | None = None  # ranking / classification rows
    retrieval: RetrievalFiles | None = None
    columns: Columns = Columns()
    inputs: dict[str, str | list[str]] = {}  # tabular: model input name -> column (or columns, stacked)
    text: TextSpec | None = None
    output: str | int = 0  # the model output that is scored (name or index)
    classes: list[str | int] | None = None  # classification: the label of each logit, in order
    k: int = Field(10, gt=0)
    eval_batch: int | None = Field(None, gt=0)  # rows per evaluation call (default: 1 for text, 256 for tables)
    split: SplitSpec = SplitSpec()
    timing: TimingSpec = TimingSpec()

    @model_validator(mode="after")
    def _shape(self) -> "EvalSpec":
        c = self.columns
        if self.task == "retrieval":
            if self.retrieval is None or self.text is None:
                raise ValueError("task 'retrieval' needs 'retrieval' (queries, documents, qrels) and 'text' (tokenizer)")
        elif self.data is None:
            raise ValueError(f"task {self.task!r} needs 'data' (a Parquet, CSV or JSONL file)")
        if self.task == "ranking" and not (c.user and c.item and c.label and self.inputs):
            raise ValueError("task 'ranking' needs columns user, item, label and 'inputs' (model input -> column)")
        if self.task == "classification":
            if not c.label:
                raise ValueError("task 'classification' needs columns.label")
            if bool(self.text) == bool(self.inputs):
                raise ValueError("task 'classification' needs either 'text' (with columns.text) or 'inputs', not both")
            if self.text and not c.text:
                raise ValueError("'text' needs columns.text")
        if self.split.rule == "column" and not self.split.column:
            raise ValueError("split rule 'column' needs split.column")
        if self.split.rule == "time" and not c.time:
            raise ValueError("split rule 'time' needs columns.time")
        return self


def _one_line(err: ValidationError, path: Path) -> str:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    more = f" (+{len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{path}: {('field ' + repr(loc) + ': ') if loc else ''}{e['msg']}{more}"


def load_spec(path: str | Path) -> EvalSpec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise EvalError(f"cannot read evaluation file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise EvalError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise EvalError(f"{path}: expected a mapping, got {type(data).__name__}")
    try:
        return EvalSpec.model_validate(data)
    except ValidationError as err:
        raise EvalError(_one_line(err, path)) from None


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A Parquet, CSV or JSONL file (by suffix) as a DataFrame."""
    if not path.exists():
        raise EvalError(f"{what} file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]) if path.suffix in (".gz", ".brotli") else path.suffix
    try:
        if ".parquet" in suffix:
            df = pd.read_parquet(path)
        elif ".csv" in suffix:
            df = pd.read_csv(path)
        elif ".jsonl" in suffix or ".json" in suffix:
            df = pd.read_json(path, lines=True)
        else:
            raise EvalError(f"{what} file {path}: unknown format {path.suffix!r} (use .parquet, .csv or .jsonl)")
    except EvalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's error becomes one line
        raise EvalError(f"cannot read {what} file {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if df.empty:
        raise EvalError(f"{what} file {path} holds no rows")
    return df.reset_index(drop=True)


def need_columns(df: pd.DataFrame, cols, where: str) -> None:
    missing = [c for c in cols if c is not None and c not in df.columns]
    if missing:
        raise EvalError(f"{where}: missing column {missing[0]!r} (columns: {', '.join(map(str, df.columns[:12]))})")


def _unit_hash(keys: pd.Series, seed: int) -> np.ndarray:
    """A uniform [0, 1) value per key, stable across machines and runs (sha256 of 'seed:key')."""
    cache: dict = {}
    out = np.empty(len(keys))
    for i, k in enumerate(keys.astype(str)):
        if k not in cache:
            cache[k] = int.from_bytes(hashlib.sha256(f"{seed}:{k}".encode()).digest()[:8], "big") / 2**64
        out[i] = cache[k]
    return out


def split_rows(df: pd.DataFrame, split: SplitSpec, group: str | None, time: str | None, where: str) -> np.ndarray:
    """A boolean mask, True for test rows, by the seeded rule."""
    if split.rule == "column":
        need_columns(df, [split.column], where)
        values = df[split.column].astype(str)
        bad = sorted(set(values) - {split.tuning_value, split.test_value})
        if bad:
            raise EvalError(f"{where}: split column {split.column!r} holds {bad[0]!r}; expected "
                            f"{split.tuning_value!r} or {split.test_value!r}")
        return (values == split.test_value).to_numpy()
    if split.rule == "time":
        need_columns(df, [time], where)
        t = df[time]
        if group:  # per group: each group's latest rows are its test rows
            rank = t.groupby(df[group]).rank(method="first", pct=True)
            return (rank > 1 - split.test_fraction).to_numpy()
        return (t.rank(method="first", pct=True) > 1 - split.test_fraction).to_numpy()
    keys = df[group] if group else pd.Series(np.arange(len(df)))
    return _unit_hash(keys, split.seed) < split.test_fraction


def check_parts(test: np.ndarray, where: str, unit: str) -> None:
    n_test, n = int(test.sum()), len(test)
    if n_test == 0:
        raise EvalError(f"{where}: the split leaves the test part empty (0 of {n} {unit}); change split.test_fraction or the rule")
    if n_test == n:
        raise EvalError(f"{where}: the split leaves the tuning part empty (all {n} {unit} are test); "
                        "change split.test_fraction or the rule")


def resolve_tokenizer(spec: TextSpec, base: Path) -> Path:
    p = (base / spec.tokenizer).resolve()
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.exists():
        raise EvalError(f"tokenizer path {spec.tokenizer!r} does not exist (looked for {p}); "
                        "give a local tokenizer folder or tokenizer.json")
    return p


@dataclass(frozen=True)
class EvalData:
    """The loaded rows and their split. ``rows`` (ranking, classification) or ``queries``/``documents``/
    ``qrels`` (retrieval); ``test`` marks the test rows (queries for retrieval). Row ids are positions."""

    spec: EvalSpec
    path: Path
    sha256: str  # of the YAML file and every data file it names: keys caches and records
    rows: pd.DataFrame | None = None
    queries: pd.DataFrame | None = None
    documents: pd.DataFrame | None = None
    qrels: pd.DataFrame | None = None
    test: np.ndarray | None = None
    tokenizer: Path | None = None

    @property
    def base(self) -> Path:
        return self.path.parent

    def ids(self, part: str) -> np.ndarray:
        """The row (or query) positions of ``part`` ('tuning' or 'test')."""
        mask = self.test if part == "test" else ~self.test
        return np.flatnonzero(mask)


def _files_sha(path: Path, spec: EvalSpec) -> str:
    h = hashlib.sha256(path.read_bytes())
    names = [spec.data] if spec.data else [spec.retrieval.queries, spec.retrieval.documents, spec.retrieval.qrels]
    for name in names:
        f = path.parent / name
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()


def _check_labels(y: pd.Series, where: str, col: str) -> None:
    classes = y.dropna().unique()
    if len(classes) < 2:
        raise EvalError(f"{where}: label column {col!r} has one class ({classes[0]!r} only); "
                        f"a task metric needs at least two" if len(classes) else f"{where}: label column {col!r} is empty")
    if y.isna().any():
        raise EvalError(f"{where}: label column {col!r} has {int(y.isna().sum())} missing values")


def _load_rows(spec: EvalSpec, base: Path) -> tuple[pd.DataFrame, np.ndarray]:
    path = base / spec.data
    df = read_table(path, "data")
    c = spec.columns
    cols = [c.id, c.user, c.item, c.label, c.group, c.time, c.text]
    for v in spec.inputs.values():
        cols += [v] if isinstance(v, str) else list(v)
    need_columns(df, cols, str(path))
    _check_labels(df[c.label], str(path), c.label)
    if spec.task == "ranking":
        labels = set(pd.unique(df[c.label]))
        if not labels <= {0, 1, True, False}:
            raise EvalError(f"{path}: ranking label column {c.label!r} must be 0/1, found {sorted(labels, key=str)[:5]}")
    group = c.group or (c.user if spec.task == "ranking" else None)
    # the hash rule's key: the group (e.g. user), else the row id column, else the row's position
    test = split_rows(df, spec.split, group or (c.id if spec.split.rule == "hash" else None), c.time, str(path))
    check_parts(test, str(path), "rows")
    for part, mask in (("test", test), ("tuning", ~test)):
        if spec.task == "ranking" and df.loc[mask, c.label].nunique() < 2:
            raise EvalError(f"{path}: the {part} part's label column {c.label!r} has one class; AUC needs both")
    return df, test


def _load_retrieval(spec: EvalSpec, base: Path):
    r = spec.retrieval
    text = spec.columns.text or "text"
    q = read_table(base / r.queries, "queries")
    d = read_table(base / r.documents, "documents")
    qr = read_table(base / r.qrels, "qrels")
    need_columns(q, [r.query_id, text], str(base / r.queries))
    need_columns(d, [r.doc_id, text], str(base / r.documents))
    need_columns(qr, [r.query_id, r.doc_id], str(base / r.qrels))
    for df, col, what in ((q, r.query_id, "queries"), (d, r.doc_id, "documents")):
        dup = df[col][df[col].duplicated()]
        if len(dup):
            raise EvalError(f"{what} file: id {dup.iloc[0]!r} appears more than once in column {col!r}")
    docs, qids = set(d[r.doc_id].astype(str)), set(q[r.query_id].astype(str))
    for i, (qid, did) in enumerate(zip(qr[r.query_id].astype(str), qr[r.doc_id].astype(str))):
        if did not in docs:
            raise EvalError(f"{base / r.qrels}: row {i} names document {did!r}, which is not in the documents file")
        if qid not in qids:
            raise EvalError(f"{base / r.qrels}: row {i} names query {qid!r}, which is not in the queries file")
    judged = set(qr[r.query_id].astype(str))
    q = q[q[r.query_id].astype(str).isin(judged)].reset_index(drop=True)  # a query without a relevant document scores nothing
    if q.empty:
        raise EvalError(f"{base / r.queries}: no query has a qrels entry")
    split_df = q.rename(columns={r.query_id: "_qid"})
    test = split_rows(split_df, spec.split, "_qid" if spec.split.rule == "hash" else None, spec.columns.time, str(base / r.queries))
    check_parts(test, str(base / r.queries), "queries")
    return q, d, qr, test


def load_eval(path: str | Path) -> EvalData:
    """Read and check ``eval.yaml`` and its files; split them. Raises EvalError (one line)."""
    path = Path(path).resolve()
    spec = load_spec(path)
    base = path.parent
    tok = resolve_tokenizer(spec.text, base) if spec.text else None
    sha = _files_sha(path, spec)
    if spec.task == "retrieval":
        q, d, qr, test = _load_retrieval(spec, base)
        return EvalData(spec, path, sha, queries=q, documents=d, qrels=qr, test=test, tokenizer=tok)
    rows, test = _load_rows(spec, base)
    return EvalData(spec, path, sha, rows=rows, test=test, tokenizer=tok)
