"""A user's ONNX model on the user's evaluation set: the task the compressors tune on and the
runs are scored with, with the same metrics and paired intervals as the zoo (models/metrics.py).

* ranking: AUC with DeLong's interval (and paired DeLong delta), per-user nDCG@k with a paired
  bootstrap over users;
* retrieval: recall@k, MRR and nDCG@k per query (cosine of pooled embeddings, ties pessimistic),
  paired bootstrap over queries;
* classification: accuracy (paired bootstrap over rows) and macro-F1 (bootstrap of the metric).

Every figure is computed from the outputs of the ``run`` it is given, on the **test** part only;
``calibration_feeds`` and ``tuning_metric`` read the **tuning** part only, and ``tuned_on`` records
it. The fp32 reference (for the paired deltas) is the user's own file on ONNX Runtime.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from odbench.core.feeds import save_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.models import metrics as M
from odbench.models.base import split_record
from odbench.models.user_data import EvalData, EvalError
from odbench.models.user_feeds import Featurizer, run_rows, run_texts

PRIMARY = {"ranking": "auc", "retrieval": "ndcg@{k}", "classification": "macro_f1"}
OUTPUT_KIND = {"ranking": "ranking", "retrieval": "embedding", "classification": "values"}


def retrieval_per_query(q: np.ndarray, d: np.ndarray, relevant: list[np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Per-query recall@k, reciprocal rank and binary nDCG@k of cosine scores, any number of relevant
    documents per query. Ties are pessimistic: at equal scores, irrelevant documents rank first."""
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    dn = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    scores = qn @ dn.T
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    rec, rr, ndcg = [], [], []
    for i, rel_idx in enumerate(relevant):
        rel = np.zeros(scores.shape[1], dtype=bool)
        rel[rel_idx] = True
        order = np.lexsort((rel, -scores[i]))  # by descending score, irrelevant first among ties
        hits = rel[order]
        first = int(np.argmax(hits))
        rec.append(hits[:k].sum() / rel.sum())
        rr.append(1.0 / (first + 1))
        ideal = discount[: min(k, int(rel.sum()))].sum()
        ndcg.append(float(hits[:k] @ discount[: len(hits[:k])]) / ideal)
    return {f"recall@{k}": np.asarray(rec, dtype=np.float64), "mrr": np.asarray(rr), f"ndcg@{k}": np.asarray(ndcg)}


