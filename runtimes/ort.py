"""ONNX Runtime on the CPU execution provider."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from odbench.core.records import TensorSpec
from odbench.devices.apply import isa_cap
from odbench.runtimes.base import BoundSession, ProviderFallbackError, RuntimeUnavailable

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

GraphOpt = Literal["disable", "basic", "extended", "all"]


@dataclass(frozen=True)
class OrtOptions:
    graph_optimization: GraphOpt = "all"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    inter_op_threads: int = 1
    # False keeps idle worker threads from spinning: they would otherwise steal the
    # cores the harness and other processes need. Recorded with every result.
    allow_spinning: bool = True
    # Pin the calling thread to the first CPU of the cell and each intra-op worker to its own
    # next CPU ("session.intra_op_thread_affinities"), so threads never share a core by chance.
    pin_threads: bool = False
    # One intra-op pool for every session of the process (ONNX Runtime's global thread pools), set before
    # the first session: what a comparison process (bench/paired_cell.py) uses so that its members share
    # one pool instead of each keeping its own workers. The first session fixes the pool's size.
    global_threads: bool = False


def _spec(arg) -> TensorSpec:
    return TensorSpec(arg.name, _ORT_TYPES.get(arg.type, arg.type), tuple(arg.shape))


def _isa_cap_info() -> dict[str, Any]:
    cap = isa_cap()
    if not cap:
        return {}
    return {"isa_cap": {"requested": cap, "enforced": False,
                        "detail": "ONNX Runtime's MLAS picks its kernels from CPUID and has no ISA ceiling: this host's full ISA is used"}}


_GLOBAL_POOL: dict = {}


def _global_pool(ort, threads: int, inter: int) -> None:
    """Create the process's global pools once (before the first session); a second size is an error."""
    if "sizes" not in _GLOBAL_POOL:
        ort.capi._pybind_state.set_global_thread_pool_sizes(threads, inter)
        _GLOBAL_POOL["sizes"] = (threads, inter)
    elif _GLOBAL_POOL["sizes"] != (threads, inter):
        raise ValueError(f"the global thread pool already has sizes {_GLOBAL_POOL['sizes']}, not {(threads, inter)}")


class OrtSession(BoundSession):
    def __init__(self, sess, options: OrtOptions, threads: int):
        self._sess = sess
        self._options = options
        self._threads = threads
        self.inputs = [_spec(a) for a in sess.get_inputs()]
        self.outputs = [_spec(a) for a in sess.get_outputs()]
        self._out_names = [o.name for o in self.outputs]

    def bind(self, feed: Mapping[str, Any]):
        """An IOBinding holding the feed's inputs as OrtValues; outputs are allocated by ORT at each run."""
        import numpy as np

        binding = self._sess.io_binding()
        for spec in self.inputs:
            binding.bind_cpu_input(spec.name, np.ascontiguousarray(feed[spec.name]))
        for name in self._out_names:
            binding.bind_output(name, "cpu")
        return binding

    def run_bound(self, binding):
        self._sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def info(self) -> dict[str, Any]:
        so = self._sess.get_session_options()
        return {
            "providers": list(self._sess.get_providers()),
            "intra_op_threads": so.intra_op_num_threads,
            "inter_op_threads": so.inter_op_num_threads,
            "graph_optimization": self._options.graph_optimization,
            # read back from the session's own options, not from what was asked
            "allow_spinning": so.get_session_config_entry("session.intra_op.allow_spinning") != "0",
            "thread_pool": "per-session" if so.use_per_session_threads else f"global ({_GLOBAL_POOL.get('sizes')})",
            "pin_threads": self._options.pin_threads,
            "caller_cpus": sorted(os.sched_getaffinity(threading.get_native_id())),
            **_isa_cap_info(),
        }

    def close(self) -> None:
        self._sess = None


class OnnxRuntime:
    name = "onnxruntime"
    package = "onnxruntime"
    Options = OrtOptions

    def capabilities(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"execution_providers": ort.get_available_providers(), "device": ort.get_device()}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return False, f"onnxruntime is not installed ({exc})"
        return True, ""

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def open(self, model_path: str, threads: int, options: OrtOptions) -> OrtSession:
        ok, why = self.available()
        if not ok:
            raise RuntimeUnavailable(why)
        import onnxruntime as ort

        missing = [p for p in options.providers if p not in ort.get_available_providers()]
        if missing:
            raise ProviderFallbackError(
                f"execution provider(s) {missing} requested but not available in onnxruntime "
                f"{ort.__version__} (available: {ort.get_available_providers()})"
            )
        so = ort.SessionOptions()
        if options.global_threads:
            _global_pool(ort, threads, options.inter_op_threads)
            so.use_per_session_threads = False
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.graph_optimization]
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = options.inter_op_threads
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.allow_spinning else "0")
        so.log_severity_level = 3
        cpus = sorted(os.sched_getaffinity(0))
        pinned = options.pin_threads and 1 < threads <= len(cpus)
        if pinned:
            # ORT counts logical processors from 1; one entry per worker thread (threads - 1).
            so.add_session_config_entry("session.intra_op_thread_affinities", ";".join(str(c + 1) for c in cpus[1:threads]))
        sess = ort.InferenceSession(model_path, sess_options=so, providers=list(options.providers))
        actual = sess.get_providers()
        if list(actual[: len(options.providers)]) != list(options.providers):
            raise ProviderFallbackError(
                f"requested providers {list(options.providers)} but the session uses {actual}: "
                "refusing a silent fallback"
            )
        if pinned:
            os.sched_setaffinity(threading.get_native_id(), {cpus[0]})  # this (calling) thread only
        return OrtSession(sess, options, threads)
