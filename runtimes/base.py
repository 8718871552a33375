"""The Runtime/Session seam.

A ``Runtime`` opens a model file for a device profile and returns a ``Session``.
A ``Session`` describes its inputs and runs one feed. The harness owns timing;
the runtime owns inference (the LoadGen ``SystemUnderTest`` split).

Heavy libraries are imported inside ``open``/``version``/``available`` only, so a
missing runtime is a reasoned skip, never an import error.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

from odbench.core.records import TensorSpec

if TYPE_CHECKING:
    import numpy as np


class RuntimeUnavailable(RuntimeError):
    """The runtime is not installed, or cannot serve the requested profile."""


class ProviderFallbackError(RuntimeError):
    """An execution provider was requested but the session is not using it."""


class Session(Protocol):
    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    def bind(self, feed: Mapping[str, "np.ndarray"]) -> Any:
        """Turn a feed into the runtime's own input objects, once, outside the timer."""
        ...

    def run_bound(self, bound: Any) -> list["np.ndarray"]:
        """The timed call: one inference on bound inputs, outputs as host numpy arrays."""
        ...

    def run(self, feed: Mapping[str, "np.ndarray"]) -> list["np.ndarray"]: ...

    def info(self) -> dict[str, Any]:
        """What the runtime actually did: providers in use, thread counts, etc."""
        ...

    def close(self) -> None: ...


class Runtime(Protocol):
    name: str
    package: str | None  # import name of its library: lets `devices` list what is installed without importing it
    Options: type  # a frozen dataclass with defaults; the runtime's typed config

    def available(self) -> tuple[bool, str]:
        """(True, "") when usable here, else (False, reason)."""
        ...

    def version(self) -> str: ...

    def capabilities(self) -> dict[str, Any]:
        """What this machine offers the runtime: execution providers, devices, kernel ISA (for `odbench devices`)."""
        ...

    def accepts(self, model_path: str) -> tuple[bool, str]:
        """(True, "") when this runtime can run this file at all (cheap: no session is made)."""
        ...

    def open(self, model_path: str, threads: int, options: Any) -> Session: ...


class BoundSession:
    """What every adapter's session shares: the same work inside the timer for every runtime.

    The harness calls ``bind`` once per feed before timing and times ``run_bound`` only: inference
    plus handing the outputs back as host numpy arrays. Converting a feed (numpy -> ORT OrtValues
    through IOBinding, OpenVINO tensors, MNN constants, torch tensors) is never timed, for any
    runtime, including the null session. ``run(feed)`` is for untimed uses (parity, accuracy).
    """

    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    def bind(self, feed: Mapping[str, Any]) -> Any:
        return feed

    def run_bound(self, bound: Any) -> list:
        raise NotImplementedError

    def run(self, feed: Mapping[str, Any]) -> list:
        return self.run_bound(self.bind(feed))

    def info(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass
