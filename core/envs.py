"""Environments of their own, for runtimes whose libraries cannot share the main lock.

ExecuTorch 1.5.1 requires numpy >= 2 while the main lock pins numpy 1.26 (neural-compressor 3.7.1
needs numpy < 2), so the two cannot live in one environment. A runtime declares an ``EnvSpec``
(``Runtime.environment``); its cells then run with that environment's Python. The cell already is a
process of its own with a spec file in and a result file out (bench/cell.py): that pair of files is
the contract between environments, versioned by ``CELL_CONTRACT_VERSION`` (CellSpec.contract) and
``RESULT_SCHEMA_VERSION`` (Result.schema_version). A mismatch is a one-line ERROR, never a guess.

An environment lives in ``~/.cache/odbench/env-<name>-<lock hash>`` (``$ODBENCH_ENV_CACHE``), keyed by
the sha256 of its lock file (``envs/<name>.txt``): an unchanged lock is reused offline, a new pin
makes a new folder. ``odbench env setup NAME`` builds it (bench/envs.py). The project's own code is
not installed there: the cell is started through ``BOOT``, which maps the ``odbench`` package onto
this checkout (``$ODBENCH_SOURCE``), so one environment serves every checkout of the same lock.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

CELL_CONTRACT_VERSION = 1  # bump on any change to what bench/cell.py reads from the spec or writes back
ENV_VAR = "ODBENCH_ENV"  # set in a process started with an environment's Python: that environment's name
SOURCE_VAR = "ODBENCH_SOURCE"  # the checkout whose code the process runs
READY = "env.json"  # written last by setup: the environment is complete
CONTRACT_EXIT = 3  # a cell process that cannot read its spec's contract version exits with this code

# `python -c BOOT MODULE ARGS...`: run MODULE of this checkout's odbench with another interpreter.
# The odbench package's path is [odbench/, root], so odbench.core is found at root/core (as the
# package-dir mapping of pyproject.toml does for an installed copy).
BOOT = ("import importlib.util as u,os,runpy,sys; r=os.environ['" + SOURCE_VAR + "']; "
        "s=u.spec_from_file_location('odbench',os.path.join(r,'odbench','__init__.py'),"
        "submodule_search_locations=[os.path.join(r,'odbench'),r]); m=u.module_from_spec(s); "
        "sys.modules['odbench']=m; s.loader.exec_module(m); mod=sys.argv[1]; sys.argv=[mod]+sys.argv[2:]; "
        "runpy.run_module(mod,run_name='__main__',alter_sys=True)")


class ContractError(ValueError):
    """A spec or result file written under another contract version than this code reads."""


def check_contract(version: object, what: str = "cell spec") -> None:
    if version != CELL_CONTRACT_VERSION:
        raise ContractError(
            f"{what} contract version {version!r}, but this environment's odbench reads version {CELL_CONTRACT_VERSION} "
            f"(python {sys.executable}, environment {os.environ.get(ENV_VAR) or 'main'}): both sides must run the same odbench")


def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    return Path(os.environ.get("ODBENCH_ENV_CACHE") or Path.home() / ".cache" / "odbench")


@dataclass(frozen=True)
class EnvSpec:
    """A locked environment a runtime runs in. ``lock``: a pip requirements file (full, pinned), relative
    to the project root; ``pip_args``: extra arguments for its install (e.g. ``--no-deps`` for a lock that
    is the full resolution already)."""

    name: str
    lock: str
    purpose: str = ""
    pip_args: tuple[str, ...] = ("--no-deps",)

    @property
    def lock_path(self) -> Path:
        return project_root() / self.lock

    def lock_hash(self) -> str:
        try:
            data = self.lock_path.read_bytes()
        except OSError:
            return "nolock"
        payload = data + json.dumps(list(self.pip_args)).encode() + f"py{sys.version_info[0]}.{sys.version_info[1]}".encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return cache_root() / f"env-{self.name}-{self.lock_hash()}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def setup_command(self) -> str:
        return f"odbench env setup {self.name}"

    def active(self) -> bool:
        """Is this process running in this environment (started by the harness with its Python)?"""
        return os.environ.get(ENV_VAR) == self.name

    def manifest(self) -> dict:
        try:
            return json.loads((self.path / READY).read_text())
        except (OSError, ValueError):
            return {}

    def status(self) -> tuple[bool, str]:
        """(True, "") when built for the current lock, else (False, why, with the command that builds it)."""
        if not self.lock_path.exists():
            return False, f"environment {self.name!r}: its lock file {self.lock} is missing"
        if not (self.path / READY).exists() or not self.python.exists():
            return False, (f"environment {self.name!r} is not built for its lock ({self.path} is absent): "
                           f"run `{self.setup_command}` (or `make mobile-setup`)")
        return True, ""


def process_command(module: str, args: list[str], env: EnvSpec | None) -> tuple[list[str], dict[str, str]]:
    """The argv and the extra environment variables that run ``python -m module args`` in ``env`` (None or
    the active one: this interpreter)."""
    if env is None or env.active():
        return [sys.executable, "-m", module, *args], {}
    return [str(env.python), "-c", BOOT, module, *args], {ENV_VAR: env.name, SOURCE_VAR: str(project_root())}
