"""Structured pruning that really removes hidden units, so the ONNX graph gets smaller,
followed by a short fine-tune. Needs the torch model (a ``TorchTask``).

For each (producer, consumer) pair of ``nn.Linear`` layers around a hidden activation, the
hidden units with the smallest L1 norm of their producer weights are removed: the
producer loses output rows, the consumer loses input columns. On the CTR ranker that is the
MLP width; on MiniLM it is the FFN width of every layer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from odbench.compressors.base import CompressionError, Task, finalize, fresh_dir, output
from odbench.compressors.torch_hook import train, training_record
from odbench.core.records import TorchTask, Variant

CODE_VERSION = 2  # 2: the training setup (TorchTask's optimiser fields) is recorded


@dataclass(frozen=True)
class StructuredPruneConfig:
    ratio: float = 0.5  # share of hidden units removed from every prunable pair
    finetune_steps: int = 200
    batch_size: int = 64
    seed: int = 0


def _slice_linear(lin, rows=None, cols=None):
    import torch
    from torch import nn

    w = lin.weight.data
    b = lin.bias.data if lin.bias is not None else None
    if rows is not None:
        w = w[rows]
        b = b[rows] if b is not None else None
    if cols is not None:
        w = w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def _replace(root, old, new) -> None:
    for name, mod in root.named_modules():
        for child_name, child in mod.named_children():
            if child is old:
                setattr(mod, child_name, new)
                return
    raise CompressionError("could not find a prunable layer in the module tree")


def prune_pairs(module, prunable, ratio: float) -> list[str]:
    """Prune every pair ``prunable(module)`` lists; pairs may share a layer, so re-list after each."""
    import torch

    notes = []
    for i in range(len(prunable(module))):
        producer, consumer = prunable(module)[i]
        hidden = producer.out_features
        keep_n = max(1, int(round(hidden * (1 - ratio))))
        importance = producer.weight.detach().abs().sum(dim=1)
        keep = torch.sort(torch.topk(importance, keep_n).indices).values
        _replace(module, producer, _slice_linear(producer, rows=keep))
        _replace(module, consumer, _slice_linear(consumer, cols=keep))
        notes.append(f"hidden {hidden} -> {keep_n}")
    return notes


class StructuredPrune:
    name = "prune-structured"
    Config = StructuredPruneConfig

    def compress(self, variant: Variant, task: Task, config: StructuredPruneConfig, out_dir: Path,
                 torch_task: TorchTask | None = None) -> Variant:
        import copy

        if torch_task is None:
            raise CompressionError("structured pruning needs the torch model: give a TorchTask (compressors/torch_hook.py)")
        name, out_dir, hit = output(variant, f"sprune{int(round(config.ratio * 100))}", self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        student = copy.deepcopy(torch_task.module)
        before = sum(p.numel() for p in student.parameters())
        pairs = torch_task.prunable(student)
        if not pairs:
            raise CompressionError("the model has no prunable Linear pairs")
        notes = prune_pairs(student, torch_task.prunable, config.ratio)
        after = sum(p.numel() for p in student.parameters())
        t0 = time.perf_counter()
        losses = train(student, torch_task, config.finetune_steps, config.batch_size, config.seed) if config.finetune_steps else []
        record = training_record(torch_task, config.finetune_steps, config.batch_size, losses, time.perf_counter() - t0)
        path = fresh_dir(out_dir) / "model.onnx"
        torch_task.export(student, path)
        summary = f"{len(pairs)} Linear pairs pruned ({notes[0]}, ...); torch params {before} -> {after}"
        ft = f"fine-tuned {config.finetune_steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "no fine-tune"
        return finalize(variant, path, name, self.name, config, task, notes=(summary, ft),
                        extra={"torch_params_before": before, "torch_params_after": after, "training": record})
