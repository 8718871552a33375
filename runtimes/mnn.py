"""MNN (optional extra: ``pip install MNN==3.6.1``), CPU backend, on the ONNX file converted to .mnn.

Telemetry: MNN's converter CLI and its ``MNN.tools`` package import ``MNN/tools/utils/log.py``,
which runs ``pip install aliyun-log-python-sdk`` and posts usage logs to a remote server. This
adapter never imports ``MNN.tools``: it calls the converter's C extension (``_tools.mnnconvert``)
directly, in a child process where sockets, ``os.system`` and subprocesses are disabled before
anything of MNN is imported. Only ``MNN.nn``/``MNN.expr`` run the model.

Conversion happens once per ONNX sha256 (cached in $ODBENCH_MNN_CACHE, default <tmp>/odbench-mnn); its time is reported apart
(``info()["conversion_s"]``), not in the session-creation time of later processes.
MNN takes int32 where ONNX says int64: inputs are cast once per feed when bound, and a value
outside int32 is an error, not a silent wrap.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from odbench.core.onnx_tools import onnx_signature
from odbench.runtimes.base import BoundSession, RuntimeUnavailable

# Run in a fresh interpreter: block the network and process spawning, then convert.
_CONVERT = r"""
import os, socket, subprocess, sys
def _blocked(*a, **k):
    raise RuntimeError("odbench: network and process spawning are disabled during MNN conversion")
socket.socket = socket.create_connection = _blocked
os.system = os.popen = subprocess.Popen = _blocked
import _tools
_tools.mnnconvert(["mnnconvert", "-f", "ONNX", "--modelFile", sys.argv[1], "--MNNModel", sys.argv[2], "--bizCode", "odbench"])
assert "MNN.tools" not in sys.modules
"""
INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class MnnOptions:
    precision: Literal["high", "normal", "low"] = "high"  # "low" allows fp16/bf16 where the CPU has it


def convert(model_path: str, timeout_s: float = 600.0) -> tuple[Path, float]:
    """ONNX -> .mnn (cached by sha256). Returns (path, seconds spent converting now; 0 if cached)."""
    h = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:16]
    out = Path(os.environ.get("ODBENCH_MNN_CACHE") or Path(tempfile.gettempdir()) / "odbench-mnn") / f"{h}.mnn"
    if out.exists():
        return out, 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CONVERT, model_path, str(tmp)], capture_output=True, text=True,
                          timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "Converted Success" not in log or not tmp.exists():
        tmp.unlink(missing_ok=True)
        unsupported = [line.strip() for line in log.splitlines() if "Not Support" in line]
        raise RuntimeError("MNN cannot convert this model: " + ("; ".join(unsupported) or log[-600:]))
    tmp.replace(out)
    return out, seconds


@contextlib.contextmanager
def _stdout_to_stderr():
    """MNN's C library prints its CPU feature line to stdout on import: keep stdout for our own output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _import_mnn():
    with _stdout_to_stderr():
        import MNN  # noqa: F401  (not MNN.tools: see the module docstring)
        import MNN.expr  # noqa: F401
        import MNN.nn  # noqa: F401


class MnnSession(BoundSession):
    def __init__(self, net, inputs, outputs, threads: int, options: MnnOptions, mnn_path: Path, conversion_s: float):
        self._net = net
        self.inputs, self.outputs = inputs, outputs
        self._threads, self._options = threads, options
        self._mnn_path, self._conversion_s = mnn_path, conversion_s

    def bind(self, feed: Mapping[str, Any]) -> list:
        import MNN.expr as F
        import numpy as np

        out = []
        for spec in self.inputs:
            a = np.asarray(feed[spec.name])
            if a.dtype.kind in "iu":
                if a.size and (a.min() < INT32[0] or a.max() > INT32[1]):
                    raise ValueError(f"input {spec.name!r}: values outside int32, which MNN uses for integers")
                out.append(F.const(np.ascontiguousarray(a, dtype=np.int32), list(a.shape), F.NCHW, F.int))
            else:
                out.append(F.const(np.ascontiguousarray(a, dtype=np.float32), list(a.shape), F.NCHW, F.float))
        return out

    def run_bound(self, bound: list):
        import numpy as np

        outs = self._net.forward(bound)
        return [np.array(o.read()) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]

    def info(self) -> dict[str, Any]:
        return {"providers": ["MNN-CPU"], "precision": self._options.precision, "intra_op_threads": self._threads,
                "converted_model": str(self._mnn_path), "conversion_s": round(self._conversion_s, 2),
                "telemetry": "MNN.tools never imported; conversion ran with network and subprocesses disabled"}

    def close(self) -> None:
        self._net = None


class MnnRuntime:
    name = "mnn"
    package = "MNN"

    Options = MnnOptions

    def capabilities(self) -> dict[str, Any]:
        return {"backends": ["CPU"], "note": "converted from ONNX via the C converter; MNN.tools (telemetry) is never imported"}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return True, ""

    def available(self) -> tuple[bool, str]:
        try:
            _import_mnn()
        except ImportError as exc:
            return False, f"MNN is not installed ({exc}); it is an optional extra: `pip install MNN==3.6.1`"
        return True, ""

    def version(self) -> str:
        from importlib.metadata import version

        return version("MNN")

    def open(self, model_path: str, threads: int, options: MnnOptions) -> MnnSession:
        ok, why = self.available()
        if not ok:
            raise RuntimeUnavailable(why)
        mnn_path, conversion_s = convert(model_path)
        import MNN.nn as nn

        inputs, outputs = onnx_signature(model_path)
        manager = nn.create_runtime_manager(({"backend": "CPU", "precision": options.precision, "numThread": threads},))
        net = nn.load_module_from_file(str(mnn_path), [i.name for i in inputs], [o.name for o in outputs],
                                       runtime_manager=manager)
        return MnnSession(net, inputs, outputs, threads, options, mnn_path, conversion_s)
