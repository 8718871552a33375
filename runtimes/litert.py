"""LiteRT (formerly TensorFlow Lite) with its XNNPACK CPU delegate: runs the ``.tflite`` files of compressors/litert_export.py.

The converter (litert-torch 0.10) and the interpreter (ai-edge-litert 2.3) live in an environment of
their own (core/envs.py, lock envs/litert.txt); its cells run with that environment's Python. The
interpreter applies XNNPACK by default on CPU (LiteRT docs, "XNNPACK delegate"), with ``num_threads``
from the device profile. After the delegate is applied, the interpreter runs one DELEGATE node per
delegated partition and LiteRT's builtin kernels for the rest: the session reports those
(``non_delegated_ops``, ``fallback``; ``executed_ops``), as ONNX Runtime's adapter reports a dropped provider.
A ``.tflite`` converted at fixed shapes (compressors/litert_export.py) runs any batch in slates of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from odbench.core.envs import EnvSpec
from odbench.runtimes.base import BoundSession
from odbench.runtimes.executorch import read_signature, specs_of
from odbench.runtimes.litert_io import SignatureIO, delegation_info, executed_ops
from odbench.runtimes.remote import EnvironmentRuntime

ENVIRONMENT = EnvSpec("litert", "envs/litert.txt", purpose="litert-torch 0.10.0 + ai-edge-litert 2.3.0 + torch 2.13.0 CPU")
SUFFIX = ".tflite"
NO_ROUTE = ("LiteRT runs .tflite files converted from a torch module (compressors/litert_export.py); "
            "an ONNX file has no route to .tflite")


@dataclass(frozen=True)
class LiteRTOptions:
    signature: str = ""  # the signature to run; "" = the model's only one


class LiteRTSession(BoundSession):
    def __init__(self, interpreter, signature: dict, key: str, threads: int):
        self._interp = interpreter
        self._runner = interpreter.get_signature_runner(key or None)
        self.inputs, self.outputs = specs_of(signature["inputs"]), specs_of(signature["outputs"])
        self._io = SignatureIO(signature, self._runner.get_input_details(), self._runner.get_output_details())
        ops = executed_ops(interpreter._get_ops_details(), [d["index"] for d in interpreter.get_output_details()])
        self._info = {**delegation_info(ops, threads), "quant": signature.get("quant")}

    def bind(self, feed: Mapping[str, Any]) -> tuple[list[dict], int]:
        """Numpy inputs in the runner's slates, cast to its types, all outside the timer (runtimes/litert_io.py)."""
        return self._io.bind(feed)

    def run_bound(self, bound: tuple[list[dict], int]) -> list:
        """The timed call (one per slate; one slate in a scenario of the fixed shape); quantized outputs
        dequantized (float host arrays, like every runtime's)."""
        slates, n = bound
        return self._io.outputs([self._runner(**slate) for slate in slates], n)

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
