"""Fault injection for testing the harness: a runtime that crashes, is killed, hangs, blows memory, is slow in
one process, or binds its inputs slowly.

Never part of a default matrix; tests and ``odbench run --runtime faulty`` use it to prove that one
bad cell costs only that cell, that a slowed process widens its cell's interval, and that input
binding stays outside the timer.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from odbench.core.records import TensorSpec
from odbench.runtimes.base import BoundSession
from odbench.runtimes.null import HarnessDouble

Fault = Literal["segv", "kill", "hang", "oom", "raise", "none"]
Where = Literal["open", "run"]
PROCESS_INDEX_ENV = "ODBENCH_PROCESS_INDEX"  # set by the executor: 1-based index of the cell's process


@dataclass(frozen=True)
class FaultyOptions:
    fault: Fault = "segv"
    at: Where = "open"
    after_runs: int = 0  # with at="run": how many good runs before the fault
    work_ms: float = 0.0  # busy time of one inference
    slow_process: int = 0  # this process (1-based) of the cell runs slow_factor times slower
    slow_factor: float = 1.0
    bind_ms: float = 0.0  # time spent binding one feed (outside the timer if the harness is right)


def _trigger(fault: Fault) -> None:
    if fault == "segv":
        ctypes.string_at(0)  # a real SIGSEGV, not a Python exception
    elif fault == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer or a user's `kill -9` does to a cell process
    elif fault == "hang":
        while True:
            time.sleep(3600)
    elif fault == "oom":
        blocks = []
        while True:
            blocks.append(bytearray(256 * 1024 * 1024))
    elif fault == "raise":
        raise RuntimeError("injected fault")


def _busy(ms: float) -> None:
    end = time.perf_counter_ns() + int(ms * 1e6)
    while time.perf_counter_ns() < end:
        pass


class FaultySession(BoundSession):
    def __init__(self, options: FaultyOptions):
        self._options = options
        self._runs = 0
        slowed = options.slow_process and os.environ.get(PROCESS_INDEX_ENV) == str(options.slow_process)
        self._work_ms = options.work_ms * (options.slow_factor if slowed else 1.0)
        self.inputs = [TensorSpec("x", "float32", ("batch", 4))]
        self.outputs = [TensorSpec("y", "float32", ("batch", 4))]

    def bind(self, feed: Mapping[str, Any]) -> Any:
        _busy(self._options.bind_ms)
        return feed["x"]

    def run_bound(self, x: Any) -> list:
        self._runs += 1
        if self._options.at == "run" and self._runs > self._options.after_runs:
            _trigger(self._options.fault)
        _busy(self._work_ms)
        return [x]

    def info(self) -> dict[str, Any]:
        return {"providers": [], "fault": self._options.fault, "at": self._options.at, "work_ms": self._work_ms}


class FaultyRuntime(HarnessDouble):
    name = "faulty"
    Options = FaultyOptions

    def open(self, model_path: str, threads: int, options: FaultyOptions) -> FaultySession:
        if options.at == "open":
            _trigger(options.fault)
        return FaultySession(options)
