"""LiteRT (formerly TensorFlow Lite) with its XNNPACK CPU delegate: runs the ``.tflite`` files of compressors/litert_export.py.

The converter (litert-torch 0.10) and the interpreter (ai-edge-litert 2.3) live in an environment of
their own (core/envs.py, lock envs/litert.txt); its cells run with that environment's Python. The
interpreter applies XNNPACK by default on CPU (LiteRT docs, "XNNPACK delegate"), with ``num_threads``
from the device profile. After the delegate is applied, the interpreter's op list holds one DELEGATE
node per delegated partition: any other op left there ran on LiteRT's builtin kernels, and the session
reports them (``non_delegated_ops``, ``fallback``), as ONNX Runtime's adapter reports a dropped provider.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping

from odbench.core.envs import EnvSpec
from odbench.runtimes.base import BoundSession, RuntimeUnavailable
from odbench.runtimes.executorch import read_signature, specs_of
from odbench.runtimes.remote import RemoteSession

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


class LiteRTRuntime:
    name = "litert"
    package = "ai_edge_litert"
    Options = LiteRTOptions
    environment = ENVIRONMENT

    def available(self) -> tuple[bool, str]:
        if not self.environment.active():
            return self.environment.status()
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as exc:
            return False, f"ai-edge-litert is not importable in environment {self.environment.name!r} ({exc})"
        return True, ""

    def version(self) -> str:
        if self.environment.active():
            return importlib.metadata.version("ai-edge-litert")
        return self.environment.manifest().get("versions", {}).get("ai-edge-litert", "not built")

    def capabilities(self) -> dict[str, Any]:
        ok, why = self.environment.status()
        return {"environment": f"{self.environment.name} ({self.environment.path})" if ok else why,
                "kernels": "XNNPACK delegate (LiteRT's default on CPU)"}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        if not str(model_path).endswith(SUFFIX):
            return False, NO_ROUTE
        return True, ""

    def open(self, model_path: str, threads: int, options: LiteRTOptions) -> LiteRTSession | RemoteSession:
        ok, why = self.available()
        if ok:
            ok, why = self.accepts(model_path)
        if not ok:
            raise RuntimeUnavailable(why)
        if not self.environment.active():
            return RemoteSession(self.environment, self.name, model_path, threads, dataclasses.asdict(options))
        from ai_edge_litert.interpreter import Interpreter

        signature = read_signature(model_path)
        interpreter = Interpreter(model_path=model_path, num_threads=int(threads))
        interpreter.allocate_tensors()
        return LiteRTSession(interpreter, signature, options.signature, int(threads))
