"""`odbench run`: a thin layer over the Python API (api/matrix.py): flags -> api.plan -> api.run.

Every flag is checked before any model is built (a typo costs a second, not a build); the run
shows one progress bar per device profile and one log line per finished cell.
"""
from __future__ import annotations

from contextlib import contextmanager

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from odbench.api import matrix as api
from odbench.api.matrix import DEFAULT_MODELS, DEFAULT_RUNTIMES, SWEEP_LEFT_OUT  # noqa: F401  (documented defaults)
from odbench.api.options import make_executor
from odbench.bench.executors import EXECUTORS
from odbench.cli.common import cache_path, err, log
from odbench.core.records import TIMING_PRESETS, CellSpec, Result


def progress_watch(quiet: bool):
    """api.run's ``watch``: one rich progress bar per device profile, one line per finished cell."""

    @contextmanager
    def watch(todo: list[CellSpec]):
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err(), disable=quiet, transient=False) as progress:
            tasks = {}
            for c in todo:
                if c.profile_name not in tasks:
                    tasks[c.profile_name] = progress.add_task(c.profile_name, total=sum(x.profile_name == c.profile_name for x in todo))

            def on_start(spec: CellSpec) -> None:
                what = f"{spec.profile_name}: {spec.variant_id} {spec.runtime} {spec.scenario}"
                progress.update(tasks[spec.profile_name], description=what)

            def on_result(r: Result) -> None:
                s = r.stats or {}
                detail = f"p50 {s['p50']:.3f} ms  p95 {s['p95']:.3f} ms  n={r.n_samples}" if s else r.reason[:160]
                where = f" @{r.provenance.get('worker')}" if r.provenance.get("worker") else ""
                progress.console.print(f"  {r.verdict:8s} {r.cell_id}{where}  {detail}")
                if r.profile in tasks:
                    progress.advance(tasks[r.profile])

            yield on_start, on_result

    return watch


@click.command("run")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: ctr-ml100k and minilm-l6-query unless --onnx is given)")
@click.option("--onnx", multiple=True, help="your own ONNX file (repeatable); feeds come from its input signature")
@click.option("--runtime", multiple=True,
              help="NAME[:KEY=VALUE,...]; KEY=A|B sweeps the values (repeatable; default: onnxruntime, openvino)")
@click.option("--profile", multiple=True, help="device profile name or YAML path (repeatable; default: host)")
@click.option("--scenario", multiple=True, help="only these scenarios (repeatable)")
@click.option("--preset", type=click.Choice(sorted(TIMING_PRESETS)), default="default", show_default=True, help="timing preset")
@click.option("--min-time", type=click.FloatRange(min=0, min_open=True), help="override the preset's minimum measured seconds per process")
@click.option("--processes", type=click.IntRange(min=1), help="override the preset's number of fresh processes per cell")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="per-cell timeout in seconds (default: from the preset)")
@click.option("--dim", multiple=True, help="symbolic dimension size for --onnx feeds, NAME=SIZE (repeatable)")
@click.option("--int-range", default="0:100", show_default=True, help="LOW:HIGH for synthetic integer inputs")
@click.option("--eval", "eval_file", help="your evaluation set for --onnx (eval.yaml: ranking, retrieval or classification "
              "rows; docs/your-data.md): task accuracy per runtime, variants calibrated on its tuning rows")
@click.option("--feeds", help=".npz feed file for --onnx models (keys '<index>/<input name>')")
@click.option("--out", default="results/latest", show_default=True, help="run folder; reruns resume")
@click.option("--force", is_flag=True, help="rerun cells that already have results")
@click.option("--no-overhead", is_flag=True, help="skip the null-session harness-overhead cell")
@click.option("--no-parity", is_flag=True, help="skip the output-parity spot check against fp32 on onnxruntime")
@click.option("--no-accuracy", is_flag=True, help="skip evaluating each timed variant's accuracy on its own runtime (RUN/accuracy.json)")
@click.option("--executor", type=click.Choice(list(EXECUTORS)), default="local", show_default=True, help="where cells run")
@click.option("--scheduler", help="Dask scheduler address for --executor dask (env ODBENCH_SCHEDULER)")
@click.option("--shared-root", help="--executor dask: workers see files under this path as-is (else files are sent)")
@click.option("--recipe", type=click.Choice(["default", "full", "none"]), default="default", show_default=True,
              help="compressed variants to build and benchmark for zoo models (none = fp32 only)")
@click.option("--all-scenarios", is_flag=True, help="every scenario for every variant and runtime (default: fp32 on every "
              "scenario with the first runtime; the headline scenario otherwise)")
@click.option("--paired-processes", type=click.IntRange(min=0), help="comparison processes per group behind the speedups "
              "(paired design, docs/paired.md; default by preset: smoke 0, default 8, gate 16; 0 = off)")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the random order in which the processes of all cells are interleaved")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars and no table on stdout")
@click.pass_context
def run_cmd(ctx: click.Context, **opt) -> int:
    """Run the benchmark matrix (default: zoo x onnxruntime, openvino x host)."""
    explicit_recipe = ctx.get_parameter_source("recipe") == click.core.ParameterSource.COMMANDLINE
    req = api.plan(
        models=opt["model"], onnx=opt["onnx"], runtimes=opt["runtime"], profiles=opt["profile"], scenarios=opt["scenario"],
        preset=opt["preset"], out=opt["out"], min_time=opt["min_time"], processes=opt["processes"], timeout=opt["timeout"],
        dims=opt["dim"], int_range=opt["int_range"], feeds=opt["feeds"], recipe=opt["recipe"],
        onnx_recipe=opt["recipe"] if explicit_recipe else None, force=opt["force"], overhead=not opt["no_overhead"],
        parity=not opt["no_parity"], accuracy=not opt["no_accuracy"], all_scenarios=opt["all_scenarios"],
        quiet=opt["quiet"], executor=opt["executor"], eval=opt["eval_file"], paired_processes=opt["paired_processes"],
        seed=opt["seed"])
    executor = make_executor(opt["executor"], opt["scheduler"], opt["shared_root"], opt["seed"])
    outcome = api.run(req, executor, cache_path(ctx), log=log, watch=progress_watch(opt["quiet"]))
    if not opt["quiet"]:
        print(outcome.table_md.read_text())
        if outcome.your_data_md is not None:
            print(outcome.your_data_md.read_text())
    return outcome.exit_code
