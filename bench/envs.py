"""Building the runtimes' own environments (core/envs.py) and choosing the interpreter of a cell.

    odbench env setup NAME [--best-effort]   build (or reuse, offline) ~/.cache/odbench/env-NAME-<lock hash>
    odbench env list                          every environment, its state and the runtimes that use it

The environment is a venv made from the base interpreter of this one (same CPython), with the lock
installed by pip (the network is used the first time only). ``env.json``, written last, records the
versions installed; a half-built folder has none and is rebuilt.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from odbench.core.envs import READY, EnvSpec
from odbench.core.records import atomic_write_text
from odbench.runtimes import RUNTIMES, get_runtime


class EnvSetupError(RuntimeError):
    """The environment cannot be built; the message says why in one line."""


def environment_of(runtime: str) -> EnvSpec | None:
    """The environment a runtime's cells run in (None: the main one)."""
    return getattr(get_runtime(runtime), "environment", None)


def known_envs() -> dict[str, tuple[EnvSpec, list[str]]]:
    """Every declared environment -> (spec, the runtimes that use it)."""
    found: dict[str, tuple[EnvSpec, list[str]]] = {}
    for name in RUNTIMES:
        env = environment_of(name)
        if env is not None:
            found.setdefault(env.name, (env, []))[1].append(name)
    return found


def get_env(name: str) -> EnvSpec:
    envs = known_envs()
    if name not in envs:
        raise KeyError(f"unknown environment {name!r}; known: {', '.join(sorted(envs)) or 'none'}")
    return envs[name][0]


def _run(cmd: list[str], log: Callable[[str], None]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if "is ignored" not in ln][-3:]
        raise EnvSetupError(f"`{' '.join(cmd[:4])} ...` failed ({proc.returncode}): {' | '.join(tail)}")


def base_python() -> str:
    """The interpreter this venv was made from (a new venv is made from it, not from this venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def installed_versions(env: EnvSpec) -> dict[str, str]:
    code = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"
    proc = subprocess.run([str(env.python), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvSetupError(f"environment {env.name}: its Python does not start: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout)


def setup(env: EnvSpec, refresh: bool = False, log: Callable[[str], None] = print) -> Path:
    """Build (or reuse) ``env``; returns its folder. Raises EnvSetupError with the reason."""
    ok, why = env.status()
    if ok and not refresh:
        log(f"[env] {env.name}: reusing {env.path}")
        return env.path
    if not env.lock_path.exists():
        raise EnvSetupError(why)
    path, t0 = env.path, time.perf_counter()
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"[env] {env.name}: building {path} from {env.lock} (network, once) ...")
    try:
        _run([base_python(), "-m", "venv", str(path)], log)
        _run([str(env.python), "-m", "pip", "install", "--quiet", "--no-compile", *env.pip_args, "-r", str(env.lock_path)], log)
        versions = installed_versions(env)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # no half-built folder poses as ready
        raise
    manifest = {"name": env.name, "lock": env.lock, "lock_hash": env.lock_hash(), "python": sys.version.split()[0],
                "built_s": round(time.perf_counter() - t0, 1), "versions": versions}
    atomic_write_text(path / READY, json.dumps(manifest, indent=1))
    log(f"[env] {env.name}: ready in {manifest['built_s']:.0f}s")
    return path


def env_line(env: EnvSpec, runtimes: list[str]) -> str:
    ok, why = env.status()
    state = f"built at {env.path}" if ok else why
    return f"{env.name} ({env.lock}, runtimes: {', '.join(runtimes)}): {state}"
