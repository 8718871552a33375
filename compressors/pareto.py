"""The encoder's int8 Pareto front on ONNX Runtime: for each weight format (with or without
SmoothQuant), one sensitivity scan, then the model with the k most sensitive MatMuls kept fp32
for each k asked; fidelity from the zoo task's own evaluation (200 real queries x 1,500 real
reviews), speed as p50 at batch 1 over the real query feeds, 1 and 2 threads, the variants
interleaved round by round so that load drifts hit them alike.

    python -m compressors.pareto --k 0 2 4 6 8 --rounds 5

Timing on a shared machine is noisy: the table says which threads it used, and the ratio to
fp32 (measured interleaved) is the figure to compare.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from bench.feeds import load_feeds
from compressors.int8_graph import WeightFormat, activation_absmax, quantizable_matmuls, quantize_nodes, smooth
from compressors.mixed import _session, sensitivity_scan


@dataclass(frozen=True)
class Candidate:
    label: str
    fmt: WeightFormat
    alpha: float | None


CANDIDATES = (
    Candidate("s8 per-channel", WeightFormat(8, True, True), None),
    Candidate("s7 per-channel (reduce_range)", WeightFormat(7, True, True), None),
    Candidate("s7 per-channel + SQ0.7", WeightFormat(7, True, True), 0.7),
    Candidate("u8 asym per-channel + SQ0.7", WeightFormat(8, True, False), 0.7),
)


def _timed_sessions(models: dict, threads: int):
    import onnxruntime as ort

    out = {}
    for label, model in models.items():
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        out[label] = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return out


def interleaved_p50(models: dict, feeds, threads: int, rounds: int) -> dict[str, float]:
    """p50 ms per model; each round runs every model over all feeds, in a rotated order."""
    sessions = _timed_sessions(models, threads)
    labels = list(sessions)
    samples: dict[str, list[float]] = {k: [] for k in labels}
    for s in sessions.values():  # warm-up: every feed once
        for f in feeds:
            s.run(None, f)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            sess = sessions[label]
            for f in feeds:
                t0 = time.perf_counter()
                sess.run(None, f)
                samples[label].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in samples.items()}


def main(argv=None) -> int:
    import onnx

    from models.base import ZooTask, cache_dir
    from models.encoder import EncoderModel

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[0, 2, 4, 6, 8])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--candidates", nargs="*", help="labels to run (default: all)")
    args = ap.parse_args(argv)
    model = EncoderModel()
    cache = cache_dir()
    base = model.build(cache, log=lambda m: None)
    task = ZooTask(model, cache)
    fp32 = onnx.load(base.path)
    samples = task.calibration_feeds(64)
    calib, held = samples[:32], samples[32:]
    ref_run = _session(fp32)
    reference = [ref_run(f) for f in held]
    models, fidelity = {"fp32": fp32}, {"fp32": base.accuracy}
    for cand in CANDIDATES:
        if args.candidates and cand.label not in args.candidates:
            continue
        m = onnx.ModelProto()
        m.CopyFrom(fp32)
        targets = quantizable_matmuls(m)
        if cand.alpha is not None:
            targets = smooth(m, targets, activation_absmax(m, sorted({t.x for t in targets}), calib), cand.alpha)
        ranking = sensitivity_scan(m, targets, cand.fmt, held, reference)
        by_name = {t.node: t for t in targets}
        print(f"# {cand.label}: most sensitive {[n for n, _ in ranking[:8]]}", flush=True)
        for k in args.k:
            q = quantize_nodes(m, [by_name[n] for n, _ in ranking[k:]], cand.fmt)
            label = f"{cand.label}, {k} fp32"
            models[label], fidelity[label] = q, task.evaluate(_session(q))
            print(f"# {label}: {fidelity[label]}", flush=True)
    feeds = load_feeds(model.feeds("query", cache).path)
    p1 = interleaved_p50(models, feeds, 1, args.rounds)
    p2 = interleaved_p50(models, feeds, 2, args.rounds)
    print("| variant | p50 ms 1 thr | x fp32 | p50 ms 2 thr | x fp32 | cosine | top-10 overlap |")
    print("|---|---|---|---|---|---|---|")
    for label in models:
        f = fidelity[label]
        print(f"| {label} | {p1[label]:.2f} | {p1['fp32'] / p1[label]:.2f} | {p2[label]:.2f} | {p2['fp32'] / p2[label]:.2f} "
              f"| {f['cosine']:.4f} | {f['top10_overlap']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
