"""The encoder's int8 Pareto front on ONNX Runtime: for each weight format (with or without
SmoothQuant), one sensitivity scan, then the model with the k most sensitive MatMuls kept fp32
for each k asked; fidelity on the tuning split (what selection may read: cosine and top-10 overlap,
models/encoder.py ``tuning_accuracy``) and, reported only, on the evaluation split; speed as p50 at
batch 1 over the real query feeds, 1 and 2 threads, the variants
interleaved round by round so that load drifts hit them alike.

    odbench int8-front --k 0 6 12 --rounds 5            # build, evaluate, time
    odbench int8-front --time-only --rounds 20           # re-time on a quiet machine

Timing on a shared machine is noisy: the table says which threads it used, and the ratio to
fp32 (measured interleaved) is the figure to compare.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odbench.compressors.int8_graph import (
    WeightFormat,
    activation_absmax,
    quantizable_matmuls,
    quantize_nodes,
    smooth,
)
from odbench.compressors.mixed import _session, output_cosine, sensitivity_scan
from odbench.core.feeds import load_feeds
from odbench.models.base import ZooTask, cache_dir
from odbench.models.encoder import EncoderModel


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


def _ort_runner(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda feed: sess.run(None, feed)


def _ov_runner(path: Path, threads: int):
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda feed: request.infer(feed)


RUNNERS = {"onnxruntime": _ort_runner, "openvino": _ov_runner}


def interleaved_p50(paths: dict[str, Path], feeds, runtime: str, threads: int, rounds: int) -> dict[str, float]:
    """p50 ms per model; each round runs every model over all feeds, in a rotated order, so that
    load drifts on a shared machine hit every model alike. A model the runtime cannot load gets NaN."""
    runners = {}
    for label, path in paths.items():
        try:
            runners[label] = RUNNERS[runtime](path, threads)
        except Exception as exc:  # noqa: BLE001 - the table says which could not run
            print(f"# {runtime}: {label} cannot run: {str(exc)[:200]}", flush=True)
    labels = list(runners)
    samples: dict[str, list[float]] = {k: [] for k in labels}
    for run in runners.values():  # warm-up: every feed once
        for f in feeds:
            run(f)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[: r % len(labels)]:
            run = runners[label]
            for f in feeds:
                t0 = time.perf_counter()
                run(f)
                samples[label].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(samples[k])) if k in samples else float("nan") for k in paths}


def build_front(out: Path, ks, candidates, log=print, evaluate: bool = True) -> None:
    """Write fp32 and each candidate at each k to ``out``, with fidelity.json (label -> metrics, file)."""
    import onnx


    model = EncoderModel()
    cache = cache_dir()
    base = model.build(cache, log=lambda m: None)
    task = ZooTask(model, cache)
    fp32 = onnx.load(base.path)
    samples = task.calibration_feeds(64)
    calib, held = samples[:32], samples[32:]
    ref_run = _session(fp32)
    reference = [ref_run(f) for f in held]
    out.mkdir(parents=True, exist_ok=True)
    front = {"fp32": {"file": base.path, "scan_cosine": 1.0, "tuning_cosine": 1.0, "tuning_top10_overlap": 1.0, **base.accuracy}}
    for cand in CANDIDATES:
        if candidates and cand.label not in candidates:
            continue
        m = onnx.ModelProto()
        m.CopyFrom(fp32)
        targets = quantizable_matmuls(m)
        if cand.alpha is not None:
            targets = smooth(m, targets, activation_absmax(m, sorted({t.x for t in targets}), calib), cand.alpha)
        ranking = sensitivity_scan(m, targets, cand.fmt, held, reference)
        by_name = {t.node: t for t in targets}
        log(f"# {cand.label}: most sensitive {[n for n, _ in ranking[:8]]}")
        for k in ks:
            q = quantize_nodes(m, [by_name[n] for n, _ in ranking[k:]], cand.fmt)
            label = f"{cand.label}, {k} fp32"
            path = out / (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".onnx")
            onnx.save(q, str(path))
            run = _session(q)
            tuning = {f"tuning_{k_}": v for k_, v in task.tuning_accuracy(run).items()}
            front[label] = {"file": str(path), "scan_cosine": output_cosine(run, held, reference), **tuning,
                            **(task.evaluate(run) if evaluate else {})}
            log(f"# {label}: {front[label]}")
            (out / "fidelity.json").write_text(json.dumps(front, indent=1))


def time_front(out: Path, runtimes, rounds: int) -> str:
    """The Markdown table: p50 at 1 and 2 threads per runtime (and x fp32), cosine, top-10 overlap."""

    front = json.loads((out / "fidelity.json").read_text())
    feeds = load_feeds(EncoderModel().feeds("query", cache_dir()).path)
    paths = {k: Path(v["file"]) for k, v in front.items()}
    p50 = {(rt, t): interleaved_p50(paths, feeds, rt, t, rounds) for rt in runtimes for t in (1, 2)}
    head = "".join(f" {rt} p50 ms {t} thr (x fp32) |" for rt in runtimes for t in (1, 2))
    lines = [f"| variant |{head} scan cosine (tuning) | tuning cosine / top-10 | evaluation cosine | evaluation top-10 overlap |",
             "|---|" + "---|" * (2 * len(runtimes) + 4)]
    for label, f in front.items():
        cells = "".join(f" {p50[(rt, t)][label]:.2f} ({p50[(rt, t)]['fp32'] / p50[(rt, t)][label]:.2f}x) |"
                        for rt in runtimes for t in (1, 2))
        task = f"{f['cosine']:.4f} | {f['top10_overlap']:.3f}" if "cosine" in f else "- | -"
        tune = f"{f['tuning_cosine']:.4f} / {f['tuning_top10_overlap']:.3f}" if "tuning_cosine" in f else "-"
        lines.append(f"| {label} |{cells} {f['scan_cosine']:.4f} | {tune} | {task} |")
    return "\n".join(lines)
