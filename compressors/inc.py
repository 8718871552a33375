"""Int8 quantization through Intel Neural Compressor 3.7.1 (the last release with its
ONNX Runtime adaptor: the 2.x ``quantization.fit`` API with ``PostTrainingQuantConfig``).

* ``approach="dynamic"``: weights int8, activations quantized at run time.
* ``approach="static"``: QDQ, calibrated on real task samples (``calibration_samples``).
* accuracy-aware tuning: INC evaluates each candidate with the task's own tuning metric and
  falls back sensitive ops to fp32 until the relative loss is within ``tolerance``
  (default 1%), for at most ``max_trials``. INC 3.7.1's ``basic`` strategy tries op-type-wise configs
  first, then block fallback, and only then one op at a time (strategy/basic.py), so a few trials
  never reach op-wise fallback on a transformer; compressors/mixed.py gets there by its sensitivity order.
  When the goal cannot be met we say so in the variant's notes and keep the best candidate seen.

ISA: INC picks ``reduce_range = not VNNI`` from the CPU it runs on (adaptor/onnxrt.py), so its
output used to depend on the build host. We pass ``reduce_range`` from ``target_isa`` instead
(``"host"`` resolves to this CPU's int8 class, compressors/isa.py) and record ``target_isa`` and
``weight_bits``, which the cache key then includes.

Why INC 3.7.1 and not onnx-neural-compressor 1.0: on the real MiniLM, 3.7.1's default
dynamic int8 kept top-10 overlap 0.85 against 0.68 (measured on an AVX-512 VNNI EPYC; README, "Compressed variants").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output, refuse_if_quantized
from odbench.compressors.int8_graph import quantizable_matmuls
from odbench.compressors.isa import resolve_target, weight_bits_for
from odbench.core.records import Variant

CODE_VERSION = 3  # 3: records the MatMuls left in fp32


@dataclass(frozen=True)
class IncConfig:
    approach: Literal["dynamic", "static"] = "dynamic"
    tolerance: float = 0.01  # relative loss of the task's tuning metric
    tune: bool = True  # accuracy-aware tuning; False = INC's default recipe, no fallback
    max_trials: int = 8
    calibration_samples: int = 64
    timeout_s: int = 0  # 0 = no limit besides max_trials
    target_isa: str = "host"  # "host" | "x86-vnni" | "x86-avx2" | "arm": sets reduce_range (7-bit weights on x86-avx2)
    op_types: tuple[str, ...] = ()  # quantize only these op types (others fp32 via op_type_dict); () = INC's choice
    float_outputs: tuple[str, ...] = ()  # op types whose outputs stay float (INC recipe optypes_to_exclude_output_quant)


def variant_name(config: IncConfig) -> str:
    """A name per distinct recipe, e.g. int8-static, int8-static-matmul-fout, int8-dyn-tuned: two configs of one
    model must never share a variant id (cell ids, tables and variants.json are keyed by it)."""
    name = "int8-" + ("dyn" if config.approach == "dynamic" else "static")
    name += "".join(f"-{op.lower()}" for op in config.op_types) + ("-fout" if config.float_outputs else "")
    return name + ("-tuned" if config.tune else "")


class _Loader:
    """The minimal dataloader INC's ONNX Runtime adaptor iterates: (inputs dict, label) pairs."""

    def __init__(self, feeds):
        self.feeds = list(feeds)
        self.batch_size = 1

    def __iter__(self):
        for f in self.feeds:
            yield f, 0

    def __len__(self):
        return len(self.feeds)


def _session_run(model_proto):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return lambda feed: sess.run(None, dict(feed))


def _fp32_except(model, op_types) -> dict:
    """INC's op_type_dict keeping every op type of the graph in fp32 except ``op_types``. For ONNX
    Runtime static int8 on CPU, ``("MatMul",)`` leaves MatMul outputs in float: the QDQ pair on the
    inputs alone is the pattern ORT fuses into MatMulIntegerToFloat (its QDQ selector/action
    transformers), instead of ~60 extra Q/DQ passes around LayerNorm, Gelu and Add at batch 1."""
    fp32 = {"weight": {"dtype": ["fp32"]}, "activation": {"dtype": ["fp32"]}}
    return {op: fp32 for op in sorted({n.op_type for n in model.graph.node}) if op not in op_types}


