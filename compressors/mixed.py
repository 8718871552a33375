"""Mixed-precision dynamic int8 for ONNX Runtime: quantize every constant-weight MatMul except
the few the output is most sensitive to, found by a per-layer scan on held-out samples.

1. Optional SmoothQuant (``smooth_alpha``) on the fp32 graph, statistics from ``calib_samples``
   task calibration samples (compressors/int8_graph.py).
2. Sensitivity scan: quantize ONE MatMul at a time and measure ``1 - cosine`` of the model's
   outputs against fp32 on ``scan_samples`` further calibration samples (held out from the
   smoothing statistics). The scan ranks nodes, most damaging first.
3. Fallback: keep the ``k`` most sensitive MatMuls in fp32, with ``k`` the smallest in
   ``0..max_fp32`` that meets both goals: output cosine >= ``goal_cosine`` on the scan samples
   and the task's tuning metric within ``tolerance`` (relative) of fp32's. ``k`` is found by
   bisection over the sensitivity order (so at most ~log2(max_fp32)+2 task evaluations), or
   stops at ``time_budget_s`` (keeping the smallest ``k`` known to meet the goals); when no ``k``
   meets the goals we keep ``max_fp32`` and say so. This is op-wise fallback reached in
   ``len(MatMuls)`` scan trials + ~log2(max_fp32)+2 task trials, all on the tuning split.
   INC 3.7.1's ``basic`` strategy (neural_compressor/strategy/basic.py) gets there only after its
   op-type-wise stage and block fallback, then one trial per op ("fallback one by one") and an
   accumulated pass: hundreds of trials on MiniLM, far beyond the 3 the suite's ``int8-dyn-tuned`` allows.

Weights follow the target ISA (compressors/isa.py): 7-bit on x86 without VNNI, else 8-bit;
``weight_bits`` overrides it. The variant records ``target_isa``, ``weight_bits``, the fp32
nodes and the top of the scan; the cache key covers them through the config.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from odbench.core.records import Variant
from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output, refuse_if_quantized
from odbench.compressors.int8_graph import (
    WeightFormat,
    activation_absmax,
    quantizable_matmuls,
    quantize_nodes,
    smooth,
)
from odbench.compressors.isa import resolve_target, weight_bits_for

CODE_VERSION = 2  # 2: records trials, the budget and whether it stopped the search


@dataclass(frozen=True)
class MixedInt8Config:
    target_isa: str = "host"  # "host" (resolved at build time, recorded) | "x86-vnni" | "x86-avx2" | "arm"
    weight_bits: int | None = None  # None: int8 from the target ISA (7 on x86-avx2, else 8); uint8: 8
    per_channel: bool = True
    symmetric: bool = True  # False: uint8 weights with zero points (MLAS u8u8: no saturation on AVX2)
    smooth_alpha: float | None = 0.5  # SmoothQuant migration strength; None = off
    calib_samples: int = 32
    scan_samples: int = 32
    goal_cosine: float = 0.995  # output cosine vs fp32 on the scan samples
    tolerance: float = 0.05  # relative loss of the task's tuning metric vs fp32
    max_fp32: int = 8  # most MatMuls kept in fp32
    time_budget_s: float = 300.0  # the fallback search stops here (the best so far is kept)
    fixed_fp32: int | None = None  # keep exactly this many fp32 (no search): points of a Pareto front


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda feed: sess.run(None, dict(feed))


def output_cosine(run, feeds, reference) -> float:
    """Mean row cosine of every float output against ``reference`` (lists per feed)."""
    cos = []
    for feed, ref in zip(feeds, reference):
        for out, r in zip(run(feed), ref):
            a = np.asarray(out, dtype=np.float64).reshape(max(1, len(out)), -1)
            b = np.asarray(r, dtype=np.float64).reshape(a.shape)
            na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
            ok = (na > 0) & (nb > 0)
            cos.extend((np.sum(a * b, axis=1)[ok] / (na[ok] * nb[ok])).tolist())
    return float(np.mean(cos)) if cos else float("nan")


def sensitivity_scan(model, targets, fmt: WeightFormat, feeds, reference) -> list[tuple[str, float]]:
    """(node, 1 - output cosine with only that node quantized), most sensitive first."""
    scores = [(t.node, 1.0 - output_cosine(_session(quantize_nodes(model, [t], fmt)), feeds, reference)) for t in targets]
    return sorted(scores, key=lambda s: -s[1])


class MixedInt8:
    name = "int8-mixed"
    Config = MixedInt8Config

    def compress(self, variant: Variant, task: Task, config: MixedInt8Config, out_dir: Path) -> Variant:
        import onnx

        refuse_if_quantized(variant)  # before the cache: an int8 graph is never quantized again
        target = resolve_target(config.target_isa)
        # uint8 weights take MLAS's u8u8 path, which widens to 16 bits before multiplying: no saturation anywhere
        bits = config.weight_bits or (weight_bits_for(target) if config.symmetric else 8)
        config = replace(config, target_isa=target, weight_bits=bits)  # what the cache key and record hold
        suffix = "int8-mixed" + ("-sq" if config.smooth_alpha is not None else "") + ("-s" if config.symmetric else "-u") + f"{bits}"
        name, out_dir, hit = output(variant, suffix, self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        model = onnx.load(variant.path)
        targets = quantizable_matmuls(model)
        if not targets:
            raise CompressionError("no MatMul with a constant 2-D float weight to quantize")
        fmt = WeightFormat(bits=bits, per_channel=config.per_channel, symmetric=config.symmetric)
        samples = task.calibration_feeds(config.calib_samples + config.scan_samples)
        calib, held = samples[: config.calib_samples], samples[config.calib_samples :] or samples
        fp32_run = _session(model)
        reference = [fp32_run(f) for f in held]
        if config.smooth_alpha is not None:
            act = activation_absmax(model, sorted({t.x for t in targets}), calib)
            targets = smooth(model, targets, act, config.smooth_alpha)
        ranking = sensitivity_scan(model, targets, fmt, held, reference)
        scan_s = time.perf_counter() - t0
        chosen, k, trace, met = self._fallback(model, targets, ranking, fmt, task, held, reference, variant, config, t0)
        path = fresh_dir(out_dir) / "model.onnx"
        onnx.save(chosen, str(path))
        fp32_nodes = [n for n, _ in ranking[:k]]
        notes = [f"{len(targets) - k}/{len(targets)} MatMuls int8 ({bits}-bit weights for {target}"
                 f"{', SmoothQuant a=%.2f' % config.smooth_alpha if config.smooth_alpha is not None else ''}); "
                 f"{k} kept fp32 by sensitivity: {', '.join(fp32_nodes) or 'none'}"]
        if not met:
            notes.append(f"fidelity goal NOT met with up to {config.max_fp32} fp32 MatMuls "
                         f"(cosine >= {config.goal_cosine}, tuning metric within {config.tolerance:.0%}); kept k={k}")
        trials = [t for t in trace if "fp32_matmuls" in t]
        stopped = any(t.get("stopped_by_budget") for t in trace)
        notes.append(f"tuning: {len(targets)} scan trials + {len(trials)} fallback trials on the tuning split in "
                     f"{time.perf_counter() - t0:.0f} s (budget {config.time_budget_s:.0f} s"
                     f"{', stopped by it' if stopped else ''}); fp32 ops: {', '.join(fp32_nodes) or 'none'}")
        return finalize(variant, path, name, self.name, config, task, notes=tuple(notes), extra={
            "fp32_nodes": fp32_nodes, "sensitivity_top": [[n, round(s, 6)] for n, s in ranking[:10]],
            "search": trace, "scan_trials": len(targets), "trials": len(trials), "stopped_by_budget": stopped,
            "scan_s": round(scan_s, 1), "tuning_s": round(time.perf_counter() - t0, 1)})

    def _fallback(self, model, targets, ranking, fmt, task, held, reference, variant, config, t0):
        """Bisection over k (how many of the most sensitive MatMuls stay fp32) for the smallest k
        that meets the goals; assumes damage shrinks as k grows, and records every trial."""
        by_name = {t.node: t for t in targets}
        order = [by_name[n] for n, _ in ranking]
        fp32_metric = float(task.tuning_metric(_session(model)))
        trace: list[dict] = []
        cache: dict[int, tuple[bool, object]] = {}

        def trial(k: int) -> bool:
            if k not in cache:
                m = quantize_nodes(model, order[k:], fmt)
                run = _session(m)
                cos = output_cosine(run, held, reference)
                metric = float(task.tuning_metric(run)) if cos >= config.goal_cosine else None  # skipped: already fails
                ok = metric is not None and metric >= fp32_metric * (1 - config.tolerance)
                trace.append({"fp32_matmuls": k, "scan_cosine": round(cos, 6), "tuning_metric": metric, "ok": ok})
                cache[k] = (ok, m)
            return cache[k][0]

        hi = min(config.max_fp32, len(order))
        if config.fixed_fp32 is not None:
            k = min(config.fixed_fp32, len(order))
            met = trial(k)
            return cache[k][1], k, trace, met
        if trial(0):
            return cache[0][1], 0, trace, True
        if not trial(hi):
            return cache[hi][1], hi, trace, False
        lo = 0  # fails
        while hi - lo > 1:
            if time.perf_counter() - t0 >= config.time_budget_s:
                trace.append({"stopped_by_budget": True, "bracket": [lo, hi]})  # keep hi: it meets the goals
                break
            mid = (lo + hi) // 2
            if trial(mid):
                hi = mid
            else:
                lo = mid
        trace.append({"fp32_tuning_metric": fp32_metric})
        return cache[hi][1], hi, trace, True
