"""`odbench env`: the runtimes' own environments (core/envs.py, bench/envs.py).

    odbench env list                    each environment: its lock, runtimes and whether it is built
    odbench env setup NAME [--best-effort] [--refresh]   build it (network, once), then reuse it offline
"""
from __future__ import annotations

import click

from odbench.bench.envs import EnvSetupError, env_line, get_env, known_envs, setup
from odbench.cli.common import log, usage


@click.group("env")
def env_cmd() -> None:
    """Environments of their own for runtimes that cannot share the main lock (ExecuTorch: numpy>=2)."""


@env_cmd.command("list")
def env_list() -> int:
    for env, runtimes in known_envs().values():
        click.echo(env_line(env, runtimes))
    return 0


@env_cmd.command("setup")
@click.argument("names", nargs=-1)
@click.option("--all", "every", is_flag=True, help="every declared environment")
@click.option("--refresh", is_flag=True, help="rebuild even if built for this lock")
@click.option("--best-effort", is_flag=True, help="exit 0 when one cannot be built (its runtime's cells then SKIP)")
def env_setup(names: tuple[str, ...], every: bool, refresh: bool, best_effort: bool) -> int:
    if every:
        names = tuple(known_envs())
    if not names:
        raise usage(f"name an environment ({', '.join(known_envs())}) or pass --all")
    try:
        envs = [get_env(n) for n in names]
    except KeyError as exc:
        raise usage(str(exc.args[0])) from None
    failed = 0
    for env in envs:
        try:
            setup(env, refresh=refresh, log=log)
        except (EnvSetupError, OSError) as exc:
            log(f"[env] {env.name}: not built: {exc}")
            failed += 1
    return 0 if (best_effort or not failed) else 1
