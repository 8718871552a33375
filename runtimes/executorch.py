"""ExecuTorch (PyTorch's on-device runtime) on XNNPACK: runs the ``.pte`` programs of compressors/executorch_export.py.

ExecuTorch 1.5.1 needs numpy >= 2, so this runtime lives in an environment of its own (core/envs.py,
lock envs/executorch.txt): its cells run with that environment's Python, and in the main environment
it is available exactly when that environment is built (else SKIPPED with `odbench env setup executorch`).

A ``.pte`` has a ``signature.json`` beside it (written at export): the ONNX-named inputs and outputs and
the export's delegation record (ops lowered to XNNPACK and ops left to the portable CPU kernels). The
session reports that record, the backends registered in this build and the threadpool size it set,
so a graph that falls back off XNNPACK is visible in the cell's provenance (runtime_info).
Sources: ExecuTorch docs, "Building and Running ExecuTorch with XNNPACK Backend" and "Runtime Python API"
(https://docs.pytorch.org/executorch/stable/).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from odbench.core.envs import EnvSpec
from odbench.core.records import TensorSpec
from odbench.runtimes.base import BoundSession, ProviderFallbackError, RuntimeUnavailable
from odbench.runtimes.remote import EnvironmentRuntime

ENVIRONMENT = EnvSpec("executorch", "envs/executorch.txt", purpose="ExecuTorch 1.5.1 + torch 2.13.0 CPU (numpy>=2)")
SIGNATURE = "signature.json"
SUFFIX = ".pte"
MAX_BATCH = 4096  # compressors/executorch_export.py DIM_MAX's default: the exports' upper bound on a symbolic dim
NO_ROUTE = ("ExecuTorch runs .pte programs exported from a torch module (compressors/executorch_export.py); "
            "an ONNX file has no route to .pte")


@dataclass(frozen=True)
class ExecuTorchOptions:
    method: str = "forward"


def read_signature(model_path: str) -> dict:
    path = Path(model_path).with_name(SIGNATURE)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RuntimeUnavailable(f"{path} is missing or unreadable ({exc}): re-export the variant") from None


def specs_of(items: list) -> list[TensorSpec]:
    return [TensorSpec(i["name"], i["dtype"], tuple(i["shape"])) for i in items]


class ExecuTorchSession(BoundSession):
    def __init__(self, method, signature: dict, info: dict):
        self._method, self._info = method, info
        self.inputs, self.outputs = specs_of(signature["inputs"]), specs_of(signature["outputs"])
        self._names = [i.name for i in self.inputs]
        self._max_batch = int(signature.get("max_batch", MAX_BATCH))

    def bind(self, feed: Mapping[str, Any]) -> list:
        import numpy as np
        import torch

        return [torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self._names]

    def run(self, feed: Mapping[str, Any]) -> list:
        """Untimed (accuracy, parity): a batch above the export's upper bound on ``batch`` (memory is planned
        for it) is run in chunks and the outputs concatenated, as every zoo model scores rows independently."""
        n = len(next(iter(feed.values()))) if feed else 0
        batched = all(t.shape and t.shape[0] == "batch" for t in self.inputs)
        if not batched or n <= self._max_batch:
            return self.run_bound(self.bind(feed))
        import numpy as np

        parts = [self.run_bound(self.bind({k: v[s: s + self._max_batch] for k, v in feed.items()})) for s in range(0, n, self._max_batch)]
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def run_bound(self, tensors: list) -> list:
        import numpy as np

        # Outputs may live in the program's planned memory, reused by the next call: copied to host arrays.
        return [np.array(o.numpy(), copy=True) for o in self._method.execute(tensors)]

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def close(self) -> None:
        self._method = None


def session_info(signature: dict, registered: list[str], threads: int) -> dict[str, Any]:
    """What runs: the delegates the export lowered to (and what it left on portable kernels)."""
    d = signature.get("delegation", {})
    fallback = d.get("non_delegated", {})
    delegates = list(d.get("delegates", []))
    providers = delegates + (["portable-cpu (fallback)"] if fallback else [])
    info = {"providers": providers or ["portable-cpu"], "threads": threads, "registered_backends": registered,
            "delegated_ops": d.get("delegated_count"), "non_delegated_ops": fallback, "quant": signature.get("quant")}
    if fallback:
        info["fallback"] = f"{sum(fallback.values())} op(s) not on XNNPACK: {', '.join(sorted(fallback))}"
    return info


class ExecuTorchRuntime(EnvironmentRuntime):
    name = "executorch"
    package = "executorch"
    distribution = "executorch"
    Options = ExecuTorchOptions
    environment = ENVIRONMENT
    kernels = "XNNPACK delegate (x86-64 and ARM)"
    suffix = SUFFIX
    no_route = NO_ROUTE

    def probe(self) -> None:
        import executorch.runtime  # noqa: F401

    def open_here(self, model_path: str, threads: int, options: ExecuTorchOptions) -> ExecuTorchSession:
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        signature = read_signature(model_path)
        portable_lib._unsafe_reset_threadpool(int(threads))  # XNNPACK's threadpool: the profile's threads
        rt = Runtime.get()
        registered = list(rt.backend_registry.registered_backend_names)
        delegates = signature.get("delegation", {}).get("delegates", [])
        missing = [d for d in delegates if d not in registered]
        if missing:
            raise ProviderFallbackError(f"the program delegates to {missing}, not registered in this ExecuTorch build ({registered})")
        method = rt.load_program(model_path).load_method(options.method)
        info = session_info(signature, registered, int(portable_lib._threadpool_get_thread_count()))
        return ExecuTorchSession(method, signature, info)
