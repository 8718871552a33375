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


def executed_ops(details: list[dict], outputs: list[int]) -> list[str]:
    """The names of the ops the interpreter runs. Its op list keeps every node of the model after delegation, the
    ones a DELEGATE node replaced included (measured: 58 nodes without XNNPACK, 61 with it on the CTR ranker),
    so an op counts only if the outputs need it: walk back from them, a tensor a DELEGATE produces taken from it."""
    producer: dict[int, dict] = {}
    for op in sorted(details, key=lambda o: o["op_name"] == "DELEGATE"):  # delegates last: they win
        for t in op.get("outputs", ()):
            producer[int(t)] = op
    seen, todo, ran = set(), [int(t) for t in outputs], []
    while todo:
        op = producer.get(todo.pop())
        if op is None or op["index"] in seen:
            continue
        seen.add(op["index"])
        ran.append(op["op_name"])
        todo.extend(int(t) for t in op.get("inputs", ()) if int(t) >= 0)
    return ran


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
        self._fixed = signature.get("static_shapes") or {}
        self._pads = signature.get("pad_axes") or {}
        ops = executed_ops(interpreter._get_ops_details(), [d["index"] for d in interpreter.get_output_details()])
        self._info = {**delegation_info(ops, threads), "quant": signature.get("quant")}

    def bind(self, feed: Mapping[str, Any]) -> tuple[list[dict], int]:
        """Numpy inputs, in slates of a fixed-shape model's batch (compressors/litert_export.py: the headline
        scenario's; other axes padded with zeros where the export says so, the last slate padded by repeating
        its last row, those outputs dropped), cast to the inputs' types (``_cast``), all outside the timer."""
        import numpy as np

        xs = [np.ascontiguousarray(feed[t.name]) for t in self.inputs]
        n = xs[0].shape[0] if xs and xs[0].ndim else 1
        if self._fixed:
            xs = [self._pad(t.name, x) for t, x in zip(self.inputs, xs)]
        batch = self._fixed[self.inputs[0].name][0] if self._fixed else max(n, 1)
        slates = []
        for s in range(0, max(n, 1), batch):
            part = [x[s : s + batch] for x in xs] if self._fixed else xs
            if self._fixed and part[0].shape[0] < batch:
                part = [np.concatenate([p, np.repeat(p[-1:], batch - p.shape[0], axis=0)]) for p in part]
            slates.append({a: self._cast(a, np.ascontiguousarray(x)) for a, x in zip(self._args, part)})
        return slates, n

    def _pad(self, name: str, x):
        import numpy as np

        shape = self._fixed[name]
        if x.ndim != len(shape) or any(x.shape[a] > shape[a] or (x.shape[a] < shape[a] and a not in self._pads.get(name, ()))
                                       for a in range(1, x.ndim)):
            raise ValueError(f"input {name!r} of shape {list(x.shape)} does not fit the fixed shape {shape} "
                             f"of this .tflite (zero padding on axes {self._pads.get(name, [])})")
        return np.pad(x, [(0, 0)] + [(0, shape[a] - x.shape[a]) for a in range(1, x.ndim)])

    def _cast(self, arg: str, x):
        """To the input tensor's dtype: int64 ids to the int32 that litert-torch converts them to (refused if one
        does not fit), a float input of a fully int8 model quantized with its scale and zero point."""
        import numpy as np

        d = self._in_details[arg]
        want = np.dtype(d["dtype"])
        scale, zero = d.get("quantization", (0.0, 0))
        if want.kind == "i" and x.dtype.kind == "f" and scale:
            info = np.iinfo(want)
            return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(want)
        if want.kind in "iu" and x.dtype.kind in "iu" and want != x.dtype:
            info = np.iinfo(want)
            if x.size and (x.min() < info.min or x.max() > info.max):
                raise ValueError(f"input {arg!r}: integer values outside {want.name} (the .tflite's input type)")
            return x.astype(want)
        return x

    def run_bound(self, bound: tuple[list[dict], int]) -> list:
        """The timed call (one per slate; one slate in a scenario of the fixed shape); a quantized output is
        dequantized with its scale and zero point (float host arrays, like every runtime's)."""
        import numpy as np

        slates, n = bound
        outs = [self._runner(**slate) for slate in slates]
        result = []
        for k in self._outs:
            scale, zero = self._out_details[k].get("quantization", (0.0, 0))
            ys = [(o[k].astype(np.float32) - zero) * scale if scale and o[k].dtype.kind in "iu" else o[k] for o in outs]
            y = np.concatenate(ys) if len(ys) > 1 else np.array(ys[0], copy=True)
            result.append(y[:n] if self._fixed and y.ndim else y)
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
