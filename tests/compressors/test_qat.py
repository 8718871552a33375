"""Quantization-aware distillation (compressors/qat.py): the fake quantization computes what ONNX Runtime's dynamic
int8 computes, the trainer never receives an evaluation or tuning-metric row, and, on a tiny random BERT, the
fake-quantized torch student gives the deployed fused int8 graph's outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.compressors.conftest import tiny_pool_bert

torch = pytest.importorskip("torch")


def _matmul_onnx(w: np.ndarray, b: np.ndarray, path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Add", ["h", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", w.shape[1]])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("bits", [8, 7])
def test_fake_quant_linear_computes_ort_dynamic_int8(bits, tmp_path):
    """A Linear fake-quantized as qat.py does it against quantize_dynamic of the same MatMul (per-channel int8 weights,
    7-bit range with reduce_range; DynamicQuantizeLinear on the input): within float rounding of the int8 result, and
    far closer to it than fp32 is."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from odbench.compressors.qat import QuantState, make_fake_quant_linear
    from odbench.core.onnx_tools import ort_run_fn

    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 40)
    with torch.no_grad():
        linear.weight[3] *= 20  # channels of very different ranges: per-channel scales matter
        linear.bias.normal_()
    w = linear.weight.detach().numpy().T.copy()
    plain = _matmul_onnx(w, linear.bias.detach().numpy(), tmp_path / "fp32.onnx")
    quantize_dynamic(str(plain), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True, reduce_range=bits == 7)
    run = ort_run_fn(tmp_path / "int8.onnx")
    fq = make_fake_quant_linear(linear, QuantState(bits))
    rng = np.random.default_rng(1)
    for seq in (1, 7, 23):
        x = (rng.standard_normal((1, seq, 48)) * rng.uniform(0.1, 5, 48) + 0.3).astype(np.float32)
        ort, fp32 = run({"x": x})[0], linear(torch.from_numpy(x)).detach().numpy()
        sim = fq(torch.from_numpy(x)).detach().numpy()
        err_sim, err_fp32 = np.abs(sim - ort).max(), np.abs(fp32 - ort).max()
        assert err_sim <= 1e-4 * np.abs(ort).max(), (seq, err_sim)
        assert err_fp32 > 50 * max(err_sim, 1e-7)  # the simulation carries the quantization error that fp32 lacks


def test_activation_scales_are_per_text_over_real_tokens():
    """A padded batch gets each text's own scale (as each text alone at batch 1): padding positions never widen it."""
    from odbench.compressors.qat import fake_quant_activation

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 6, 8)).astype(np.float32))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    x[1, 3:] = 100.0  # padding
    both = fake_quant_activation(x, mask)
    alone = fake_quant_activation(x[1:2, :3], torch.ones(1, 3))
    torch.testing.assert_close(both[1, :3], alone[0], rtol=0, atol=1e-6)
    assert (fake_quant_activation(x) - x)[1, :3].abs().max() > 10 * (both - x)[1, :3].abs().max()  # per-tensor over padding: coarse


def _tiny_pool_encoder(vocab: int = 30522, layers: int = 2):
    return tiny_pool_bert(vocab, layers, max_positions=160, attention="eager", normalize=True)


