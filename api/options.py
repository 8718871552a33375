"""Turning a user's words into typed values, each checked before anything is built.

Every resolver returns the typed value or raises ``UsageError`` with one line that names the problem;
the CLI prints that line and exits 2, a notebook sees a ValueError.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
from pathlib import Path

from odbench.bench.executors import Executor, ExecutorSettings, get_executor
from odbench.bench.run_folder import RunFolder, RunFolderError
from odbench.core.records import TIMING_PRESETS, Timing
from odbench.devices.catalog import get_profile
from odbench.devices.profile import DeviceProfile, ProfileError
from odbench.models import get_model
from odbench.runtimes import get_runtime, option_from_text, parse_options
from odbench.verdicts.budgets import BudgetError, BudgetFile, load_budgets


class UsageError(ValueError):
    """Bad input from the user (a name, a value, a path): one line that says what and why."""

    def __init__(self, text: str):
        super().__init__(one_line(text))


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _message(exc: BaseException) -> str:
    # KeyError's str() is the repr of its argument; its first argument is the message.
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def resolve_profiles(names: tuple[str, ...] | list[str] = ()) -> list[DeviceProfile]:
    try:
        return [get_profile(p) for p in (names or ("host",))]
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def resolve_models(names: tuple[str, ...] | list[str]) -> list:
    try:
        return [get_model(n) for n in names]
    except KeyError as exc:
        raise UsageError(_message(exc)) from None


def existing_file(path: str | Path | None, what: str) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{what} {path} does not exist")
    return p.resolve()


def parse_runtime(text: str) -> tuple[str, dict]:
    """'onnxruntime' or 'onnxruntime:graph_optimization=basic,allow_spinning=false' -> (name, changed options).
    Each value is typed by the runtime's Options (runtimes.option_from_text)."""
    name, _, rest = text.partition(":")
    try:
        runtime = get_runtime(name)
    except KeyError as exc:
        raise UsageError(f"--runtime {text!r}: {_message(exc)}") from None
    defaults = runtime.Options()
    raw: dict = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--runtime {text!r}: expected KEY=VALUE, got {item!r}")
        try:
            raw[key] = option_from_text(runtime, key, value)
        except ValueError as exc:
            raise UsageError(f"--runtime {text!r}: {exc}") from None
    try:
        options = parse_options(runtime, raw)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--runtime {text!r}: {exc}") from None
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


def parse_dims(items: tuple[str, ...] | list[str]) -> tuple[tuple[str, int], ...]:
    dims = []
    for item in items:
        name, sep, value = item.partition("=")
        if not name or not sep or not value.isdigit() or int(value) < 1:
            raise UsageError(f"--dim expects NAME=SIZE with SIZE >= 1, got {item!r}")
        dims.append((name, int(value)))
    return tuple(dims)


def parse_int_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        low, high = int(lo), int(hi)
    except ValueError:
        raise UsageError(f"--int-range expects LOW:HIGH integers, got {text!r}") from None
    if not sep or low >= high:
        raise UsageError(f"--int-range expects LOW:HIGH with LOW < HIGH, got {text!r}")
    return low, high


def timing_for(preset: str, min_time: float | None = None, processes: int | None = None) -> Timing:
    """A timing preset (core.records.TIMING_PRESETS), with its minimum time or process count overridden."""
    if preset not in TIMING_PRESETS:
        raise UsageError(f"unknown preset {preset!r}; known: {', '.join(sorted(TIMING_PRESETS))}")
    timing = TIMING_PRESETS[preset]
    if processes is not None:
        if processes < 1:
            raise UsageError(f"--processes must be >= 1, got {processes}")
        if processes < 2 and timing.gating:
            raise UsageError(f"--processes {processes}: a gating preset needs at least 2 processes "
                             "(one cannot show the variation between processes)")
        timing = dataclasses.replace(timing, processes=processes)
    if min_time is None:
        return timing
    positive(min_time, "--min-time")
    return dataclasses.replace(timing, min_time_s=min_time, max_time_s=max(timing.max_time_s, min_time))


def read_budgets(path: str | Path) -> BudgetFile:
    try:
        return load_budgets(path)
    except BudgetError as exc:
        raise UsageError(str(exc)) from None


def positive(value: float | None, flag: str, unit: str = "seconds") -> float | None:
    """A duration or count that must be a finite number above zero (None: not given)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} must be a positive number of {unit}, got {value:g}")
    return value


def open_run(run_dir: str | Path, need_machine: bool = False) -> RunFolder:
    """An existing run folder; one that lacks cells/ (or machine.json, where ``need_machine``: gate, report and a
    baseline) is a UsageError that names everything missing."""
    root = Path(run_dir)
    missing = [name for name, there in (("cells/", (root / "cells").is_dir()),
                                        ("machine.json", not need_machine or (root / "machine.json").is_file())) if not there]
    if root.is_dir() and missing:
        raise UsageError(f"{run_dir} is not a run folder: it has no {' and no '.join(missing)} "
                         f"(`odbench run --out {run_dir}` writes cells/ and machine.json, the host its cells ran on)")
    try:
        folder = RunFolder.open(run_dir)
        folder.variants(), folder.machine()  # a damaged variants.json or machine.json is named here, once
    except (RunFolderError, KeyError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return folder


def check_out(path: str | Path) -> Path:
    """A folder a run may write to: an existing folder, or one that can be created (nothing is created here);
    a file in the way, or a folder that cannot be written, is a UsageError."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--out {path} is a file, not a folder: give a folder (it is created if missing)")
    ancestor = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), Path("/"))
    if not ancestor.is_dir():
        raise UsageError(f"--out {path} cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path} cannot be written: {ancestor} is not writable")
    return p


def out_folder(path: str | Path) -> RunFolder:
    """The run folder a run writes to, created if need be (``check_out`` first)."""
    check_out(path)
    try:
        return RunFolder(path)
    except (RunFolderError, OSError) as exc:
        raise UsageError(f"--out {path}: {exc}") from None


def make_executor(name: str = "local", scheduler: str | None = None, shared_root: str | None = None, seed: int = 0) -> Executor:
    try:
        return get_executor(name, ExecutorSettings(scheduler=scheduler, shared_root=shared_root, seed=seed))
    except (KeyError, ValueError) as exc:
        raise UsageError(_message(exc)) from None
