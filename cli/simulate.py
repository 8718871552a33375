"""`odbench simulate`: the seeded simulation of the gate and the regression check (docs/statistics.md)."""
from __future__ import annotations

import sys

import click

from odbench.verdicts import simulation


@click.command("simulate")
@click.option("--trials", type=click.IntRange(min=0), default=2000, show_default=True, help="runs per gate row (0: skip the gate rows)")
@click.option("--regression-trials", type=click.IntRange(min=0), default=2000, show_default=True,
              help="runs per regression row (0: skip them)")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate_cmd(trials: int, regression_trials: int, seed: int) -> int:
    """Print the error-rate table of the gate and the regression check (minutes at the defaults)."""
    t = simulation.table(trials, regression_trials, seed, on_row=lambda row: print(f"# done: {row}", file=sys.stderr, flush=True))
    print(simulation.to_markdown(t))
    return 0
