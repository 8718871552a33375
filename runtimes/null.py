"""A session that does no inference: timing it measures the harness's own overhead.

It goes through the same path as every runtime: the harness binds each feed outside the timer
and times ``run_bound``, which hands back the bound arrays as the outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from odbench.core.onnx_tools import onnx_signature
from odbench.core.records import TensorSpec
from odbench.runtimes.base import BoundSession


@dataclass(frozen=True)
class NullOptions:
    pass


class NullSession(BoundSession):
    def __init__(self, inputs: list[TensorSpec]):
        self.inputs = inputs
        self.outputs = list(inputs)

    def bind(self, feed: Mapping[str, Any]) -> list:
        return [feed[spec.name] for spec in self.inputs]

    def run_bound(self, bound: list) -> list:
        return list(bound)

    def info(self) -> dict[str, Any]:
        return {"providers": [], "note": "null session: no inference"}


class HarnessDouble:
    """What the harness doubles (null, faulty) share: no library, always available, any file."""

    package = None

    def capabilities(self) -> dict[str, Any]:
        return {}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def version(self) -> str:
        return "0"


class NullRuntime(HarnessDouble):
    name = "null"
    Options = NullOptions

    def open(self, model_path: str, threads: int, options: NullOptions) -> NullSession:
        # The real model's input signature (read from the ONNX file, weights not loaded), so feeds look the same.
        try:
            inputs, _ = onnx_signature(model_path)
        except Exception:  # noqa: BLE001 - not an ONNX file: a one-input stand-in
            inputs = [TensorSpec("x", "float32", (1,))]
        return NullSession(inputs)
