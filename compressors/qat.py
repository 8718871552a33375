"""Quantization-aware distillation of a BERT-family encoder into the fused dynamic-int8 graph (needs a ``TorchTask``
with ``layer_distill``).

* Fake quantization that simulates what is deployed: ONNX Runtime's ``quantize_dynamic`` on the fused graph
  (compressors/fused.py). Every ``nn.Linear`` inside the encoder layers (Q, K, V: one QAttention; attention output,
  FFN in and out: MatMulInteger) computes ``fq_a(x / s) @ fq_w(W * s)^T + b``:
  - weights per output channel, symmetric int8: scale ``max|w| / 127``, or ``/ 64`` with ``reduce_range`` (the
    7-bit range on x86 without VNNI, compressors/isa.py), ONNX Runtime's ``quantize_data`` with the symmetric range;
  - activations per tensor (per text: deployed at batch 1), asymmetric uint8 with scale and zero point from each
    call's own min and max (range widened to hold 0), as ``DynamicQuantizeLinear`` computes them
    (https://onnx.ai/onnx/operators/onnx__DynamicQuantizeLinear.html;
    https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html), over real tokens only;
  - straight-through estimator: the rounding passes the gradient unchanged (Jacob et al. 2018, "Quantization and
    Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", sec. 3; Bengio et al. 2013);
  - ``s``: SmoothQuant (Xiao et al. 2023, eq. 4) as the fold will compute it on the fused graph
    (compressors/smooth_fold.py: one ``s`` per LayerNorm output feeding Q/K/V or the FFN input, statistics from the
    same tuning feeds), recomputed from the student at every held-out check, so the deployed graph's ``s`` is the one
    the student last trained with (within the drift of the last ``eval_every`` steps); 1 without SmoothQuant.
* Distillation against the fp32 teacher (the task's ``layer_distill``): pooled ``1 - cosine``, last-layer token MSE
  and every intermediate layer's hidden-state MSE (TinyBERT, Jiao et al. 2020, eq. 7-8; MiniLM, Wang et al. 2020),
  embeddings frozen, AdamW with linear warmup, then constant. The data is the task's pool: rows that no selection
  reads (for the encoder: neither evaluation nor the tuning metric's pairs).
* "Until the loss flattens": the loss on the pool's held-out slice (fake quantization on) every ``eval_every`` steps;
  stop when it has not improved by ``min_delta`` (relative) for ``patience`` checks, at ``max_steps``, or past
  ``time_budget_s`` (``training.stopped_by`` says which). The best
  checkpoint (the last check that improved by ``min_delta``) is exported; the curve is in the record (``training.curve``).
* Export: the fake quantization removed, the SAME fused path as ``fuse-bert`` (``export_fused``: eager export, BERT
  fusion, SmoothQuant fold, ``quantize_dynamic``, all int8). Fidelity, as for every variant, is measured against the
  original fp32 root's outputs (the task's reference), not the student's fp32.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output
from odbench.compressors.fused import FusedConfig, export_fused
from odbench.compressors.isa import resolve_target, weight_bits_for
from odbench.core.records import TorchTask, Variant

CODE_VERSION = 1


@dataclass(frozen=True)
class QatConfig:
    smooth_alpha: float | None = 0.5  # SmoothQuant folded into the LayerNorms (as fused-sq-int8dyn); None = off
    target_isa: str = "host"  # resolved at build time: 7-bit weights on x86 without VNNI
    weight_bits: int | None = None
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_steps: int = 50
    batch_size: int = 16
    max_steps: int = 2000
    eval_every: int = 100
    patience: int = 3  # held-out checks without a relative improvement of min_delta
    min_delta: float = 0.01
    time_budget_s: float | None = None  # wall-clock bound on the training loop (stops at the next held-out check past it)
    seed: int = 0
    calib_samples: int = 32  # tuning feeds for the SmoothQuant statistics (the fold's, in the export)
    check_samples: int = 16
    tolerance: float = 1e-4  # fused graph vs the student's own eager export (max abs)
    # Fused-graph MatMuls left fp32 (as fuse-bert's fp32_ops): their torch Linears are trained without fake quantization.
    fp32_ops: tuple[str, ...] = ()

    def fused(self) -> FusedConfig:
        return FusedConfig(quantize="dynamic", target_isa=self.target_isa, weight_bits=self.weight_bits, smooth_alpha=self.smooth_alpha,
                           calib_samples=self.calib_samples, check_samples=self.check_samples, tolerance=self.tolerance,
                           fp32_ops=self.fp32_ops)


def module_path(node: str) -> str:
    """The torch module a fused-graph MatMul comes from: the exporter scopes node names by module path,
    '/bert/encoder/layer.0/output/dense/MatMul' <- 'bert.encoder.layer.0.output.dense'."""
    return node.strip("/").rpartition("/")[0].replace("/", ".")


class QuantState:
    """Shared by every fake-quantized Linear of a student: whether quantization is on, and the current mask."""

    def __init__(self, weight_bits: int):
        self.on, self.mask, self.weight_bits = True, None, weight_bits


def fake_quant_activation(x, mask=None):
    """DynamicQuantizeLinear's uint8 round trip, one scale per text (per leading index; over real tokens where
    ``mask`` [batch, seq] says so), straight-through."""
    import torch

    d = x.detach()
    if mask is not None and d.dim() == 3 and tuple(mask.shape) == tuple(d.shape[:2]):
        m = mask.bool().unsqueeze(-1)
        lo = torch.where(m, d, torch.inf).amin(dim=(1, 2), keepdim=True)
        hi = torch.where(m, d, -torch.inf).amax(dim=(1, 2), keepdim=True)
    else:
        lo, hi = d.amin(), d.amax()
    lo, hi = lo.clamp(max=0), hi.clamp(min=0)
    scale = (hi - lo) / 255.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zp = torch.clamp(torch.round(-lo / scale), 0, 255)
    q = torch.clamp(torch.round(d / scale) + zp, 0, 255)
    return x + ((q - zp) * scale - d)


def fake_quant_weight(w, bits: int):
    """quantize_dynamic's per-channel symmetric int8 weight (rows of an nn.Linear weight are output channels),
    range [-127, 127], or [-64, 64] with reduce_range (7-bit), straight-through."""
    import torch

    qmax = 127 if bits == 8 else 64
    d = w.detach()
    scale = d.abs().amax(dim=1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return w + (torch.clamp(torch.round(d / scale), -qmax, qmax) * scale - d)


def make_fake_quant_linear(linear, state: QuantState):
    import torch

    class FakeQuantLinear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = linear
            self.register_buffer("smooth", torch.ones(linear.in_features))

        def forward(self, x):
            if not state.on:
                return self.linear(x)
            s = self.smooth
            xq = fake_quant_activation(x / s, state.mask)
            return torch.nn.functional.linear(xq, fake_quant_weight(self.linear.weight * s, state.weight_bits), self.linear.bias)

    return FakeQuantLinear()


def encoder_layers(module):
    bert = getattr(module, "bert", None)
    layers = getattr(getattr(bert, "encoder", None), "layer", None)
    if layers is None:
        raise CompressionError("no BERT encoder layers (module.bert.encoder.layer) to quantize-aware train")
    return layers


def wrap(module, state: QuantState, fp32: tuple[str, ...] = ()) -> list[tuple[list, object]]:
    """Every Linear of every encoder layer fake-quantized in place, but those whose module path is in ``fp32``
    (deployed fp32); the SmoothQuant sites as (the wrappers sharing one input, the wrapper whose input to hook)."""
    names = {id(m): n for n, m in module.named_modules()}
    sites = []
    for layer in encoder_layers(module):
        att = layer.attention.self
        for obj, attr in ((att, "query"), (att, "key"), (att, "value"), (layer.attention.output, "dense"),
                          (layer.intermediate, "dense"), (layer.output, "dense")):
            if names.get(id(getattr(obj, attr))) not in fp32:
                setattr(obj, attr, make_fake_quant_linear(getattr(obj, attr), state))
        sites += [([att.query, att.key, att.value], att.query), ([layer.intermediate.dense], layer.intermediate.dense)]
    return sites


def unwrap(module) -> None:
    for layer in encoder_layers(module):
        att = layer.attention.self
        for obj, attr in ((att, "query"), (att, "key"), (att, "value"), (layer.attention.output, "dense"),
                          (layer.intermediate, "dense"), (layer.output, "dense")):
            setattr(obj, attr, getattr(getattr(obj, attr), "linear", getattr(obj, attr)))


def set_smooth_scales(module, sites, state: QuantState, feeds, alpha: float | None) -> None:
    """SmoothQuant's ``s`` per site from the fp32 student's activation maxima on ``feeds`` and its weights, as
    compressors/smooth_fold.py computes it on the fused graph (clipped to [1e-4, 1e4]; 1 where either max is 0)."""
    import torch

    if alpha is None:
        return
    amax: dict[int, torch.Tensor] = {}
    hooks = [first.register_forward_pre_hook(
        lambda mod, args, k=k: amax.__setitem__(k, torch.maximum(amax.get(k, torch.zeros(args[0].shape[-1])),
                                                                args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0))))
             for k, (_, first) in enumerate(sites)]
    state.on = False
    try:
        with torch.no_grad():
            for f in feeds:
                module(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"]))
    finally:
        state.on = True
        for h in hooks:
            h.remove()
    for k, (wrappers, _) in enumerate(sites):
        a = amax[k].double()
        w = torch.stack([q.linear.weight.detach().abs().amax(0) for q in wrappers]).amax(0).double()
        s = torch.where((a > 0) & (w > 0), a**alpha / w.clamp(min=1e-8) ** (1 - alpha), torch.ones_like(a)).clamp(1e-4, 1e4)
        for q in wrappers:
            q.smooth.copy_(s.float())


def held_out_loss(student, data, state: QuantState) -> dict:
    import torch

    parts, sums = {}, {}
    with torch.no_grad():
        for inputs, targets in data.holdout():
            state.mask = inputs[1]
            data.loss(student, inputs, targets, parts)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
    n = len(data.holdout())
    return {k: round(v / n, 6) for k, v in sums.items()}


def distil(student, torch_task: TorchTask, task: Task, config: QatConfig, state: QuantState, sites, log=print) -> dict:
    """The quantization-aware distillation loop; the student ends at its best held-out checkpoint. The record."""
    import torch

    data = torch_task.layer_distill
    torch.manual_seed(config.seed)
    feeds = task.calibration_feeds(config.calib_samples)
    for p in student.bert.embeddings.parameters():
        p.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / max(1, config.warmup_steps)))
    set_smooth_scales(student, sites, state, feeds, config.smooth_alpha)
    student.eval()  # dropout off: matching a teacher
    curve = [{"step": 0, **held_out_loss(student, data, state)}]
    best, best_step, best_state, stale, window, t0 = curve[0]["total"], 0, copy.deepcopy(student.state_dict()), 0, [], time.perf_counter()
    log(f"  [qat] step 0: held-out {curve[0]}")
    step, stop = 0, "max_steps"
    for inputs, targets in data.batches(config.max_steps, config.batch_size, config.seed):
        state.mask = inputs[1]
        loss = data.loss(student, inputs, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        window.append(float(loss.detach()))
        step += 1
        if step % config.eval_every and step != config.max_steps:
            continue
        over_budget = config.time_budget_s is not None and time.perf_counter() - t0 > config.time_budget_s
        set_smooth_scales(student, sites, state, feeds, config.smooth_alpha)
        point = {"step": step, "train": round(float(np.mean(window)), 6), **held_out_loss(student, data, state),
                 "s": round(time.perf_counter() - t0, 1)}
        curve.append(point)
        window = []
        log(f"  [qat] step {step}: {point}")
        if point["total"] < best * (1 - config.min_delta):
            best, best_step, best_state, stale = point["total"], step, copy.deepcopy(student.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                stop = "plateau"
                break
        if over_budget:
            stop = "time_budget"
            break
    student.load_state_dict(best_state)  # the last check that improved on the kept one by min_delta
    return {"steps": step, "stopped_by": stop, "best_step": best_step, "best_held_out": best, "curve": curve,
            "train_s": round(time.perf_counter() - t0, 1), "lr": config.lr, "batch": config.batch_size, "optimizer": "AdamW",
            "warmup_steps": config.warmup_steps, "freeze_embeddings": True, "dropout": False, "data": data.rows}


class QatEncoder:
    name = "qat-int8"
    Config = QatConfig

    def compress(self, variant: Variant, task: Task, config: QatConfig, out_dir: Path,
                 torch_task: TorchTask | None = None, log=print) -> Variant:
        if torch_task is None or torch_task.layer_distill is None:
            raise CompressionError("quantization-aware distillation needs a TorchTask with layer_distill (its data and objective)")
        target = resolve_target(config.target_isa)
        config = replace(config, target_isa=target, weight_bits=config.weight_bits or weight_bits_for(target))
        smooth = f"-sq{config.smooth_alpha:g}" if config.smooth_alpha is not None else ""
        suffix = f"fused-qat{smooth}-int8dyn-s{config.weight_bits}" + (f"-fp32x{len(config.fp32_ops)}" if config.fp32_ops else "")
        name, out_dir, hit = output(variant, suffix, self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        student = copy.deepcopy(torch_task.module).eval()
        state = QuantState(config.weight_bits)
        sites = wrap(student, state, tuple(module_path(n) for n in config.fp32_ops))
        record = distil(student, torch_task, task, config, state, sites, log=log)
        unwrap(student)
        path, notes, extra = export_fused(student, torch_task, task, config.fused(), fresh_dir(out_dir))
        notes.insert(0, f"quantization-aware distillation: {record['steps']} steps of {config.batch_size} ({record['stopped_by']}), "
                        f"best held-out loss {record['curve'][0]['total']:.4f} -> {record['best_held_out']:.4f} "
                        f"at step {record['best_step']}")
        return finalize(variant, path, name, self.name, config, task, notes=tuple(notes), extra={**extra, "training": record})
