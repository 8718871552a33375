"""A fused BERT-family encoder for ONNX Runtime (needs a ``TorchTask``): re-export the fp32 torch module
with eager attention, fuse it with ONNX Runtime's transformer optimizer, and optionally quantize the
fused graph.

* Why re-export: PyTorch's SDPA attention exports as a graph that neither ORT's online optimizer nor
  ``onnxruntime.transformers.optimizer`` recognises; the eager (matmul-softmax-matmul) export is the
  pattern the BERT fusions match (https://onnxruntime.ai/docs/performance/transformers-optimization.html).
* Fusion: ``optimize_model(model_type="bert")`` fuses EmbedLayerNormalization, Attention, SkipLayerNormalization
  and BiasGelu. The fused fp32 graph must give the parent's outputs within ``tolerance`` (max abs) on the
  task's calibration feeds (tuning data), else the step fails with the measured difference.
* ``quantize="dynamic"``: ONNX Runtime's ``quantize_dynamic`` on the fused graph turns Attention into
  QAttention (one dynamic int8 quantization of the layer input shared by Q, K and V) and the FFN MatMuls into
  DynamicQuantizeMatMul; weights per channel, 7-bit on x86 without VNNI (compressors/isa.py).
  ``fp32_ops`` keeps the named nodes fp32 (e.g. the FFN output MatMuls).
* ``smooth_alpha``: SmoothQuant on the fused graph before quantizing, ``1/s`` folded into the LayerNorms
  (compressors/smooth_fold.py: no ``Mul``; post-LN BERT needs a second LayerNorm per site, recorded), one ``s``
  per packed Q/K/V weight so QAttention still quantizes the layer input once for Q, K and V; statistics from
  ``calib_samples`` tuning feeds. The smoothed fp32 graph must give the fused outputs within ``smooth_tolerance``.

The variant records the fused operator counts and the fp32-vs-parent difference.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output
from odbench.compressors.int8_graph import activation_absmax
from odbench.compressors.isa import resolve_target, weight_bits_for
from odbench.compressors.smooth_fold import fold_smoothquant, smooth_sites
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import TorchTask, Variant

CODE_VERSION = 2  # 2: SmoothQuant folded into LayerNorm (smooth_alpha)


@dataclass(frozen=True)
class FusedConfig:
    quantize: str | None = None  # None: fused fp32 | "dynamic": QAttention + DynamicQuantizeMatMul on the fused graph
    target_isa: str = "host"  # resolved at build time, recorded
    weight_bits: int | None = None  # None: from the target ISA (7 on x86-avx2, else 8)
    per_channel: bool = True
    fp32_ops: tuple[str, ...] = ()  # fused-graph node names kept fp32 when quantizing
    fp32_op_types: tuple[str, ...] = ()  # or whole op types kept fp32 (e.g. "MatMul": quantize attention only)
    model_type: str = "bert"
    check_samples: int = 16
    smooth_alpha: float | None = None  # SmoothQuant migration strength, folded into the LayerNorms; None = off
    calib_samples: int = 32  # tuning feeds for the SmoothQuant statistics
    smooth_tolerance: float = 1e-4  # max abs difference of the smoothed fp32 graph vs the fused one
    tolerance: float = 1e-5  # max abs difference of the fused fp32 graph vs the parent


def set_eager_attention(module) -> tuple[int, int] | None:
    """Switch every transformers model inside ``module`` to eager attention; (heads, hidden size) of the
    first, or None when there is none."""
    shape = None
    for sub in module.modules():
        if hasattr(sub, "set_attn_implementation") and hasattr(sub, "config"):
            try:
                sub.set_attn_implementation("eager")
            except (ValueError, AttributeError):
                sub.config._attn_implementation = "eager"
            shape = shape or (int(sub.config.num_attention_heads), int(sub.config.hidden_size))
    return shape


def fuse(eager_path: Path, model_type: str, heads: int, hidden: int):
    """The optimizer's fused model (in memory) and its fused-operator counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    opt = optimize_model(str(eager_path), model_type=model_type, num_heads=heads, hidden_size=hidden, opt_level=0, use_gpu=False)
    stats = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    return opt, stats


def max_abs_diff(a_path: Path, b_path: Path, feeds) -> float:
    a, b = ort_run_fn(a_path), ort_run_fn(b_path)
    return max(float(np.max(np.abs(np.asarray(a(f)[0], np.float64) - np.asarray(b(f)[0], np.float64)))) for f in feeds)


def smooth_fused(fused: Path, task: Task, config: FusedConfig) -> dict:
    """SmoothQuant folded into the fused graph at ``fused`` (rewritten in place); what the variant records."""
    import onnx

    model = onnx.load(str(fused))
    plain = fused.with_name("unsmoothed.onnx")
    onnx.save(model, str(plain))
    xs = sorted({s.x for s in smooth_sites(model)})
    if not xs:
        raise CompressionError("no LayerNorm output feeds an Attention or MatMul weight: nothing to smooth")
    sites = fold_smoothquant(model, activation_absmax(model, xs, task.calibration_feeds(config.calib_samples)), config.smooth_alpha)
    onnx.save(model, str(fused))
    diff = max_abs_diff(plain, fused, task.calibration_feeds(config.check_samples))
    plain.unlink()
    if diff > config.smooth_tolerance:
        raise CompressionError(f"the smoothed graph is off the fused one by {diff:.2e} (max abs) > {config.smooth_tolerance:.0e}")
    return {"smoothed": [s.x for s in sites], "second_layer_norms": sum(s.duplicated for s in sites),
            "mul_ops": sum(n.op_type == "Mul" for n in model.graph.node), "smooth_max_abs_diff": diff}


