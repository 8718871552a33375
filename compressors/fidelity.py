"""The task for a user's own ONNX file given without an evaluation set: accuracy is fidelity to its fp32
outputs on the generated (or user-given) feeds, since we know nothing else about the model.

The feeds are split in two halves: compressors calibrate and tune on the second half and fidelity is
measured on the first, so no variant is scored on the inputs it was calibrated on. The feeds are still
synthetic (or whatever the user gave): for task accuracy on real rows, give an evaluation set
(``--eval eval.yaml``, models/user_task.py), whose calibration reads its tuning rows only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from odbench.core.feeds import embedding_vocab, load_feeds, synthetic_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Feeds
from odbench.runtimes.ort import OnnxRuntime


class OnnxFidelityTask:
    def __init__(self, fp32_path: str | Path, feeds: Feeds, n_eval: int = 32):
        self.name = Path(fp32_path).stem
        self.path = str(fp32_path)
        self._tuning_reference = None
        if feeds.path:
            self.feeds = load_feeds(feeds.path)
        else:
            sess = OnnxRuntime().open(str(fp32_path), 1, OnnxRuntime.Options())
            self.feeds = synthetic_feeds(sess.inputs, dict(feeds.dims), feeds.int_low, feeds.int_high,
                                         max(feeds.count, 2 * n_eval), feeds.seed + 1,
                                         vocab=embedding_vocab(fp32_path))
        n = len(self.feeds)
        n_eval = min(n_eval, max(1, n // 2))
        self.eval_feeds = self.feeds[:n_eval]
        # one feed only: nothing to hold out, and tuned_on says so
        self.tuning_feeds = self.feeds[n_eval:] or self.feeds[:n_eval]
        run = ort_run_fn(fp32_path)
        self.reference = [[np.asarray(o, dtype=np.float64) for o in run(f)] for f in self.eval_feeds]

    def evaluate(self, run) -> dict[str, float]:
        cos, diff = [], 0.0
        for feed, ref in zip(self.eval_feeds, self.reference):
            for out, r in zip(run(feed), ref):
                out = np.asarray(out, dtype=np.float64)
                if out.dtype.kind != "f" or out.shape != r.shape:
                    continue
                a, b = out.reshape(len(out), -1) if out.ndim > 1 else out[None], r.reshape(len(r), -1) if r.ndim > 1 else r[None]
                na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
                ok = (na > 0) & (nb > 0)
                cos.extend((np.sum(a * b, axis=1)[ok] / (na[ok] * nb[ok])).tolist())
                diff = max(diff, float(np.max(np.abs(out - r))) if out.size else 0.0)
        return {"fidelity_cosine": float(np.mean(cos)) if cos else float("nan"), "max_abs_diff": diff}

    def calibration_feeds(self, n: int):
        return [self.tuning_feeds[i % len(self.tuning_feeds)] for i in range(n)]

    def tuning_metric(self, run) -> float:
        """Mean output cosine to fp32 on the tuning half of the feeds (not the ones ``evaluate`` reads)."""
        if self._tuning_reference is None:
            ref = ort_run_fn(self.path)
            self._tuning_reference = [[np.asarray(o, dtype=np.float64) for o in ref(f)] for f in self.tuning_feeds]
        saved = self.eval_feeds, self.reference
        try:
            self.eval_feeds, self.reference = self.tuning_feeds, self._tuning_reference
            return self.evaluate(run)["fidelity_cosine"]
        finally:
            self.eval_feeds, self.reference = saved

    def tuned_on(self) -> dict:
        held_out = len(self.feeds) > 1
        return {"split": "feeds[n_eval:]" if held_out else "feeds (a single feed: nothing held out)",
                "n": len(self.tuning_feeds), "unit": "synthetic or given feeds, not task data"}
