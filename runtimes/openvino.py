"""OpenVINO on its CPU plugin, reading the ONNX file directly.

Always sets, and records, the inference precision: on a CPU with AVX-512-BF16 or AMX the
plugin's default is bf16, which changes the answers. A compiled precision other than the one
requested is an error, like an execution-provider fallback in ONNX Runtime.

Inputs are bound once per feed (``ov.Tensor`` sharing the feed's memory) before timing, so a
timed ``run`` is ``set_input_tensor`` + ``infer`` and not a dict conversion per call.

The ISA cap of an emulated profile (``DeviceProfile.isa_cap``) reaches OpenVINO's CPU plugin
through oneDNN's ``ONEDNN_MAX_CPU_ISA``, which ``devices.apply`` sets before the plugin loads;
``info()`` reports the kernel types the compiled model really uses, so the cap is checked.
Measured with 2026.4 on an AVX-512 host: capped at AVX2, some of the plugin's own JIT kernels stay
AVX-512 and the outputs are wrong (MiniLM cosine ~0.2); output parity turns such cells to FAIL.

Known here: the CPU plugin computes int64 as int32, so in-graph int64 arithmetic that overflows
int32 (the CTR ranker's ID hash) gives other answers than ONNX Runtime; parity catches it too.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from odbench.core.records import TensorSpec
from odbench.devices.apply import isa_cap, isa_level
from odbench.runtimes.base import BoundSession, RuntimeUnavailable

Precision = Literal["f32", "bf16", "f16"]
Hint = Literal["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT", "none"]


@dataclass(frozen=True)
class OpenVinoOptions:
    precision: Precision = "f32"
    hint: Hint = "LATENCY"
    streams: int = 1
    pin_threads: bool = False  # ENABLE_CPU_PINNING


def _dtype(element_type) -> str:
    name = element_type.get_type_name()
    return {"f32": "float32", "f16": "float16", "f64": "float64", "i64": "int64", "i32": "int32",
            "i8": "int8", "u8": "uint8", "boolean": "bool"}.get(name, name)


def _spec(port) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
    names = port.get_names()
    name = port.get_any_name() if names else f"port{port.get_index()}"
    return TensorSpec(name, _dtype(port.get_element_type()), shape)


def _precision(compiled) -> str:
    value = compiled.get_property("INFERENCE_PRECISION_HINT")
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value).lower()


def _isa_cap_info(kernels: Counter) -> dict[str, Any]:
    """Did oneDNN's ISA ceiling reach every kernel? Judged from the compiled model's kernel names."""

    cap = isa_cap()
    if not cap:
        return {}
    limit = isa_level(cap)
    above = {k: n for k, n in kernels.items() if (isa_level(k) or -1) > limit}
    total = sum(kernels.values())
    detail = (f"{sum(above.values())} of {total} kernels still above {cap}: {dict(above)}" if above
              else f"all {total} kernels at or below {cap}")
    return {"isa_cap": {"requested": cap, "enforced": not above, "detail": detail}}


class OpenVinoSession(BoundSession):
    def __init__(self, compiled, options: OpenVinoOptions, threads: int):
        self._compiled = compiled
        self._options = options
        self._threads = threads
        self._request = compiled.create_infer_request()
        self.inputs = [_spec(p) for p in compiled.inputs]
        self.outputs = [_spec(p) for p in compiled.outputs]

    def bind(self, feed: Mapping[str, Any]) -> list:
        import numpy as np
        import openvino as ov

        # shared_memory: the tensor reads the feed's own buffer (kept alive by the tensor)
        return [ov.Tensor(np.ascontiguousarray(feed[spec.name]), shared_memory=True) for spec in self.inputs]

    def run_bound(self, tensors: list):
        request = self._request
        for i, tensor in enumerate(tensors):
            request.set_input_tensor(i, tensor)
        request.infer()
        return [request.get_output_tensor(i).data.copy() for i in range(len(self.outputs))]

    def info(self) -> dict[str, Any]:
        c = self._compiled
        prop = lambda key: str(c.get_property(key))  # noqa: E731
        kernels = Counter()
        for op in c.get_runtime_model().get_ordered_ops():
            rt = op.get_rt_info()
            if "primitiveType" in rt:
                kernels[str(rt["primitiveType"].astype(str))] += 1
        return {
            "providers": ["CPU"],
            "execution_devices": prop("EXECUTION_DEVICES"),
            "inference_precision": _precision(c),
            "performance_hint": prop("PERFORMANCE_HINT"),
            "streams": int(c.get_property("NUM_STREAMS")),
            "intra_op_threads": int(c.get_property("INFERENCE_NUM_THREADS")),
            "cpu_pinning": prop("ENABLE_CPU_PINNING"),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            "kernels": dict(kernels.most_common()),
            **_isa_cap_info(kernels),
        }

    def close(self) -> None:
        self._request = None
        self._compiled = None


class OpenVinoRuntime:
    name = "openvino"
    package = "openvino"
    Options = OpenVinoOptions

    def capabilities(self) -> dict[str, Any]:
        import openvino as ov

        core = ov.Core()
        out: dict[str, Any] = {"devices": core.available_devices}
        if "CPU" in core.available_devices:
            out["cpu"] = str(core.get_property("CPU", "FULL_DEVICE_NAME"))
            out["cpu_capabilities"] = list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        return out

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        try:
            import openvino  # noqa: F401
        except ImportError as exc:
            return False, f"openvino is not installed ({exc}); `pip install openvino==2026.4.0`"
        return True, ""

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]

    def open(self, model_path: str, threads: int, options: OpenVinoOptions) -> OpenVinoSession:
        ok, why = self.available()
        if not ok:
            raise RuntimeUnavailable(why)
        import openvino as ov

        core = ov.Core()
        if "CPU" not in core.available_devices:
            raise RuntimeUnavailable(f"OpenVINO sees no CPU device (devices: {core.available_devices})")
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": options.precision,
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": options.streams,
            "ENABLE_CPU_PINNING": options.pin_threads,
        }
        if options.hint != "none":
            config["PERFORMANCE_HINT"] = options.hint
        compiled = core.compile_model(core.read_model(model_path), "CPU", config)
        actual = _precision(compiled)
        if actual != options.precision:
            raise RuntimeError(
                f"OpenVINO compiled the model at {actual}, not the requested {options.precision}: refusing a silent precision change"
            )
        return OpenVinoSession(compiled, options, threads)