def test_the_trainer_never_receives_an_evaluation_or_tuning_metric_row(monkeypatch, tmp_path):
    """A spy on the objective the QAT loop calls: it decodes every batch the trainer (and the held-out check) is given
    back to review rows. None is an evaluation row or one of the tuning metric's pairs; training and held-out rows
    do not overlap; and the pool is used beyond the tuning split (the reviews in neither split)."""
    pytest.importorskip("transformers")
    import odbench.models.encoder as E
    from odbench.compressors.qat import QatConfig, QuantState, distil, wrap
    from odbench.models.base import ZooTask
    from tests.models.test_encoder import _rows_in, _tagged_reviews

    monkeypatch.setattr(E, "clothing_reviews", _tagged_reviews)
    monkeypatch.setattr(E, "build_module", _tiny_pool_encoder)
    model = E.EncoderModel(E.EncoderConfig(n_pairs=100, n_tune=600))
    torch_task = model.torch_task(tmp_path)
    data = torch_task.layer_distill
    seen = {"train": set(), "held_out": set()}

    def spy_loss(student, inputs, targets, parts=None):
        texts = model.tok.decode_batch(inputs[0].tolist(), skip_special_tokens=True)
        seen["train" if torch.is_grad_enabled() else "held_out"].update(_rows_in(texts))
        return data.loss(student, inputs, targets, parts)

    spied = torch_task.__class__(**{**torch_task.__dict__, "layer_distill": data.__class__(**{**data.__dict__, "loss": spy_loss})})
    student = _tiny_pool_encoder()
    state = QuantState(8)
    record = distil(student, spied, ZooTask(model, tmp_path), QatConfig(max_steps=6, eval_every=3, batch_size=8), state,
                    wrap(student, state), log=lambda *_: None)
    evaluation = set(model.split_ids("evaluation").tolist())
    metric = set(model.split_ids("tuning")[: model.tune_sizes[1]].tolist())
    tuning, pool = set(model.split_ids("tuning").tolist()), set(model.split_ids("training").tolist())
    assert seen["train"] and seen["held_out"] and record["steps"] == 6 and len(record["curve"]) == 3
    for who, rows in seen.items():
        assert rows <= pool and not rows & evaluation and not rows & metric, who
    assert not seen["train"] & seen["held_out"]
    # the exported checkpoint
    assert next(c["total"] for c in record["curve"] if c["step"] == record["best_step"]) == record["best_held_out"]
    assert pool - tuning and not (pool & tuning) - (tuning - metric)  # reviews in neither split are in the pool


@pytest.mark.slow  # torch exports of a tiny transformer: ~20 s on 2 idle cores
@pytest.mark.parametrize("alpha", [None, 0.5])
def test_the_fake_quantized_student_computes_the_deployed_fused_int8_graph(alpha, tmp_path):
    """The whole simulation on a tiny BERT: fake-quantized torch (with SmoothQuant's s as qat.py computes it) against
    the graph fuse-bert deploys from the same weights (fused, s folded, quantize_dynamic: QAttention + MatMulInteger),
    at batch 1: within float rounding, 100 times closer to it than the fp32 module is."""
    pytest.importorskip("onnxruntime.transformers.optimizer")
    from odbench.compressors.fused import FusedConfig, FusedEncoder
    from odbench.compressors.qat import QuantState, set_smooth_scales, wrap
    from odbench.core.onnx_tools import ort_run_fn
    from odbench.core.records import TorchTask
    from tests.compressors.conftest import baseline_variant
    from tests.compressors.test_fused import Feeds, export

    module = _tiny_pool_encoder(vocab=120)
    export(module, tmp_path / "fp32.onnx")
    task = TorchTask(module=module, batches=None, loss=None, export=lambda m, p: export(m, Path(p)), prunable=None, make_student=None)
    v = FusedEncoder().compress(baseline_variant(tmp_path / "fp32.onnx"), Feeds(0), FusedConfig(quantize="dynamic", target_isa="x86-vnni",
                                smooth_alpha=alpha), tmp_path / "out", torch_task=task)
    import copy

    student = copy.deepcopy(module)
    state = QuantState(8)
    set_smooth_scales(student, wrap(student, state), state, Feeds(0).calibration_feeds(32), alpha)
    run = ort_run_fn(v.path)
    for f in Feeds(1).feeds[:8]:
        ids, mask = torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"])
        with torch.no_grad():
            state.mask = mask
            sim, fp32 = student(ids, mask).numpy(), module(ids, mask).numpy()
        deployed = run(f)[0]
        err_sim, err_fp32 = np.abs(sim - deployed).max(), np.abs(fp32 - deployed).max()
        assert err_sim < 0.01 * err_fp32, (err_sim, err_fp32)  # measured: ~5e-8 against ~8e-5


def test_the_linears_deployed_fp32_are_trained_without_fake_quantization():
    from odbench.compressors.qat import QuantState, module_path, unwrap, wrap

    student = _tiny_pool_encoder(vocab=120)
    kept = module_path("/bert/encoder/layer.0/output/dense/MatMul")
    assert kept == "bert.encoder.layer.0.output.dense"
    wrap(student, QuantState(8), (kept,))
    mods = dict(student.named_modules())
    assert type(mods[kept]) is torch.nn.Linear
    assert hasattr(mods["bert.encoder.layer.1.output.dense"], "linear")
    assert hasattr(mods["bert.encoder.layer.0.intermediate.dense"], "linear")
    unwrap(student)
    assert all(type(m) is torch.nn.Linear for n, m in student.named_modules() if n.endswith(("dense", "query", "key", "value")))