class UserTask:
    """compressors.base.Task for a user's model + evaluation set, and the model object that
    verdicts/accuracy.py evaluates per runtime (``evaluate(run, cache)``, ``primary_metric``)."""

    def __init__(self, onnx_path: str | Path, data: EvalData, name: str | None = None):
        self.path, self.data, self.spec = str(onnx_path), data, data.spec
        self.name = name or Path(onnx_path).stem
        self.fz = Featurizer(onnx_path, data)
        self.k = self.spec.k
        self.primary_metric = PRIMARY[self.spec.task].format(k=self.k)
        self.fidelity_metric = None
        self.output_kind = OUTPUT_KIND[self.spec.task]
        self.batch = self.spec.eval_batch or (1 if self.spec.text else 256)
        if self.spec.task == "classification":
            self._init_classes()

    def _init_classes(self) -> None:
        y = self.data.rows[self.spec.columns.label]
        if self.spec.classes is not None:
            index = {str(c): i for i, c in enumerate(self.spec.classes)}
            unknown = sorted(set(y.astype(str)) - set(index))
            if unknown:
                raise EvalError(f"{self.data.path}: label {unknown[0]!r} is not in 'classes'")
            self.labels = y.astype(str).map(index).to_numpy(np.int64)
        elif y.dtype.kind in "iu":
            self.labels = y.to_numpy(np.int64)
        else:
            raise EvalError(f"{self.data.path}: label column {self.spec.columns.label!r} holds text; list 'classes' in logit order")

    # ---------------------------------------------------------------- raw outputs of a part

    def _rows(self, part: str):
        return self.data.rows.iloc[self.data.ids(part)]

    def raw(self, run, part: str) -> dict:
        """What the metrics need from ``run``'s outputs on ``part`` ('tuning' or 'test')."""
        task = self.spec.task
        if task == "retrieval":
            return self._retrieval_raw(run, part)
        rows = self._rows(part)
        if self.spec.text:
            out = run_texts(self.fz, run, rows[self.spec.columns.text].tolist(), self.batch)
        else:
            out = run_rows(self.fz, run, rows, self.batch)
        if task == "ranking":
            if out.reshape(len(rows), -1).shape[1] != 1:
                raise EvalError(f"{self.data.path}: a ranking model must give one score per row; output is {out.shape}")
            return {"scores": out.reshape(-1).astype(np.float64)}
        if out.ndim != 2 or out.shape[1] < 2:
            raise EvalError(f"{self.data.path}: a classifier must give [rows, classes] logits; output is {out.shape}")
        if self.labels.max() >= out.shape[1] or self.labels.min() < 0:
            raise EvalError(f"{self.data.path}: labels run from {self.labels.min()} to {self.labels.max()}, "
                            f"but the model gives {out.shape[1]} logits")
        return {"pred": out.argmax(axis=1)}

    @cached_property
    def _corpus_ids(self) -> tuple[np.ndarray, list[str]]:
        r = self.spec.retrieval
        return self.data.documents[r.doc_id].astype(str).to_numpy(), self.data.documents[self.spec.columns.text or "text"].tolist()

    def _relevant(self, part: str) -> list[np.ndarray]:
        r = self.spec.retrieval
        q = self.data.queries.iloc[self.data.ids(part)]
        pos = {d: i for i, d in enumerate(self._corpus_ids[0])}
        qr = self.data.qrels
        if "relevance" in qr.columns:
            qr = qr[qr["relevance"] > 0]
        by_q = qr.groupby(qr[r.query_id].astype(str))[r.doc_id].apply(lambda s: np.array([pos[str(x)] for x in s]))
        return [by_q[str(qid)] for qid in q[r.query_id]]

    def _retrieval_raw(self, run, part: str) -> dict:
        q = self.data.queries.iloc[self.data.ids(part)]
        texts = q[self.spec.columns.text or "text"].tolist()
        qe = run_texts(self.fz, run, texts, self.batch)
        de = run_texts(self.fz, run, self._corpus_ids[1], self.batch)
        return {"per_query": retrieval_per_query(qe, de, self._relevant(part), self.k)}

    # ---------------------------------------------------------------- metrics

    def metrics(self, raw: dict, base: dict | None, part: str = "test") -> dict[str, float]:
        task, out = self.spec.task, {}
        if task == "ranking":
            rows = self._rows(part)
            y = rows[self.spec.columns.label].to_numpy().astype(int)
            s = raw["scores"]
            out.update(M.with_intervals("auc", M.delong_intervals(y, s, None if base is None else base["scores"])))
            group = rows[self.spec.columns.group or self.spec.columns.user].to_numpy()
            nd, ids = M.ndcg_per_group(group, y, s, self.k)
            nd_base = None
            if base is not None:
                nb, ids_b = M.ndcg_per_group(group, y, base["scores"], self.k)
                assert np.array_equal(ids, ids_b)
                nd_base = nb
            out.update(M.with_intervals(f"ndcg@{self.k}", M.bootstrap_mean(nd, nd_base, seed=1)))
        elif task == "retrieval":
            for i, (name, v) in enumerate(raw["per_query"].items()):
                b = None if base is None else base["per_query"][name]
                out.update(M.with_intervals(name, M.bootstrap_mean(v, b, seed=i)))
        else:
            y, pred = self.labels[self.data.ids(part)], raw["pred"]
            out.update(M.with_intervals("accuracy", M.bootstrap_mean((pred == y).astype(float),
                                                                     None if base is None else (base["pred"] == y).astype(float))))
            classes = np.unique(y)
            f1 = M.bootstrap_metric(lambda a, b: M.macro_f1(a, b, classes), (y, pred), None if base is None else (y, base["pred"]), seed=1)
            out.update(M.with_intervals("macro_f1", f1))
            if base is not None:
                out.update(M.with_intervals("agreement", M.bootstrap_mean((pred == base["pred"]).astype(float), seed=2)))
        return out

    @cached_property
    def reference(self) -> dict:
        """The user's fp32 file's raw outputs on the test part, on ONNX Runtime: the paired deltas' baseline."""
        return self.raw(ort_run_fn(self.path), "test")

    def evaluate(self, run, cache: Path | None = None) -> dict[str, float]:
        """Task metrics [95% CI] of ``run``'s outputs on the test part, and paired deltas vs the fp32 file."""
        return self.metrics(self.raw(run, "test"), self.reference)

    # ---------------------------------------------------------------- tuning part only

    def tuning_metric(self, run, cache: Path | None = None) -> float:
        """The primary metric's point value on the tuning part (never the test part)."""
        raw = self.raw(run, "tuning")
        if self.spec.task == "ranking":
            y = self._rows("tuning")[self.spec.columns.label].to_numpy().astype(int)
            return float(M.delong(y, raw["scores"])[0][0])
        if self.spec.task == "retrieval":
            return float(raw["per_query"][self.primary_metric].mean())
        y = self.labels[self.data.ids("tuning")]
        return M.macro_f1(y, raw["pred"], np.unique(y))

    def calibration_feeds(self, n: int, cache: Path | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` feeds of the timing scenario's shape, from tuning rows (queries) only."""
        return self.feeds("tuning", n)

    def tuned_on(self, cache: Path | None = None) -> dict:
        rec = split_record("tuning", self.data.ids("tuning"))
        unit = "queries" if self.spec.task == "retrieval" else "rows"
        return {**rec, "unit": unit, "eval": self.data.path.name, "eval_sha256": self.data.sha256, "rule": self.spec.split.rule}

    # ---------------------------------------------------------------- timing feeds

    def feeds(self, part: str, n: int) -> list[dict[str, np.ndarray]]:
        """``n`` feeds of the declared timing scenario from ``part``'s rows: ``candidates`` rows of one
        user per feed (ranking), else ``batch`` rows (texts) per feed; cycled when there are fewer."""
        t = self.spec.timing
        if self.spec.task == "retrieval":
            q = self.data.queries.iloc[self.data.ids(part)][self.spec.columns.text or "text"].tolist()
            return [self.fz.text_feed([q[(i * t.batch + j) % len(q)] for j in range(t.batch)]) for i in range(n)]
        rows = self._rows(part)
        if self.spec.task == "ranking" and t.candidates:
            groups = [g for _, g in rows.groupby(self.spec.columns.user, sort=True)]
            picks = []
            for i in range(n):
                g = groups[i % len(groups)]
                picks.append(g.iloc[np.arange(t.candidates) % len(g)])
        else:
            picks = [rows.iloc[np.arange(i * t.batch, (i + 1) * t.batch) % len(rows)] for i in range(n)]
        if self.spec.text:
            return [self.fz.text_feed(p[self.spec.columns.text].tolist()) for p in picks]
        return [self.fz.rows_feed(p) for p in picks]

    @property
    def scenario(self) -> str:
        t = self.spec.timing
        if self.spec.task == "ranking" and t.candidates:
            return f"rank-{t.candidates}"
        return f"{self.spec.task}-b{t.batch}"

    @property
    def items_per_inference(self) -> int:
        t = self.spec.timing
        return t.candidates if self.spec.task == "ranking" and t.candidates else t.batch

    def write_timing_feeds(self, out_dir: Path) -> Path:
        """The timing feeds (test rows, like the zoo's) in an .npz keyed by the eval set's content."""
        path = (Path(out_dir) / f"eval-{self.data.sha256[:12]}-{self.scenario}.npz").resolve()
        if not path.exists():
            save_feeds(self.feeds("test", self.spec.timing.count), path)
        return path
