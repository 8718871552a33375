"""What every command shares: consoles, one-line usage errors, and the API's resolvers.

A bad flag value never reaches the work: each resolver (api/options.py) either returns the typed
value or raises ``UsageError`` with one line that names the problem; `odbench` prints it and exits 2.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from odbench.api.options import (  # noqa: F401  (the resolvers every command uses)
    UsageError,
    existing_file,
    one_line,
    open_run,
    parse_dims,
    parse_int_range,
    parse_runtime,
    parse_runtimes,
    read_budgets,
    resolve_models,
    resolve_profiles,
)

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


def usage(text: str) -> UsageError:
    return UsageError(text)


def cache_path(ctx: click.Context) -> Path:
    return Path(ctx.obj["cache"]).resolve()


def set_offline_env() -> None:
    """Nothing may download at run time; the tokenizers' thread pool must not fork-warn in every cell."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
