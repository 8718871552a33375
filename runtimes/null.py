"""A session that does no inference: timing it measures the harness's own overhead."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runtimes.base import TensorSpec


@dataclass(frozen=True)
class NullOptions:
    pass


class NullSession:
    def __init__(self, inputs: list[TensorSpec]):
        self.inputs = inputs
        self.outputs = [TensorSpec("out", "float32", (1,))]
        self._out = None

    def run(self, feed: Mapping[str, Any]):
        return []

    def info(self) -> dict[str, Any]:
        return {"providers": [], "note": "null session: no inference"}

    def close(self) -> None:
        pass


class NullRuntime:
    name = "null"
    package = None  # a harness double: no library
    Options = NullOptions

    def capabilities(self) -> dict[str, Any]:
        return {}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def version(self) -> str:
        return "0"

    def open(self, model_path: str, threads: int, options: NullOptions) -> NullSession:
        # Reads the real model's input signature (if it is ONNX) so feeds look the same.
        try:
            from runtimes.ort import OnnxRuntime

            sess = OnnxRuntime().open(model_path, 1, OnnxRuntime.Options())
            inputs = list(sess.inputs)
            sess.close()
        except Exception:
            inputs = [TensorSpec("x", "float32", (1,))]
        return NullSession(inputs)
