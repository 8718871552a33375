"""Runtime registry: name -> "module:Class". Grep here to find every runtime.

Entries are imported lazily, so a runtime whose library is missing still lists,
and reports why it is unavailable instead of breaking the import.
"""
from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any, Literal

from odbench.core.constants import INFERENCE_RUNTIMES
from odbench.core.records import TensorSpec  # noqa: F401  (re-exported seam)
from odbench.runtimes.base import ProviderFallbackError, Runtime, RuntimeUnavailable, Session  # noqa: F401  (re-exported seam)

RUNTIMES: dict[str, str] = {
    "onnxruntime": "odbench.runtimes.ort:OnnxRuntime",
    "openvino": "odbench.runtimes.openvino:OpenVinoRuntime",
    "torch": "odbench.runtimes.torch_eager:TorchEagerRuntime",
    "mnn": "odbench.runtimes.mnn:MnnRuntime",  # optional extra (pip install MNN==3.6.1); not in the default matrix
    # Mobile runtimes, each in an environment of its own (core/envs.py; `odbench env setup NAME`): not in the default matrix.
    "executorch": "odbench.runtimes.executorch:ExecuTorchRuntime",
    "litert": "odbench.runtimes.litert:LiteRTRuntime",
    # Harness doubles: "null" measures the harness's own overhead, "faulty" injects faults.
    "null": "odbench.runtimes.null:NullRuntime",
    "faulty": "odbench.runtimes.faulty:FaultyRuntime",
}


def get_runtime(name: str) -> Runtime:
    try:
        target = RUNTIMES[name]
    except KeyError:
        raise KeyError(f"unknown runtime {name!r}; known: {', '.join(sorted(RUNTIMES))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()


def parse_options(runtime: Runtime, raw: dict[str, Any] | None) -> Any:
    """Build the runtime's typed Options from a plain mapping; unknown keys are an error."""
    raw = dict(raw or {})
    fields = {f.name for f in dataclasses.fields(runtime.Options)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ValueError(
            f"runtime {runtime.name!r}: unknown option(s) {unknown}; valid: {sorted(fields)}"
        )
    return runtime.Options(**raw)


_TRUE, _FALSE = ("true", "1"), ("false", "0")


def option_from_text(runtime: Runtime, key: str, text: str) -> Any:
    """One option's value from its text (``--runtime NAME:KEY=VALUE``), typed by the runtime's Options:
    booleans take true/false/1/0, a Literal one of its choices, numbers a number, a tuple 'a+b'.
    ValueError with one line naming the option, what it takes and what it got."""
    hints = typing.get_type_hints(runtime.Options)
    if key not in hints:
        raise ValueError(f"runtime {runtime.name!r}: unknown option(s) {[key]}; valid: {sorted(hints)}")
    kind = hints[key]
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ValueError(f"{key} must be one of {', '.join(map(str, choices))}; got {text!r}")
        return text
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{key} is a boolean (true, false, 1 or 0); got {text!r}")
        return text.lower() in _TRUE
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}; got {text!r}") from None
    if typing.get_origin(kind) is tuple:
        return tuple(filter(None, text.split("+")))
    return text


def installed_runtimes() -> tuple[str, ...]:
    """Inference runtimes whose library is importable here (checked without importing it)."""
    import importlib.util

    def present(package: str) -> bool:
        try:
            return importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):  # a broken or blocked install is not an installed runtime
            return False

    return tuple(n for n in INFERENCE_RUNTIMES if present(get_runtime(n).package))
