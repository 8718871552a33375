"""Structured pruning and distillation through the documented TorchTask hook, on a tiny MLP."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from odbench.compressors.distill import Distill, DistillConfig
from odbench.compressors.structured import StructuredPrune, StructuredPruneConfig
from odbench.core.records import TorchTask
from tests.compressors.conftest import baseline_variant

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them


def mlp(hidden=(64, 32)):
    layers, width = [], 8
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, 1))


def export(module, path):
    torch.onnx.export(module.eval(), (torch.zeros(2, 8),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=17, dynamo=False)


def make_task(teacher, target_fn=None):
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.standard_normal((2048, 8)).astype(np.float32))

    def batches(steps, batch, seed):
        g = np.random.default_rng(seed)
        for _ in range(steps):
            yield (data[g.integers(0, len(data), batch)],), None

    def loss(student, teacher_, inputs, labels, temperature, alpha):
        with torch.no_grad():
            t = teacher_(*inputs)
        return ((student(*inputs) - t) ** 2).mean()

    def prunable(m):
        lins = [l for l in m if isinstance(l, nn.Linear)]
        return list(zip(lins[:-1], lins[1:]))

    return TorchTask(module=teacher.eval(), batches=batches, loss=loss, export=export, prunable=prunable,
                     make_student=lambda t, width, depth: mlp(tuple(max(2, int(h * width)) for h in (64, 32))), lr=1e-2)


class FidelityTask:
    name = "tiny-mlp"

    def __init__(self, teacher):
        self.x = np.random.default_rng(5).standard_normal((256, 8)).astype(np.float32)
        with torch.no_grad():
            self.ref = teacher(torch.from_numpy(self.x)).numpy()

    def evaluate(self, run):
        y = np.asarray(run({"x": self.x})[0])
        return {"mse_to_teacher": float(np.mean((y - self.ref) ** 2))}

    def calibration_feeds(self, n):
        return [{"x": self.x[:16]}] * n

    def tuning_metric(self, run):
        return -self.evaluate(run)["mse_to_teacher"]


def flops(path):
    m = onnx.load(str(path))
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    return sum(int(np.prod(inits[n.input[1]])) for n in m.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits)


@pytest.fixture
def teacher_variant(tmp_path):
    torch.manual_seed(0)
    teacher = mlp()
    path = tmp_path / "teacher.onnx"
    export(teacher, path)
    return teacher, baseline_variant(path)


def test_structured_pruning_removes_units_params_and_flops(teacher_variant, tmp_path):
    teacher, base = teacher_variant
    v = StructuredPrune().compress(base, FidelityTask(teacher), StructuredPruneConfig(ratio=0.5, finetune_steps=50, batch_size=64),
                                   tmp_path / "v", torch_task=make_task(teacher))
    assert base.params == 8 * 64 + 64 + 64 * 32 + 32 + 32 + 1  # the teacher's Linear weights and biases
    assert v.params < base.params
    assert v.config["torch_params_after"] < v.config["torch_params_before"]
    assert flops(v.path) < flops(base.path) * 0.6
    assert "hidden 64 -> 32" in v.notes[0]
    assert v.accuracy["mse_to_teacher"] < 1.0


def test_distillation_learns_from_the_teacher(teacher_variant, tmp_path):
    """The student must match the teacher, not just the data (the seed article never used it)."""
    teacher, base = teacher_variant
    task = FidelityTask(teacher)
    untrained = DistillConfig(width=0.5, steps=1, batch_size=64)
    trained = DistillConfig(width=0.5, steps=300, batch_size=64)
    a = Distill().compress(base, task, untrained, tmp_path / "a", torch_task=make_task(teacher))
    b = Distill().compress(base, task, trained, tmp_path / "b", torch_task=make_task(teacher))
    assert b.accuracy["mse_to_teacher"] < 0.5 * a.accuracy["mse_to_teacher"]
    assert b.config["student_params"] < b.config["teacher_params"]
    assert b.parent == base.id and b.compressor == "distill"


def test_transformer_style_training_freezes_embeddings_drops_dropout_and_schedules_the_rate(teacher_variant, monkeypatch):
    import dataclasses

    from odbench.compressors.torch_hook import train

    teacher, _ = teacher_variant
    student = nn.Sequential(nn.Embedding(10, 8), nn.Dropout(0.5), nn.Flatten(), nn.Linear(16, 1))
    before = student[0].weight.detach().clone()
    ids = torch.randint(0, 10, (64, 2))

    def batches(steps, batch, seed):
        for _ in range(steps):
            yield (ids,), None

    modes, rates = [], []

    def loss(s, t, inputs, labels, temperature, alpha):
        modes.append(s.training)
        return (s(*inputs) ** 2).mean()

    task = dataclasses.replace(make_task(teacher), batches=batches, loss=loss, freeze_embeddings=True, dropout=False,
                               warmup_frac=0.2, lr=0.1)
    orig_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        rates.append(self.param_groups[0]["lr"])
        return orig_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    losses = train(student, task, steps=10, batch=64)
    assert torch.equal(student[0].weight, before)  # frozen
    assert modes == [False] * 10  # dropout off while training
    assert rates[0] < rates[1] and max(rates) == pytest.approx(0.1) and rates[-1] < rates[2]  # warmup, then decay
    assert losses[-1] < losses[0]
