"""LiteRT (formerly TensorFlow Lite) with its XNNPACK CPU delegate: runs the ``.tflite`` files of compressors/litert_export.py.

The converter (litert-torch 0.10) and the interpreter (ai-edge-litert 2.3) live in an environment of
their own (core/envs.py, lock envs/litert.txt); its cells run with that environment's Python. The
interpreter applies XNNPACK by default on CPU (LiteRT docs, "XNNPACK delegate"), with ``num_threads``
from the device profile. After the delegate is applied, the interpreter's op list holds one DELEGATE
node per delegated partition: any other op left there ran on LiteRT's builtin kernels, and the session
reports them (``non_delegated_ops``, ``fallback``), as ONNX Runtime's adapter reports a dropped provider.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from odbench.core.envs import EnvSpec
from odbench.runtimes.base import BoundSession
from odbench.runtimes.executorch import read_signature, specs_of
from odbench.runtimes.remote import EnvironmentRuntime

ENVIRONMENT = EnvSpec("litert", "envs/litert.txt", purpose="litert-torch 0.10.0 + ai-edge-litert 2.3.0 + torch 2.13.0 CPU")
SUFFIX = ".tflite"
NO_ROUTE = ("LiteRT runs .tflite files converted from a torch module (compressors/litert_export.py); "
            "an ONNX file has no route to .tflite")


@dataclass(frozen=True)
class LiteRTOptions:
    signature: str = ""  # the signature to run; "" = the model's only one


def delegation_info(ops: list[str], threads: int) -> dict[str, Any]:
    """From the interpreter's op names after delegation: what XNNPACK took and what it left."""
    counts = Counter(ops)
    delegated = counts.pop("DELEGATE", 0)
    info = {"providers": (["XNNPACK"] if delegated else []) + (["builtin-cpu (fallback)"] if counts else []),
            "threads": threads, "delegated_partitions": delegated, "non_delegated_ops": dict(counts)}
    if counts:
        info["fallback"] = f"{sum(counts.values())} op(s) not on XNNPACK: {', '.join(sorted(counts))}"
    return info


class LiteRTSession(BoundSession):
    def __init__(self, interpreter, signature: dict, key: str, threads: int):
        self._interp = interpreter
        self._runner = interpreter.get_signature_runner(key or None)
        self.inputs, self.outputs = specs_of(signature["inputs"]), specs_of(signature["outputs"])
        # litert-torch names the signature's inputs args_0, args_1, ... in the order of the ONNX inputs
        self._args = sorted(self._runner.get_input_details(), key=lambda a: int(a.rsplit("_", 1)[-1]) if a[-1].isdigit() else 0)
        self._outs = sorted(self._runner.get_output_details(), key=lambda a: int(a.rsplit("_", 1)[-1]) if a[-1].isdigit() else 0)
        self._in_details, self._out_details = self._runner.get_input_details(), self._runner.get_output_details()
        ops = [op["op_name"] for op in interpreter._get_ops_details()]
        self._info = {**delegation_info(ops, threads), "quant": signature.get("quant")}

    def bind(self, feed: Mapping[str, Any]) -> dict:
        """Numpy inputs; a fully int8 model's int8 inputs are quantized here, outside the timer, with the
        input tensor's own scale and zero point (as an app feeding it would)."""
        import numpy as np

        bound = {}
        for a, t in zip(self._args, self.inputs):
            x, d = np.ascontiguousarray(feed[t.name]), self._in_details[a]
            scale, zero = d.get("quantization", (0.0, 0))
            if np.dtype(d["dtype"]).kind == "i" and x.dtype.kind == "f" and scale:
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(d["dtype"])
            bound[a] = x
        return bound

    def run_bound(self, bound: dict) -> list:
        """The timed call; a quantized output is dequantized with its scale and zero point (float host arrays,
        like every runtime's)."""
        import numpy as np

        out = self._runner(**bound)
        result = []
        for k in self._outs:
            y, (scale, zero) = out[k], self._out_details[k].get("quantization", (0.0, 0))
            result.append((y.astype(np.float32) - zero) * scale if scale and y.dtype.kind in "iu" else np.array(y, copy=True))
        return result

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def close(self) -> None:
        self._runner = self._interp = None


class LiteRTRuntime(EnvironmentRuntime):
    name = "litert"
    package = "ai_edge_litert"
    distribution = "ai-edge-litert"
    Options = LiteRTOptions
    environment = ENVIRONMENT
    kernels = "XNNPACK delegate (LiteRT's default on CPU)"
    suffix = SUFFIX
    no_route = NO_ROUTE

    def probe(self) -> None:
        import ai_edge_litert.interpreter  # noqa: F401

    def open_here(self, model_path: str, threads: int, options: LiteRTOptions) -> LiteRTSession:
        from ai_edge_litert.interpreter import Interpreter

        signature = read_signature(model_path)
        interpreter = Interpreter(model_path=model_path, num_threads=int(threads))
        interpreter.allocate_tensors()
        return LiteRTSession(interpreter, signature, options.signature, int(threads))
