"""The hook that lets training compressors (structured pruning with fine-tune, distillation)
work on a torch model: the zoo's, or yours.

Give a ``TorchTask``::

    TorchTask(
        module=my_trained_model,                      # the fp32 teacher, eval mode
        batches=lambda steps, batch, seed: ...,       # yields (inputs tuple, labels or None), real data
        loss=lambda student, teacher, inputs, labels, temperature, alpha: ...,  # objective (scalar tensor)
        export=lambda module, path: ...,              # write ONNX with the same inputs/outputs as the baseline
        prunable=lambda module: [(producer, consumer), ...],  # nn.Linear pairs around a hidden layer
        make_student=lambda teacher, width, depth: ...,       # a smaller model, ideally initialised from the teacher
    )

and pass it with the baseline Variant and a ``Task`` (the metric) to
``StructuredPrune`` or ``Distill``. Zoo models build theirs in ``torch_task(cache)``.
"""
from __future__ import annotations

from odbench.core.records import TorchTask


def train(student, task: TorchTask, steps: int, batch: int, seed: int = 0, lr: float | None = None,
          temperature: float = 2.0, alpha: float = 0.5) -> list[float]:
    """A short training loop: ``steps`` batches of the task's objective. Returns the loss curve.

    Embedding tables with sparse gradients get SparseAdam; everything else Adam, or AdamW with a
    warmup-then-linear-decay schedule when ``task.warmup_frac > 0``. ``task.freeze_embeddings``
    and ``task.dropout`` as documented on TorchTask.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    teacher = task.module.eval()
    embeddings = [m.weight for m in student.modules() if isinstance(m, nn.Embedding)]
    if task.freeze_embeddings:
        for w in embeddings:
            w.requires_grad_(False)
    sparse = [w for m in student.modules() if isinstance(m, nn.Embedding) and m.sparse and (w := m.weight).requires_grad]
    dense = [p for p in student.parameters() if p.requires_grad and all(p is not s for s in sparse)]
    rate = lr or task.lr
    if task.warmup_frac > 0:
        opts = [torch.optim.AdamW(dense, lr=rate, weight_decay=task.weight_decay)]
        warm = max(1, int(steps * task.warmup_frac))
        schedules = [torch.optim.lr_scheduler.LambdaLR(
            opts[0], lambda i: (i + 1) / warm if i < warm else max(0.0, (steps - i) / max(1, steps - warm)))]
    else:
        opts, schedules = [torch.optim.Adam(dense, lr=rate)], []
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=rate))
    student.train(task.dropout)
    losses = []
    for inputs, labels in task.batches(steps, batch, seed):
        loss = task.loss(student, teacher, inputs, labels, temperature, alpha)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        for sch in schedules:
            sch.step()
        losses.append(float(loss.detach()))
    student.eval()
    return losses


def training_record(task: TorchTask, steps: int, batch: int, losses: list[float], seconds: float) -> dict:
    """What a trained variant records about its training: the optimiser setup, the data, the cost."""
    return {"train_steps": steps, "train_batch": batch, "lr": task.lr, "optimizer": "AdamW" if task.warmup_frac > 0 else "Adam",
            "warmup_frac": task.warmup_frac, "weight_decay": task.weight_decay, "freeze_embeddings": task.freeze_embeddings,
            "dropout": task.dropout, "loss_first": round(losses[0], 5) if losses else None,
            "loss_last": round(losses[-1], 5) if losses else None, "train_s": round(seconds, 1)}
