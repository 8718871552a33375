"""A session of a runtime that lives in another environment (core/envs.py), for untimed uses in the main one.

Task accuracy and parity are computed in the main environment (the zoo's data, tokenizers and metrics
live there), from the outputs of the runtime under test. For a runtime with an environment of its own,
``Runtime.open`` outside that environment returns a ``RemoteSession``: a server started with the
environment's Python (``python -c BOOT odbench.runtimes.remote RUNTIME MODEL THREADS OPTIONS``) opens
the real session there and answers one feed at a time. Frames are those of the ARM functional check
(bench/arm/_worker.py): host -> ``<u64 length><npz feed>``; server -> ``<kind><u64 length><payload>``,
kind ``J`` (JSON: signature and info, first), ``O`` (npz outputs) or ``E`` (error text).
Never timed: cells always run inside the runtime's environment.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
from typing import Any, Mapping

import numpy as np

from odbench.core.envs import EnvSpec, process_command
from odbench.core.records import TensorSpec
from odbench.runtimes import get_runtime, parse_options
from odbench.runtimes.base import BoundSession, RuntimeUnavailable

LEN = struct.Struct("<Q")
MODULE = "odbench.runtimes.remote"


def _read(stream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _send(out, kind: bytes, payload: bytes) -> None:
    out.write(kind + LEN.pack(len(payload)) + payload)
    out.flush()


def _npz(arrays: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


class RemoteSession(BoundSession):
    def __init__(self, env: EnvSpec, runtime: str, model_path: str, threads: int, options: Mapping[str, Any]):
        argv, extra = process_command(MODULE, [runtime, str(model_path), str(int(threads)), json.dumps(dict(options))], env)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                      env={**os.environ, **extra})
        try:
            head = json.loads(self._expect(b"J"))
        except BaseException:
            self.close()
            raise
        self.inputs = [TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in head["inputs"]]
        self.outputs = [TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in head["outputs"]]
        self._info = {**head["info"], "remote": f"environment {env.name}"}

    def _expect(self, kind: bytes) -> bytes:
        try:
            got = _read(self._proc.stdout, 1)
            (n,) = LEN.unpack(_read(self._proc.stdout, LEN.size))
            payload = _read(self._proc.stdout, n)
        except EOFError:
            self._proc.wait(timeout=30)
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-2:]
            raise RuntimeUnavailable(f"the session in the runtime's environment ended (exit {self._proc.returncode}): "
                                     f"{' | '.join(tail)}") from None
        if got == b"E":
            raise RuntimeError(payload.decode("utf-8", "replace"))
        return payload

    def run_bound(self, feed: Mapping[str, Any]) -> list:
        data = _npz(feed)
        self._proc.stdin.write(LEN.pack(len(data)) + data)
        self._proc.stdin.flush()
        with np.load(io.BytesIO(self._expect(b"O"))) as z:
            return [z[str(i)] for i in range(len(z.files))]

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def close(self) -> None:
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._stderr.close()


def serve(argv: list[str]) -> int:
    """The server, in the runtime's environment: open the real session, answer feeds until stdin closes."""
    runtime, model, threads, options = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything a library prints goes to stderr
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    try:
        rt = get_runtime(runtime)
        session = rt.open(model, threads, parse_options(rt, options))
    except Exception as exc:  # noqa: BLE001 - reported to the host as the session's failure
        _send(out, b"E", f"{type(exc).__name__}: {exc}".encode())
        return 1
    spec = lambda ts: [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in ts]  # noqa: E731
    _send(out, b"J", json.dumps({"inputs": spec(session.inputs), "outputs": spec(session.outputs),
                                 "info": {**session.info(), "version": rt.version()}}, default=str).encode())
    while True:
        try:
            (n,) = LEN.unpack(_read(inp, LEN.size))
            with np.load(io.BytesIO(_read(inp, n))) as z:
                feed = {k: z[k] for k in z.files}
        except EOFError:
            return 0
        try:
            _send(out, b"O", _npz({str(i): o for i, o in enumerate(session.run(feed))}))
        except Exception as exc:  # noqa: BLE001 - one feed's failure, reported; the host decides
            _send(out, b"E", f"{type(exc).__name__}: {exc}".encode())


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1:]))


class EnvironmentRuntime:
    """What a runtime living in an environment of its own shares (ExecuTorch, LiteRT): availability and version
    read from that environment, files of one suffix only, and, outside the environment, a RemoteSession to a
    session opened there. A subclass names its package and says how to probe and open it inside."""

    name: str
    package: str
    distribution: str  # its pip name, for the version
    environment: Any
    kernels: str
    suffix: str
    no_route: str

    def probe(self) -> None:
        """Import what a session needs (inside the environment); ImportError when it is missing."""
        raise NotImplementedError

    def open_here(self, model_path: str, threads: int, options: Any) -> BoundSession:
        raise NotImplementedError

    def available(self) -> tuple[bool, str]:
        if not self.environment.active():
            return self.environment.status()
        try:
            self.probe()
        except ImportError as exc:
            return False, f"{self.distribution} is not importable in environment {self.environment.name!r} ({exc})"
        return True, ""

    def version(self) -> str:
        if self.environment.active():
            return importlib.metadata.version(self.distribution)
        return self.environment.manifest().get("versions", {}).get(self.distribution, "not built")

    def capabilities(self) -> dict[str, Any]:
        ok, why = self.environment.status()
        return {"environment": f"{self.environment.name} ({self.environment.path})" if ok else why, "kernels": self.kernels}

    def accepts(self, model_path: str) -> tuple[bool, str]:
        return (True, "") if str(model_path).endswith(self.suffix) else (False, self.no_route)

    def open(self, model_path: str, threads: int, options: Any) -> BoundSession:
        """In its environment, the real session; outside it (accuracy, parity in the main one), a RemoteSession
        to one opened there (never timed: cells run in the environment)."""
        ok, why = self.available()
        if ok:
            ok, why = self.accepts(model_path)
        if not ok:
            raise RuntimeUnavailable(why)
        if not self.environment.active():
            return RemoteSession(self.environment, self.name, model_path, threads, dataclasses.asdict(options))
        return self.open_here(model_path, threads, options)
