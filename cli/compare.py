"""`odbench compare BASE CAND`: is CAND slower, faster or the same as BASE, on this machine? (api/compare.py)

BASE and CAND are ONNX files or zoo variant ids (``ctr-ml100k/fp32``; a compressed variant once built by
`odbench compress` or `odbench run`). Prints the effect with its 95% interval, the verdict and the design that
gave it. Exit: 0 SAME or FASTER, 1 SLOWER, 3 INCONCLUSIVE, 4 not measured, 2 usage.
"""
from __future__ import annotations

from pathlib import Path

import click

from odbench.api import comparison as api
from odbench.cli.common import cache_path, log, usage
from odbench.stats.paired import DEFAULT_MARGIN
from odbench.verdicts.compare import exit_code


@click.command("compare")
@click.argument("base")
@click.argument("cand")
@click.option("--runtime", "runtime_text", default="onnxruntime", show_default=True, help="NAME[:KEY=VALUE,...] for both")
@click.option("--cand-runtime", help="another runtime (or options) for CAND; two runtimes use the isolated design")
@click.option("--profile", default="host", show_default=True, help="device profile")
@click.option("--scenario", help="zoo scenario (default: the model's headline)")
@click.option("--dim", multiple=True, help="symbolic dimension for .onnx feeds, NAME=SIZE (repeatable)")
@click.option("--margin", type=click.FloatRange(0.001, 0.5), default=DEFAULT_MARGIN, show_default=True,
              help="equivalence margin: SAME when the interval lies within ±margin")
@click.option("--looks", default="10,20,40,80", show_default=True, help="cumulative paired processes at each look")
@click.option("--isolated", type=click.IntRange(min=0), default=0, show_default=True,
              help="validate the paired ratio: N paired processes interleaved with N isolated processes a side "
                   "(both effects, pairing cost; --looks is then not used)")
@click.option("--max-time", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="timed seconds per comparison process")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the members' order in each round")
@click.option("--out", type=click.Path(path_type=Path), help="write the paired samples and comparison.json here")
@click.pass_context
def compare_cmd(ctx: click.Context, base: str, cand: str, runtime_text: str, cand_runtime: str | None, profile: str,
                scenario: str | None, dim: tuple, margin: float, looks: str, isolated: int, max_time: float, seed: int,
                out: Path | None) -> int:
    """Compare CAND against BASE in paired processes: effect [95% CI] and SLOWER/FASTER/SAME/INCONCLUSIVE."""
    try:
        schedule = tuple(int(x) for x in looks.split(","))
    except ValueError:
        raise usage(f"--looks {looks!r}: expected comma-separated process counts") from None
    result = api.compare(base, cand, runtime_text, cand_runtime, profile, scenario, dim, margin, schedule, isolated,
                         max_time, seed, out, cache_path(ctx), log)
    for line in result.lines():
        click.echo(line)
    return exit_code(result)
