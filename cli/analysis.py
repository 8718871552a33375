"""The analyses, each an `odbench` command: design, pareto, baselines, int8-front, accuracy.

    odbench design RUN [RUN2]     variance split per cell (Kalibera & Jones) and run-to-run agreement
    odbench pareto RUN            the encoder's variants on each runtime: latency at 1 and 2 threads vs fidelity
    odbench baselines             the CTR ranker's simple baselines (popularity, logistic regression), AUC [95% CI]
    odbench int8-front            build and time the encoder's int8 Pareto candidates (compressors/pareto.py)
    odbench accuracy              task metric, fidelity and delta vs fp32 [95% CI] per variant and runtime
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from odbench.api.options import UsageError, open_run, parse_runtime, resolve_models
from odbench.cli.common import cache_path, log
from odbench.compressors.pareto import build_front, time_front
from odbench.models import ZOO
from odbench.models.ctr_baselines import baselines_text
from odbench.report.accuracy_table import accuracy_report
from odbench.report.design import design_markdown
from odbench.report.pareto import pareto_markdown

RUN_DIR = click.Path(file_okay=False, path_type=Path)


@click.command("design")
@click.argument("run_dir", type=RUN_DIR)
@click.argument("run2", type=RUN_DIR, required=False)
def design_cmd(run_dir: Path, run2: Path | None) -> int:
    """Each measured cell's variance split within / between processes, with the cost-optimal samples per
    process; with RUN2 (the same matrix run again), whether RUN's 95% intervals cover RUN2's estimates."""
    for d in (run_dir, run2):
        if d is not None:
            open_run(d)
    print(design_markdown(run_dir, run2))
    return 0


@click.command("pareto")
@click.argument("run_dir", type=RUN_DIR)
@click.option("--model", default="minilm-l6-query", show_default=True)
@click.option("--scenario", default="query", show_default=True)
@click.option("--profile-1t", default="host-1t", show_default=True, help="the profile of the 1-thread column")
@click.option("--profile-2t", default="host", show_default=True, help="the profile of the 2-thread column")
def pareto_cmd(run_dir: Path, model: str, scenario: str, profile_1t: str, profile_2t: str) -> int:
    """A model's variants on each runtime: p50 at 1 and 2 threads [95% CI] vs fidelity, the Pareto front, the pick."""
    open_run(run_dir)
    try:
        print(pareto_markdown(run_dir, model, scenario, profile_1t, profile_2t))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0


@click.command("baselines")
@click.pass_context
def baselines_cmd(ctx: click.Context) -> int:
    """The CTR ranker's baselines on the same time split: AUC and nDCG@10 [95% CI], and the ranker's paired lead."""
    print(baselines_text(cache_path(ctx)))
    return 0


@click.command("int8-front")
@click.option("--out", type=RUN_DIR, default="artifacts/pareto", show_default=True, help="where the candidate models and fidelity.json go")
@click.option("--k", multiple=True, type=click.IntRange(min=0), default=(0, 6, 12), show_default=True,
              help="how many of the most sensitive MatMuls stay fp32 (repeatable)")
@click.option("--candidate", multiple=True, help="only these candidate labels (repeatable; default: all)")
@click.option("--runtime", multiple=True, default=("onnxruntime", "openvino"), show_default=True, help="repeatable")
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True, help="timing rounds (interleaved)")
@click.option("--time-only", is_flag=True, help="time what --out already holds")
@click.option("--skip-eval", is_flag=True, help="fidelity on the held-out scan samples only (fast)")
def int8_front_cmd(out: Path, k: tuple[int, ...], candidate: tuple[str, ...], runtime: tuple[str, ...], rounds: int,
                   time_only: bool, skip_eval: bool) -> int:
    """The encoder's int8 Pareto front on ONNX Runtime: build the candidates, evaluate, time them interleaved."""
    for r in runtime:
        parse_runtime(r)
    if not time_only:
        build_front(out, list(k), list(candidate) or None, log=log, evaluate=not skip_eval)
    print(time_front(out, list(runtime), rounds))
    return 0


@click.command("accuracy")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: every zoo model)")
@click.option("--runtime", multiple=True, help="runtime (repeatable; default: onnxruntime, openvino)")
@click.option("--recipe", type=click.Choice(["default", "full", "none"]), default="default", show_default=True,
              help="compressed variants to include (none = fp32 only)")
@click.option("--only", multiple=True, help="only these recipe steps, by key (repeatable), e.g. int8dyn")
@click.option("--out", type=RUN_DIR, help="also write accuracy.md (command, date and machine in its header) and accuracy.csv here")
@click.pass_context
def accuracy_cmd(ctx: click.Context, model: tuple[str, ...], runtime: tuple[str, ...], recipe: str, only: tuple[str, ...],
                 out: Path | None) -> int:
    """Task metric, fidelity and delta vs fp32 with 95% CIs, per variant and runtime (each runtime's own outputs)."""
    models = [m.name for m in resolve_models(model or tuple(ZOO))]
    runtimes = [parse_runtime(r)[0] for r in (runtime or ("onnxruntime", "openvino"))]
    argv = ["odbench", *sys.argv[1:]] if sys.argv[1:2] == ["accuracy"] else ["odbench", "accuracy"]
    print(accuracy_report(models, runtimes, recipe, list(only) or None, cache_path(ctx), argv, out, log=log))
    return 0
