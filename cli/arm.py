"""`odbench arm setup|check|table`: the ARM functional check under qemu-user (bench/arm/)."""
from __future__ import annotations

from pathlib import Path

import click

from odbench.api.options import open_run, resolve_models
from odbench.bench.arm.env import ArmEnvError
from odbench.bench.arm.functional import check_run, prepare_env, setup_text, table_text
from odbench.cli.common import log

RUN_DIR = click.Path(file_okay=False, path_type=Path)


@click.group("arm")
def arm_cmd() -> None:
    """The ARM functional check: aarch64 builds of the runtimes under qemu-user, outputs judged by parity (no timing)."""


@arm_cmd.command("setup")
@click.option("--refresh", is_flag=True, help="ask Debian and PyPI again (new versions make a new folder)")
@click.option("--best-effort", is_flag=True, help="exit 0 when it cannot be prepared (the checks then SKIP, with the reason)")
def arm_setup_cmd(refresh: bool, best_effort: bool) -> int:
    """Prepare (or reuse) the emulated aarch64 environment (about 300 MB and 2 minutes once, then offline)."""
    try:
        env = prepare_env(refresh=refresh, log=log)
    except ArmEnvError as exc:
        print(f"odbench arm: {exc}")
        return 0 if best_effort else 1
    print(setup_text(env))
    return 0


@arm_cmd.command("check")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--accuracy", multiple=True, metavar="MODEL",
              help="also compute this zoo model's task accuracy on the ARM outputs (repeatable; 'all')")
@click.option("--runtime", multiple=True, help="only this runtime's cells (repeatable)")
def arm_check_cmd(run_dir: Path, accuracy: tuple[str, ...], runtime: tuple[str, ...]) -> int:
    """Rerun a run folder's aarch64 cells on the aarch64 runtimes under qemu; their results replace the SKIPPED ones."""
    open_run(run_dir)
    resolve_models([m for m in accuracy if m != "all"])
    try:
        env = prepare_env(log=log)
    except ArmEnvError as exc:
        print(f"odbench arm: {exc}")
        return 1
    results = check_run(run_dir, accuracy=accuracy, env=env, runtimes=runtime, log=log)
    print(table_text(run_dir, results))
    return 0 if all(r.verdict in ("OK", "SKIPPED") for r in results) else 1


@arm_cmd.command("table")
@click.argument("run_dir", type=RUN_DIR)
def arm_table_cmd(run_dir: Path) -> int:
    """Print the ARM functional table of a run folder (no emulation)."""
    open_run(run_dir)
    print(table_text(run_dir))
    return 0
