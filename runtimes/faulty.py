"""Fault injection for testing the harness: a runtime that crashes, hangs or blows memory.

Never part of a default matrix; tests and ``odbench run --runtime faulty`` use it to
prove that one bad cell costs only that cell.
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from runtimes.base import TensorSpec

Fault = Literal["segv", "hang", "oom", "raise"]
Where = Literal["open", "run"]


@dataclass(frozen=True)
class FaultyOptions:
    fault: Fault = "segv"
    at: Where = "open"
    after_runs: int = 0  # with at="run": how many good runs before the fault


def _trigger(fault: Fault) -> None:
    if fault == "segv":
        ctypes.string_at(0)  # a real SIGSEGV, not a Python exception
    elif fault == "hang":
        while True:
            time.sleep(3600)
    elif fault == "oom":
        blocks = []
        while True:
            blocks.append(bytearray(256 * 1024 * 1024))
    else:
        raise RuntimeError("injected fault")


class FaultySession:
    def __init__(self, options: FaultyOptions):
        self._options = options
        self._runs = 0
        self.inputs = [TensorSpec("x", "float32", ("batch", 4))]
        self.outputs = [TensorSpec("y", "float32", ("batch", 4))]

    def run(self, feed: Mapping[str, Any]):
        self._runs += 1
        if self._options.at == "run" and self._runs > self._options.after_runs:
            _trigger(self._options.fault)
        return [feed["x"]]

    def info(self) -> dict[str, Any]:
        return {"providers": [], "fault": self._options.fault, "at": self._options.at}

    def close(self) -> None:
        pass


class FaultyRuntime:
    name = "faulty"
    package = None  # a harness double: no library
    Options = FaultyOptions

    def capabilities(self) -> dict[str, Any]:
        return {}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        return True, ""

    def version(self) -> str:
        return "0"

    def open(self, model_path: str, threads: int, options: FaultyOptions) -> FaultySession:
        if options.at == "open":
            _trigger(options.fault)
        return FaultySession(options)
