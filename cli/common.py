"""What every command shares: consoles, one-line usage errors, and turning flags into typed values.

A bad flag value never reaches the work: each resolver below either returns the typed value or
raises ``click.UsageError`` with one line that names the problem (the CLI exits 2 with it).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import sys
from pathlib import Path

import click
from rich.console import Console

from odbench.verdicts.budgets import BudgetError, BudgetFile, load_budgets
from odbench.bench.store import ResultStore
from odbench.bench.store import load_variants
from odbench.devices.profile import DeviceProfile, ProfileError
from odbench.devices.catalog import get_profile
from odbench.models import get_model
from odbench.runtimes import get_runtime, parse_options

BAD_VERDICTS = ("ERROR", "TIMEOUT")


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, tests) gets wide tables instead of cells wrapped at 80 columns.
    wide = None if stream.isatty() else 250
    return Console(file=stream, width=wide, markup=False, highlight=False, emoji=False)


def out() -> Console:
    """stdout, for what a command produces (tables, paths)."""
    return _console(stderr=False)


def err() -> Console:
    """stderr, for progress and log lines."""
    return _console(stderr=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def usage(text: str) -> click.UsageError:
    return click.UsageError(one_line(text))


def _message(exc: BaseException) -> str:
    # KeyError's str() is the repr of its argument; its first argument is the message.
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def cache_path(ctx: click.Context) -> Path:
    return Path(ctx.obj["cache"]).resolve()


def resolve_profiles(names: tuple[str, ...]) -> list[DeviceProfile]:
    try:
        return [get_profile(p) for p in (names or ("host",))]
    except ProfileError as exc:
        raise usage(str(exc)) from None


def resolve_models(names: tuple[str, ...]) -> list:
    try:
        return [get_model(n) for n in names]
    except KeyError as exc:
        raise usage(_message(exc)) from None


def existing_file(path: str | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise usage(f"{what} {path} does not exist")
    return p.resolve()


def parse_runtime(text: str) -> tuple[str, dict]:
    """'onnxruntime' or 'onnxruntime:graph_optimization=basic,allow_spinning=false' -> (name, changed options)."""
    name, _, rest = text.partition(":")
    try:
        runtime = get_runtime(name)
    except KeyError as exc:
        raise usage(f"--runtime {text!r}: {_message(exc)}") from None
    defaults = runtime.Options()
    raw: dict = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise usage(f"--runtime {text!r}: expected KEY=VALUE, got {item!r}")
        current = getattr(defaults, key, None)
        try:
            if isinstance(current, bool):
                raw[key] = value.lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int):
                raw[key] = int(value)
            elif isinstance(current, tuple):
                raw[key] = tuple(value.split("+"))
            else:
                raw[key] = value
        except ValueError:
            raise usage(f"--runtime {text!r}: {key} expects an integer, got {value!r}") from None
    try:
        options = parse_options(runtime, raw)
    except (ValueError, TypeError) as exc:
        raise usage(f"--runtime {text!r}: {exc}") from None
    changed = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
               if getattr(options, f.name) != getattr(defaults, f.name)}
    return name, {k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()}


def parse_runtimes(texts: list[str] | tuple[str, ...]) -> list[tuple[str, dict]]:
    """Each --runtime, with 'a|b|c' values expanded into one runtime config each (a sweep):
    'onnxruntime:graph_optimization=disable|all' -> two configs."""
    configs = []
    for text in texts:
        name, _, rest = text.partition(":")
        items = [item.partition("=") for item in filter(None, rest.split(","))]
        choices = [[f"{k}{sep}{v}" for v in value.split("|")] for k, sep, value in items]
        for combo in itertools.product(*choices) if choices else [()]:
            config = parse_runtime(name + (":" + ",".join(combo) if combo else ""))
            if config not in configs:
                configs.append(config)
    return configs


def parse_dims(items: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    dims = []
    for item in items:
        name, sep, value = item.partition("=")
        if not name or not sep or not value.isdigit() or int(value) < 1:
            raise usage(f"--dim expects NAME=SIZE with SIZE >= 1, got {item!r}")
        dims.append((name, int(value)))
    return tuple(dims)


def parse_int_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        low, high = int(lo), int(hi)
    except ValueError:
        raise usage(f"--int-range expects LOW:HIGH integers, got {text!r}") from None
    if not sep or low >= high:
        raise usage(f"--int-range expects LOW:HIGH with LOW < HIGH, got {text!r}")
    return low, high


def read_budgets(path: str) -> BudgetFile:
    try:
        return load_budgets(path)
    except BudgetError as exc:
        raise usage(str(exc)) from None


def positive(value: float | None, flag: str, unit: str = "seconds") -> float | None:
    """A duration or count that must be a finite number above zero (None: not given)."""
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise usage(f"{flag} must be a positive number of {unit}, got {value:g}")
    return value


def output_folder(path: str, flag: str = "--out") -> Path:
    """A folder results may be written to: an existing directory, or one that can be created (its first
    existing ancestor is a writable directory). Checked before anything is built."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise usage(f"{flag} {path} is a file, not a folder: give a folder (it is created if missing)")
    ancestor = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), Path("/"))
    if not ancestor.is_dir():
        raise usage(f"{flag} {path} cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise usage(f"{flag} {path} cannot be written: {ancestor} is not writable")
    return p


def check_run_folder(run_dir: Path, need_machine: bool = True) -> None:
    """A run folder holds cells/ and machine.json (`odbench run --out` writes both); the message names what is missing."""
    if not run_dir.exists():
        raise usage(f"{run_dir} is not a run folder: it does not exist; run `odbench run --out {run_dir}` first")
    if not run_dir.is_dir():
        raise usage(f"{run_dir} is not a run folder: it is a file")
    missing = [name for name, there in (("cells/", (run_dir / "cells").is_dir()),
                                        ("machine.json", not need_machine or (run_dir / "machine.json").is_file())) if not there]
    if missing:
        raise usage(f"{run_dir} is not a run folder: it has no {' and no '.join(missing)} "
                    f"(`odbench run --out {run_dir}` writes cells/ and machine.json)")


def load_run(run_dir: Path, need_machine: bool = True) -> tuple[ResultStore, dict, dict]:
    """A run folder's store, variants and machine record; a folder without cells/ (or machine.json,
    unless ``need_machine`` is False) is a usage error naming what is missing."""
    check_run_folder(run_dir, need_machine)
    machine = json.loads((run_dir / "machine.json").read_text()) if (run_dir / "machine.json").exists() else {}
    return ResultStore(run_dir), load_variants(run_dir), machine


def set_offline_env() -> None:
    """Nothing may download at run time; the tokenizers' thread pool must not fork-warn in every cell."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
