"""Knowledge distillation from the fp32 teacher to a smaller student (needs a ``TorchTask``).

The objective is the task's: for the CTR ranker, temperature-scaled soft targets from the
teacher plus the hard labels, ``alpha * BCE(s, y) + (1 - alpha) * T^2 * BCE(s/T, sigmoid(t/T))``;
for the encoder, matching the teacher's embeddings on real review text. The student is
``make_student(teacher, width, depth)``: smaller embeddings and MLP for the ranker, fewer
layers initialised from the teacher's for the encoder.
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
class DistillConfig:
    width: float = 0.5  # student width relative to the teacher (embedding dims, MLP, ...)
    depth: float = 0.5  # student depth relative to the teacher (transformer layers)
    steps: int = 600
    batch_size: int = 256
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the hard labels (where the task has labels)
    seed: int = 0


class Distill:
    name = "distill"
    Config = DistillConfig

    def compress(self, variant: Variant, task: Task, config: DistillConfig, out_dir: Path,
                 torch_task: TorchTask | None = None) -> Variant:
        if torch_task is None:
            raise CompressionError("distillation needs the torch teacher: give a TorchTask (compressors/torch_hook.py)")
        name, out_dir, hit = output(variant, f"distill-w{config.width:g}-d{config.depth:g}", self.name, config, CODE_VERSION, out_dir)
        if hit is not None:
            return hit
        student = torch_task.make_student(torch_task.module, config.width, config.depth)
        teacher_n = sum(p.numel() for p in torch_task.module.parameters())
        student_n = sum(p.numel() for p in student.parameters())
        t0 = time.perf_counter()
        losses = train(student, torch_task, config.steps, config.batch_size, config.seed,
                       temperature=config.temperature, alpha=config.alpha)
        record = training_record(torch_task, config.steps, config.batch_size, losses, time.perf_counter() - t0)
        path = fresh_dir(out_dir) / "model.onnx"
        torch_task.export(student, path)
        return finalize(variant, path, name, self.name, config, task,
                        notes=(f"student {student_n} params vs teacher {teacher_n}; "
                               f"{config.steps} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}",),
                        extra={"teacher_params": teacher_n, "student_params": student_n, "training": record})
