"""Each registered runtime, parametrized from the registry, against a tiny model."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from odbench.core.constants import INFERENCE_RUNTIMES
from odbench.runtimes import RUNTIMES, ProviderFallbackError, get_runtime, parse_options


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_registry_entry_describes_itself(name):
    rt = get_runtime(name)
    assert rt.name == name
    ok, why = rt.available()
    assert isinstance(ok, bool) and (ok or why)
    assert dataclasses.is_dataclass(rt.Options) and rt.Options.__dataclass_params__.frozen


@pytest.mark.parametrize("name", INFERENCE_RUNTIMES)
def test_inference_runtime_runs_tiny_model(name, tiny_onnx):
    rt = get_runtime(name)
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(tiny_onnx))
    w, b = (numpy_helper.to_array(t) for t in model.graph.initializer)
    sess = rt.open(str(tiny_onnx), 1, rt.Options())
    assert [(s.name, s.dtype) for s in sess.inputs] == [("x", "float32")]
    assert sess.inputs[0].shape[0] in ("batch", None)  # symbolic (OpenVINO keeps no dim names)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    (y,) = sess.run({"x": x})
    np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    assert sess.info()["intra_op_threads"] == 1
    # a different shape on the same session (dynamic batch), and the same feed twice (bound inputs)
    x5 = np.ones((5, 4), np.float32)
    feed = {"x": x5}
    assert sess.run(feed)[0].shape == (5, 4)
    np.testing.assert_allclose(sess.run(feed)[0], np.maximum(x5 @ w + b, 0), rtol=1e-5, atol=1e-6)
    assert isinstance(rt.capabilities(), dict) and rt.version()
    sess.close()


def test_unknown_runtime_and_options_are_rejected():
    with pytest.raises(KeyError, match="unknown runtime 'tflite'"):
        get_runtime("tflite")
    with pytest.raises(ValueError, match="unknown option"):
        parse_options(get_runtime("onnxruntime"), {"threads_per_core": 2})


def test_missing_execution_provider_is_an_error_not_a_fallback(tiny_onnx):
    rt = get_runtime("onnxruntime")
    with pytest.raises(ProviderFallbackError, match="XnnpackExecutionProvider"):
        rt.open(str(tiny_onnx), 1, rt.Options(providers=("XnnpackExecutionProvider",)))


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_ort_graph_optimization_levels(level, tiny_onnx):
    rt = get_runtime("onnxruntime")
    sess = rt.open(str(tiny_onnx), 2, rt.Options(graph_optimization=level))
    assert sess.info()["graph_optimization"] == level and sess.info()["intra_op_threads"] == 2
    assert sess.run({"x": np.ones((1, 4), np.float32)})[0].shape == (1, 4)


def test_torch_runtime_skips_a_file_without_a_torch_module(tmp_path):
    from tests.conftest import make_tiny_onnx

    path = make_tiny_onnx(tmp_path / "v" / "model.onnx")
    (path.parent / "torch_module.json").unlink()
    ok, why = get_runtime("torch").accepts(str(path))
    assert not ok and "no PyTorch module" in why


def _openvino_cpu_capabilities() -> tuple[str, ...]:
    import openvino as ov

    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


# OpenVINO's CPU plugin lists a reduced precision in OPTIMIZATION_CAPABILITIES only where it has kernels
# for it (BF16: AVX-512-BF16 or AMX; FP16: AMX-FP16 or ARM), per its CPU device documentation.
PRECISION_CAPABILITY = {"bf16": "BF16", "f16": "FP16"}


@pytest.mark.parametrize("precision", ["f32", "bf16", "f16"])
def test_openvino_precision_is_set_and_recorded_or_refused(precision, tiny_onnx):
    rt = get_runtime("openvino")
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    capabilities = _openvino_cpu_capabilities()
    needed = PRECISION_CAPABILITY.get(precision, "FP32")
    if needed in capabilities:
        assert rt.open(str(tiny_onnx), 1, rt.Options(precision=precision)).info()["inference_precision"] == precision
    elif "FP32" in capabilities:
        # The plugin falls back to f32; the adapter must refuse the silent change, not record f32 as bf16.
        with pytest.raises(RuntimeError, match=f"compiled the model at f32, not the requested {precision}"):
            rt.open(str(tiny_onnx), 1, rt.Options(precision=precision))
    else:
        pytest.skip(f"OpenVINO's CPU plugin lists neither {needed} nor FP32 here: {capabilities}")


def test_openvino_streams_threads_and_hint_are_recorded(tiny_onnx):
    rt = get_runtime("openvino")
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    info = rt.open(str(tiny_onnx), 2, rt.Options(streams=1, hint="LATENCY")).info()
    assert info["streams"] == 1 and info["intra_op_threads"] == 2 and info["performance_hint"] == "LATENCY"


def test_mnn_never_imports_its_telemetry_package_and_refuses_int32_overflow(tmp_path, monkeypatch):
    """MNN.tools runs `pip install` and posts usage logs on import: the adapter must never load it."""
    import sys

    from tests.conftest import make_tiny_onnx

    rt = get_runtime("mnn")
    ok, why = rt.available()
    if not ok:
        pytest.skip(why)
    from odbench.runtimes.mnn import convert

    monkeypatch.setenv("ODBENCH_MNN_CACHE", str(tmp_path / "mnn-cache"))
    path = make_tiny_onnx(tmp_path / "m" / "model.onnx", width=5, seed=7)
    mnn_path, seconds = convert(str(path))
    assert mnn_path.exists() and seconds > 0 and convert(str(path)) == (mnn_path, 0.0)  # cached by sha256
    sess = rt.open(str(path), 1, rt.Options())
    assert "MNN.tools" not in sys.modules and "aliyun" not in sys.modules
    assert sess.info()["conversion_s"] == 0.0

    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Cast", ["ids"], ["y"], to=TensorProto.FLOAT)], "ids",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "ids.onnx"))
    s = rt.open(str(tmp_path / "ids.onnx"), 1, rt.Options())
    assert s.run({"ids": np.array([1, 2, 3], np.int64)})[0].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="outside int32"):
        s.run({"ids": np.array([2**40], np.int64)})