def export_fused(module, torch_task: TorchTask, task: Task, config: FusedConfig, out_dir: Path,
                 reference: Path | None = None) -> tuple[Path, list[str], dict]:
    """``module`` (a torch encoder, changed in place: eager attention) exported with eager attention, fused, optionally
    smoothed and quantized per ``config`` (its ``weight_bits`` and ``target_isa`` resolved) into ``out_dir``:
    (model path, notes, record fields). The fused fp32 graph must give ``reference``'s outputs (the parent file), or,
    without one, the module's own eager export's, within ``config.tolerance`` on tuning feeds."""
    shape = set_eager_attention(module)
    if shape is None:
        raise CompressionError("no transformers model inside the torch module: nothing to export with eager attention")
    eager = out_dir / "eager.onnx"
    torch_task.export(module, eager)
    opt, stats = fuse(eager, config.model_type, *shape)
    if not stats.get("Attention"):
        raise CompressionError(f"the {config.model_type} optimizer fused no Attention (fused: {stats or 'nothing'})")
    fused = out_dir / ("model.onnx" if not config.quantize else "fused.onnx")
    opt.save_model_to_file(str(fused))
    diff = max_abs_diff(reference or eager, fused, task.calibration_feeds(config.check_samples))
    eager.unlink()
    if diff > config.tolerance:
        raise CompressionError(f"the fused graph is off its {'parent' if reference else 'eager export'} by {diff:.2e} (max abs) "
                               f"> {config.tolerance:.0e}")
    notes = [f"eager-attention export fused by onnxruntime.transformers ({', '.join(f'{k} x{v}' for k, v in stats.items())}); "
             f"max abs diff to the {'parent' if reference else 'eager export'} {diff:.1e} on {config.check_samples} tuning feeds"]
    extra: dict = {"fused_ops": stats, "fused_max_abs_diff": diff}
    if config.smooth_alpha is not None:
        smoothed = smooth_fused(fused, task, config)
        extra.update(smoothed)
        notes.append(f"SmoothQuant a={config.smooth_alpha:g} folded into {len(smoothed['smoothed'])} LayerNorms "
                     f"({smoothed['second_layer_norms']} written twice: their output is also the residual); Mul ops: "
                     f"{smoothed['mul_ops']}; max abs diff to the fused graph {smoothed['smooth_max_abs_diff']:.1e}")
    if not config.quantize:
        return fused, notes, extra
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = out_dir / "model.onnx"
    op_types = [t for t in ("Attention", "MatMul") if t not in config.fp32_op_types]
    quantize_dynamic(str(fused), str(path), weight_type=QuantType.QInt8, per_channel=config.per_channel,
                     reduce_range=config.weight_bits == 7, op_types_to_quantize=op_types, nodes_to_exclude=list(config.fp32_ops),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # contrib ops: no inferred types
    fused.unlink()
    notes.append(f"dynamic int8 on the fused graph ({'/'.join(op_types)}; {config.weight_bits}-bit weights for {config.target_isa}"
                 f"{'; fp32: ' + ', '.join(config.fp32_ops) if config.fp32_ops else ''})")
    return path, notes, extra


class FusedEncoder:
    name = "fuse-bert"
    Config = FusedConfig

    def compress(self, variant: Variant, task: Task, config: FusedConfig, out_dir: Path,
                 torch_task: TorchTask | None = None) -> Variant:
        if torch_task is None:
            raise CompressionError("fuse-bert re-exports the torch module with eager attention: it needs a TorchTask")
        if config.quantize not in (None, "dynamic"):
            raise CompressionError(f"quantize {config.quantize!r}: expected None or 'dynamic'")
        if config.quantize:
            target = resolve_target(config.target_isa)
            config = replace(config, target_isa=target, weight_bits=config.weight_bits or weight_bits_for(target))
        suffix = ("fused" + (f"-sq{config.smooth_alpha:g}" if config.smooth_alpha is not None else "")
                  + (f"-int8dyn-s{config.weight_bits}" if config.quantize else "")
                  + "".join(f"-{t.lower()}-fp32" for t in config.fp32_op_types)
                  + (f"-fp32x{len(config.fp32_ops)}" if config.fp32_ops else ""))
        name, out_dir, hit = output(variant, suffix, self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        path, notes, extra = export_fused(copy.deepcopy(torch_task.module).eval(), torch_task, task, config, fresh_dir(out_dir),
                                          reference=Path(variant.path))
        return finalize(variant, path, name, self.name, config, task, notes=tuple(notes), extra=extra)