class IncQuant:
    name = "inc-int8"
    Config = IncConfig

    def compress(self, variant: Variant, task: Task, config: IncConfig, out_dir: Path) -> Variant:
        import onnx

        refuse_if_quantized(variant)  # before the cache: an int8 graph is never quantized again
        target = resolve_target(config.target_isa)
        config = replace(config, target_isa=target)  # the cache key holds the resolved ISA, never "host"
        bits = weight_bits_for(target)
        name, out_dir, hit = output(variant, variant_name(config), self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        try:
            from neural_compressor import PostTrainingQuantConfig, quantization
            from neural_compressor.config import AccuracyCriterion, TuningCriterion
        except ImportError as exc:
            raise CompressionError(f"neural-compressor 3.7.1 is not installed ({exc})") from None
        logging.getLogger("neural_compressor").setLevel(logging.WARNING)

        fp32 = onnx.load(variant.path)
        seen: list[tuple[float, object]] = []

        def eval_func(model) -> float:
            proto = getattr(model, "model", model)
            score = float(task.tuning_metric(_session_run(proto)))
            seen.append((score, proto))
            return score

        kwargs = {}
        if config.approach == "static":
            kwargs["calib_dataloader"] = _Loader(task.calibration_feeds(config.calibration_samples))
        conf = PostTrainingQuantConfig(
            approach=config.approach,
            op_type_dict=_fp32_except(fp32, config.op_types) if config.op_types else None,
            recipes={"optypes_to_exclude_output_quant": list(config.float_outputs)} if config.float_outputs else {},
            reduce_range=bits == 7,
            quant_format="QDQ" if config.approach == "static" else "default",
            calibration_sampling_size=[config.calibration_samples] if config.approach == "static" else [100],
            accuracy_criterion=AccuracyCriterion(criterion="relative", tolerable_loss=config.tolerance, higher_is_better=True),
            tuning_criterion=TuningCriterion(max_trials=config.max_trials if config.tune else 1, timeout=config.timeout_s),
        )
        import tempfile

        from neural_compressor.utils.utility import set_workspace

        t0 = time.perf_counter()
        # INC writes its tuning history and intermediate models to ./nc_workspace by default; keep them out of the cwd.
        with tempfile.TemporaryDirectory(prefix="odbench-inc-") as workspace:
            set_workspace(workspace)
            q = quantization.fit(fp32, conf, eval_func=eval_func if config.tune else None, **kwargs)
        tune_s = time.perf_counter() - t0
        notes = []
        baseline = seen[0][0] if seen else None
        if q is None:
            if len(seen) < 2:
                raise CompressionError("INC produced no quantized model")
            best_score, best = max(seen[1:], key=lambda s: s[0])
            notes.append(f"accuracy goal NOT met: {config.tolerance:.1%} relative loss; kept the best of {len(seen) - 1} "
                         f"candidates ({best_score:.4f} vs fp32 {baseline:.4f})")
            proto = best
        else:
            proto = getattr(q, "model", q)
            if config.tune and baseline is not None:
                notes.append(f"accuracy goal met within {len(seen) - 1} candidate(s): "
                             f"tuning metric {seen[-1][0]:.4f} vs fp32 {baseline:.4f}")
        path = fresh_dir(out_dir) / "model.onnx"
        onnx.save(proto, str(path))
        if config.approach == "static":
            notes.append(f"calibrated on {config.calibration_samples} real task samples")
        return finalize(variant, path, name, self.name, config, task, notes=tuple(notes),
                        extra={"weight_bits": bits, "tuning_s": round(tune_s, 1), "candidates_evaluated": max(0, len(seen) - 1),
                               "fp32_matmuls": [t.node for t in quantizable_matmuls(proto)],
                               "tuning_baseline": baseline})
