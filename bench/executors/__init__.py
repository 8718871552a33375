"""Executors run planned cells and hand each Result to the store as it finishes.

``local`` (default): fresh processes per cell on this machine, with a timeout.
``dask``: the same cells on Dask workers that run on the target devices, routed by profile.

Grep ``EXECUTORS`` to find every executor; ``get_executor`` is the only way the CLI makes one.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, runtime_checkable

from odbench.bench.run_folder import RunFolder
from odbench.core.records import CellSpec, Result

EXECUTORS: dict[str, str] = {
    "local": "odbench.bench.executors.local:LocalExecutor",
    "dask": "odbench.bench.executors.dask:DaskExecutor",
}


@dataclass(frozen=True)
class ExecutorSettings:
    """Everything an executor may be configured with (one flag each on `odbench run`)."""

    scheduler: str | None = None  # dask: scheduler address (else env ODBENCH_SCHEDULER)
    shared_root: str | None = None  # dask: workers see files under this path as-is
    seed: int = 0  # local: the seeded order in which the processes of all cells are interleaved


@runtime_checkable
class Executor(Protocol):
    """Runs cells, skipping those already in the store, and puts each Result in the store as it finishes."""

    name: str

    @classmethod
    def from_settings(cls, settings: ExecutorSettings) -> "Executor":
        """Make one; a bad setting (e.g. no scheduler address) is a ValueError with a one-line message."""
        ...

    def run(
        self,
        cells: Iterable[CellSpec],
        store: RunFolder,
        on_start: Callable[[CellSpec], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
    ) -> list[Result]:
        ...


def get_executor(name: str, settings: ExecutorSettings = ExecutorSettings()) -> Executor:
    """The named executor, configured; KeyError for an unknown name, ValueError for bad settings."""
    try:
        module, cls = EXECUTORS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}") from None
    return getattr(importlib.import_module(module), cls).from_settings(settings)
