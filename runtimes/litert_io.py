"""How a ``.tflite`` of compressors/litert_export.py is fed and read, in numpy alone.

Shared by the LiteRT session (runtimes/litert.py) and the ARM functional check's guest worker
(bench/arm/_worker.py), which runs under qemu with only numpy and the interpreter importable and loads
this file by path: so it imports nothing but numpy and the standard library, never the project.

- A model converted at fixed shapes (the headline scenario's batch; a text model's ``max_len``) runs any
  batch in slates of its own: other axes padded with zeros where the export says so (``pad_axes``), the last
  slate padded by repeating its last row, those outputs dropped; an input that does not fit is refused.
- Inputs are cast to the tensors' types: int64 ids to the int32 litert-torch converts them to (refused if a
  value does not fit), a float input of a fully int8 model quantized with its scale and zero point.
- A quantized output is dequantized with its scale and zero point: float host arrays, like every runtime's.
- After XNNPACK is applied the interpreter's op list still holds the nodes a DELEGATE replaced; the ops that
  run are found by walking back from the outputs (``executed_ops``).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

SIGNATURE = "signature.json"  # written beside the .tflite at export: ONNX-named inputs/outputs, fixed shapes


def by_position(names) -> list[str]:
    """litert-torch names a signature's tensors args_0, args_1, ... (output_0, ...) in the ONNX order."""
    return sorted(names, key=lambda a: int(a.rsplit("_", 1)[-1]) if a[-1].isdigit() else 0)


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


class SignatureIO:
    """Feeds in, outputs out, for one signature runner: ``bind`` (outside the timer) and ``outputs``."""

    def __init__(self, signature: Mapping, in_details: Mapping[str, dict], out_details: Mapping[str, dict]):
        self.names = [i["name"] for i in signature["inputs"]]
        self.args, self.outs = by_position(in_details), by_position(out_details)
        self.in_details, self.out_details = in_details, out_details
        self.fixed = signature.get("static_shapes") or {}
        self.pads = signature.get("pad_axes") or {}

    def bind(self, feed: Mapping[str, Any]) -> tuple[list[dict], int]:
        """The feed as the runner's keyword arguments, one dict per slate, and the number of real rows."""
        xs = [np.ascontiguousarray(feed[n]) for n in self.names]
        n = xs[0].shape[0] if xs and xs[0].ndim else 1
        if self.fixed:
            xs = [self._pad(name, x) for name, x in zip(self.names, xs)]
        batch = self.fixed[self.names[0]][0] if self.fixed else max(n, 1)
        slates = []
        for s in range(0, max(n, 1), batch):
            part = [x[s : s + batch] for x in xs] if self.fixed else xs
            if self.fixed and part[0].shape[0] < batch:
                part = [np.concatenate([p, np.repeat(p[-1:], batch - p.shape[0], axis=0)]) for p in part]
            slates.append({a: self._cast(a, np.ascontiguousarray(x)) for a, x in zip(self.args, part)})
        return slates, n

    def _pad(self, name: str, x: np.ndarray) -> np.ndarray:
        shape = self.fixed[name]
        if x.ndim != len(shape) or any(x.shape[a] > shape[a] or (x.shape[a] < shape[a] and a not in self.pads.get(name, ()))
                                       for a in range(1, x.ndim)):
            raise ValueError(f"input {name!r} of shape {list(x.shape)} does not fit the fixed shape {shape} "
                             f"of this .tflite (zero padding on axes {self.pads.get(name, [])})")
        return np.pad(x, [(0, 0)] + [(0, shape[a] - x.shape[a]) for a in range(1, x.ndim)])

    def _cast(self, arg: str, x: np.ndarray) -> np.ndarray:
        d = self.in_details[arg]
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

    def outputs(self, per_slate: Sequence[Mapping[str, np.ndarray]], n: int) -> list[np.ndarray]:
        """The runner's answers, one per slate, as float host arrays in the ONNX output order, padding dropped."""
        result = []
        for k in self.outs:
            scale, zero = self.out_details[k].get("quantization", (0.0, 0))
            ys = [(o[k].astype(np.float32) - zero) * scale if scale and o[k].dtype.kind in "iu" else o[k] for o in per_slate]
            y = np.concatenate(ys) if len(ys) > 1 else np.array(ys[0], copy=True)
            result.append(y[:n] if self.fixed and y.ndim else y)
        return result
