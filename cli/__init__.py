"""odbench: the suite's command line (Click, with rich tables and progress bars).

    odbench run       build what is missing, then run the benchmark matrix (default: zoo x onnxruntime, openvino x host)
    odbench build     build/cached-load the zoo's fp32 baselines
    odbench compress  build compressed variants (pruned, int8 via INC, low-rank, distilled, int8/int4 embeddings)
    odbench models    list the zoo models, their scenarios and built variants
    odbench devices   list device profiles, show one, or validate profile files
    odbench table     regenerate results tables from a run folder
    odbench compare   BASE vs CAND in paired processes: effect [95% CI], SLOWER/FASTER/SAME/INCONCLUSIVE
    odbench gate      judge a run against a budgets file (and a baseline run): PASS/FAIL/INCONCLUSIVE/...
    odbench report    the hardware-selection report (HTML with plots + Markdown)
    odbench env       build the mobile runtimes' own environments (odbench env setup executorch)
    odbench accuracy  task metric, fidelity and delta vs fp32 [95% CI] per variant and runtime
    odbench design    variance within/between processes per cell, and run-to-run agreement
    odbench pareto    a model's variants per runtime: latency at 1 and 2 threads vs fidelity, the front
    odbench baselines the CTR ranker's simple baselines, AUC [95% CI]
    odbench int8-front  build and time the encoder's int8 Pareto candidates
    odbench arm       the ARM functional check under qemu-user: setup, check RUN, table RUN
    odbench worker    start a Dask worker on a target device (for run --executor dask)
    odbench simulate  the seeded error-rate table of the gate and the regression check

Every usage error (an unknown model, runtime, profile or option, a bad budgets file, a missing run
folder) is one line on stderr and exit code 2, never a traceback. Each command module registers
one command on the group below.
"""
from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version

import click

from odbench.cli.analysis import accuracy_cmd, baselines_cmd, design_cmd, int8_front_cmd, pareto_cmd
from odbench.cli.arm import arm_cmd
from odbench.cli.common import UsageError, parse_runtime, parse_runtimes, set_offline_env  # noqa: F401  (re-exported)
from odbench.cli.compare import compare_cmd
from odbench.cli.compress import build_cmd, compress_cmd
from odbench.cli.env import env_cmd
from odbench.cli.listing import devices_cmd, models_cmd
from odbench.cli.run import run_cmd
from odbench.cli.simulate import simulate_cmd
from odbench.cli.verdicts import gate_cmd, report_cmd, table_cmd
from odbench.cli.worker import worker_cmd

EXIT_USAGE = 2
# One command a line, so that branches adding commands merge cleanly.
COMMANDS = (
    run_cmd,
    compare_cmd,
    build_cmd,
    compress_cmd,
    models_cmd,
    devices_cmd,
    table_cmd,
    gate_cmd,
    report_cmd,
    accuracy_cmd,
    design_cmd,
    pareto_cmd,
    baselines_cmd,
    int8_front_cmd,
    arm_cmd,
    env_cmd,
    worker_cmd,
    simulate_cmd,
)


def _version() -> str:
    try:
        return version("odbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(_version(), "--version", prog_name="odbench")
@click.option("--cache", default="artifacts", show_default=True, envvar="ODBENCH_CACHE",
              help="where built models and feeds are cached (env ODBENCH_CACHE)")
@click.pass_context
def cli(ctx: click.Context, cache: str) -> None:
    """On-device inference benchmarks for compressed search and recommendation models."""
    os.environ["ODBENCH_CACHE"] = cache  # the cell processes read the same cache
    ctx.obj = {"cache": cache}


for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. Usage errors: one line on stderr, exit 2."""
    set_offline_env()
    try:
        code = cli.main(args=argv, prog_name="odbench", standalone_mode=False)
    except click.ClickException as exc:  # UsageError, BadParameter, NoSuchOption ...: exit_code 2
        print(f"odbench: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except UsageError as exc:  # the API's one-line usage errors (api/options.py)
        print(f"odbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except click.Abort:
        print("odbench: aborted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
