"""PyTorch eager: the zoo's own torch modules, as the reference the ONNX runtimes are compared with.

A zoo fp32 ``model.onnx`` has a ``torch_module.json`` beside it (written by models/base.py):
``{"factory": "module:function", "kwargs": {...}}``; ``function(onnx_dir, **kwargs)`` returns the
torch module, which takes the ONNX inputs positionally, in order. The factory is imported and
called, so only run model folders you trust (as with any pickle). Compressed variants exist only
as ONNX, so for them this runtime is a skip with that reason.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from odbench.core.onnx_tools import onnx_signature
from odbench.core.records import TensorSpec
from odbench.devices.apply import isa_cap, isa_level
from odbench.runtimes.base import BoundSession, RuntimeUnavailable

SIDECAR = "torch_module.json"  # models.base.TORCH_SIDECAR (not imported: keeps runtimes free of the zoo)

@dataclass(frozen=True)
class TorchOptions:
    inter_op_threads: int = 1


def _isa_cap_info(capability: str) -> dict[str, Any]:
    cap = isa_cap()
    if not cap:
        return {}
    used = isa_level(capability)
    enforced = used is None or used <= isa_level(cap)
    return {"isa_cap": {"requested": cap, "enforced": enforced,
                        "detail": f"ATen kernels: {capability}; oneDNN ops honour ONEDNN_MAX_CPU_ISA={cap}"}}


class TorchSession(BoundSession):
    def __init__(self, module, inputs: list[TensorSpec], outputs: list[TensorSpec], threads: int, options: TorchOptions):
        self._module = module
        self.inputs, self.outputs = inputs, outputs
        self._names = [i.name for i in inputs]
        self._threads, self._options = threads, options

    def bind(self, feed: Mapping[str, Any]) -> tuple:
        import numpy as np
        import torch

        return tuple(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self._names)

    def run_bound(self, tensors: tuple):
        import torch

        with torch.inference_mode():
            out = self._module(*tensors)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.numpy() for o in outs]

    def info(self) -> dict[str, Any]:
        import torch

        return {
            "providers": ["torch-eager-cpu"],
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **_isa_cap_info(torch.backends.cpu.get_cpu_capability()),
        }

    def close(self) -> None:
        self._module = None


class TorchEagerRuntime:
    name = "torch"
    package = "torch"
    Options = TorchOptions

    def available(self) -> tuple[bool, str]:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            return False, f"torch is not installed ({exc})"
        return True, ""

    def version(self) -> str:
        import torch

        return torch.__version__

    def capabilities(self) -> dict[str, Any]:
        import torch

        return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkldnn": bool(torch.backends.mkldnn.is_available()),
                "threads": torch.get_num_threads()}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        if not (Path(model_path).parent / SIDECAR).exists():
            return False, ("no PyTorch module for this variant: the torch runtime runs the zoo's fp32 "
                           "models (compressed variants exist only as ONNX)")
        return True, ""

    def open(self, model_path: str, threads: int, options: TorchOptions) -> TorchSession:
        ok, why = self.available()
        if ok:
            ok, why = self.accepts(model_path)
        if not ok:
            raise RuntimeUnavailable(why)
        import torch

        sidecar = Path(model_path).parent / SIDECAR
        meta = json.loads(sidecar.read_text())
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(options.inter_op_threads)
        except RuntimeError:  # already set in this process
            pass
        import importlib

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        module_name, _, func = meta["factory"].partition(":")
        factory = getattr(importlib.import_module(module_name), func)
        module = factory(sidecar.parent, **meta.get("kwargs", {})).eval()
        inputs, outputs = onnx_signature(model_path)
        return TorchSession(module, inputs, outputs, threads, options)
