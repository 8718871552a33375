"""`odbench run`: build what is missing, plan the matrix, run it, write the tables.

Every flag is checked before any model is built (a typo costs a second, not a build), then:
workloads (zoo + --onnx) -> parity references -> cells -> executor -> tables and run.json.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from odbench.bench import provenance
from odbench.verdicts.accuracy import ACCURACY_FILE, measure_run_accuracy
from odbench.cli.common import (
    BAD_VERDICTS,
    cache_path,
    err,
    existing_file,
    log,
    parse_dims,
    parse_int_range,
    parse_runtimes,
    resolve_models,
    resolve_profiles,
    usage,
)
from odbench.cli.compress import compress_zoo, recipe_steps
from odbench.bench.executors import EXECUTORS, Executor, ExecutorSettings, get_executor
from odbench.core.feeds import materialize_feeds
from odbench.bench.matrix import Workload, plan
from odbench.bench.parity import prepare
from odbench.core.records import TIMING_PRESETS, CellSpec, Feeds, Result, Timing, to_json
from odbench.bench.store import ResultStore
from odbench.report.tables import write_tables
from odbench.bench.store import load_variants
from odbench.devices.profile import DeviceProfile
from odbench.models.onnx_file import user_variant
from odbench.compressors.build import compress_onnx_file
from odbench.compressors.recipes import built_for
from odbench.compressors.mobile import export_runtime, mobile_variants
from odbench.core.constants import MOBILE_RUNTIMES
from odbench.models.base import ZooTask
from odbench.runtimes import get_runtime

# The README's main command: every zoo model on these runtimes (a missing one is a reasoned SKIPPED).
# torch (eager fp32, the pre-export baseline) costs 9-17 s per process: asked for with --runtime torch.
DEFAULT_RUNTIMES = ("onnxruntime", "openvino")
# The zoo models `odbench run` measures without --model: search and recommendation. On 2 cores the
# customer-service classifier (19 ms per inference, its training) would take make run past 15 minutes:
# `odbench run --model reviews-dept-clf` measures it (every zoo model: --model once per name).
DEFAULT_MODELS = ("ctr-ml100k", "minilm-l6-query")
# Scenarios the default plan leaves out unless --scenario or --all-scenarios asks: the text models' offline
# batch of 32 reviews (0.85 s an inference, ~9 s a process here) is an indexing job, not an on-device latency.
SWEEP_LEFT_OUT = {"minilm-l6-query": ("offline",), "reviews-dept-clf": ("offline",)}


@dataclass(frozen=True)
class RunPlan:
    """The flags of one `odbench run`, checked and typed."""

    models: tuple  # zoo model objects
    onnx: tuple[str, ...]
    runtimes: tuple[tuple[str, dict], ...]
    runtimes_asked: bool  # --runtime given: keep cells a runtime cannot accept (as SKIPPED rows)
    profiles: tuple[DeviceProfile, ...]
    scenarios: tuple[str, ...]
    timing: Timing
    preset: str
    timeout_s: float | None
    dims: tuple[tuple[str, int], ...]
    int_range: tuple[int, int]
    feeds: Path | None
    out: Path
    force: bool
    overhead: bool
    parity: bool
    recipe: str
    all_scenarios: bool
    quiet: bool
    executor_name: str
    onnx_recipe: str | None = None  # --recipe given explicitly with --onnx: compress the user's file too
    accuracy: bool = True  # evaluate each timed (variant, runtime) on its own outputs after the matrix


@dataclass(frozen=True)
class Built:
    workloads: tuple[Workload, ...]
    headlines: dict[str, str]
    build_s: float
    compress_s: float


def _timing(preset: str, min_time: float | None, processes: int | None = None) -> Timing:
    timing = TIMING_PRESETS[preset]
    if processes is not None:
        if processes < 2 and timing.gating:
            raise usage(f"--processes {processes}: a gating preset needs at least 2 processes (one cannot show the variation between processes)")
        timing = dataclasses.replace(timing, processes=processes)
    if min_time is None:
        return timing
    if min_time <= 0:
        raise usage(f"--min-time must be > 0, got {min_time:g}")
    return dataclasses.replace(timing, min_time_s=min_time, max_time_s=max(timing.max_time_s, min_time))


def _zoo_workloads(model, cache: Path, req: RunPlan) -> tuple[list[Workload], float]:
    """The fp32 baseline on every scenario, then its recipe's variants (headline scenario unless --all-scenarios)."""
    log(f"[build] {model.name}: fp32 baseline (cached after the first run) ...")
    variant = model.build(cache, log=log)
    feeds = {}
    asked = req.all_scenarios or bool(req.scenarios)
    for scenario in model.scenarios:
        if not asked and scenario in SWEEP_LEFT_OUT.get(model.name, ()):
            continue
        fs = model.feeds(scenario, cache)
        feeds[scenario] = (Feeds(path=str(fs.path)), fs.items_per_inference)
    log(f"[build] {variant.id}: {variant.size_bytes / 2**20:.1f} MB, accuracy {variant.accuracy}, parity {variant.parity}")
    workloads = [Workload(variant, feeds, model.output_kind)]
    scen = feeds if req.all_scenarios else {model.headline: feeds[model.headline]}
    t0 = time.perf_counter()
    # The mobile runtimes' own formats and int8 flows (fp32, int8 dynamic, int8 static): asked for by --runtime, whatever --recipe.
    mobile = [name for name, _ in req.runtimes if name in MOBILE_RUNTIMES]
    workloads += [Workload(v, scen, model.output_kind) for v in mobile_variants(
        ZooTask(model, cache), variant, cache / "variants" / model.name, mobile, log=log)]
    if req.recipe == "none":
        return workloads, time.perf_counter() - t0
    built = compress_zoo(model, variant, cache, req.recipe)
    workloads += [Workload(b.variant, scen, model.output_kind) for b in built if b.variant is not None]
    return workloads, time.perf_counter() - t0


def _onnx_workloads(path: str, req: RunPlan, cache: Path) -> list[Workload]:
    """The user's file, and with an explicit --recipe every variant built from it (with lineage)."""
    try:
        variant = user_variant(path)
    except FileNotFoundError as exc:
        raise usage(str(exc)) from None
    lo, hi = req.int_range
    feeds = Feeds(path=str(req.feeds)) if req.feeds else Feeds(dims=req.dims, int_low=lo, int_high=hi)
    # Every runtime and the parity references must see the very same feeds: write them once.
    feeds = materialize_feeds(variant, feeds, req.out / "feeds", log=log)
    batch = dict(req.dims).get("batch", 1)
    if not req.onnx_recipe or req.onnx_recipe == "none":
        return [Workload(variant, {"synthetic": (feeds, batch)})]
    baseline, built = compress_onnx_file(variant, feeds, req.onnx_recipe, cache, log=log)
    for b in built:
        if b.variant is None:
            log(f"[compress] {b.step.name}: not built: {b.error}")
    return [Workload(v, {"synthetic": (feeds, batch)}) for v in [baseline] + [b.variant for b in built if b.variant]]


def build_workloads(req: RunPlan, cache: Path) -> Built:
    t0 = time.perf_counter()
    workloads: list[Workload] = []
    headlines: dict[str, str] = {}
    compress_s = 0.0
    for model in req.models:
        zoo, seconds = _zoo_workloads(model, cache, req)
        workloads += zoo
        headlines[zoo[0].variant.model] = model.headline
        compress_s += seconds
    for path in req.onnx:
        workloads += _onnx_workloads(path, req, cache)
    return Built(tuple(workloads), headlines, time.perf_counter() - t0, compress_s)


def _drop_unaccepted(cells: list[CellSpec], variants: dict) -> list[CellSpec]:
    """Default matrix only: cells a default runtime cannot run at all (the torch runtime on a compressed
    variant), or a variant was not built for (its recipe step's target runtimes, compressors/recipes.py),
    are left out with one line of log instead of a row each. Asked-for runtimes keep them."""
    kept, dropped = [], {}
    for c in cells:
        ok, why = get_runtime(c.runtime).accepts(c.variant_path)
        variant = variants.get(c.variant_id)
        if ok and variant is not None and not built_for(variant, c.runtime):
            ok, why = False, "variants built for other runtimes (recipe target_runtimes; --runtime keeps them)"
        if ok:
            kept.append(c)
        else:
            dropped.setdefault((c.runtime, why), []).append(c)
    for (runtime, why), group in dropped.items():
        log(f"[plan] {runtime}: {len(group)} cell(s) left out: {why}")
    return kept


def _drop_other_formats(cells: list[CellSpec], variants: dict) -> list[CellSpec]:
    """A mobile export (.pte) runs on its own runtime only, and a mobile runtime runs a zoo model through its
    exports, not its ONNX variants: those pairs are left out. A user's ONNX file (no export) keeps its mobile
    cells: SKIPPED, no route to the runtime's format."""
    exported = {v.model for v in variants.values() if export_runtime(v)}
    kept = []
    for c in cells:
        own = export_runtime(variants.get(c.variant_id))
        if (own and c.runtime != own) or (not own and c.runtime in MOBILE_RUNTIMES and c.model in exported):
            continue
        kept.append(c)
    if len(kept) < len(cells):
        log(f"[plan] {len(cells) - len(kept)} cell(s) left out: mobile exports run on their own runtime only")
    return kept


def plan_cells(req: RunPlan, built: Built, parity_specs: dict) -> list[CellSpec]:
    """The first runtime (the reference) gets every planned scenario of each workload; the others get the
    model's headline scenario, unless --all-scenarios or --scenario asks for more."""
    runtimes, profiles = list(req.runtimes), list(req.profiles)
    kw = dict(scenarios=list(req.scenarios) or None, timeout_s=req.timeout_s, parity=parity_specs)
    if req.all_scenarios or req.scenarios or len(runtimes) == 1:
        cells = plan(list(built.workloads), runtimes, profiles, req.timing, **kw)
    else:
        cells = []
        for w in built.workloads:
            head = built.headlines.get(w.variant.model)
            others = [Workload(w.variant, {head: w.feeds[head]}, w.output_kind)] if head in w.feeds else [w]
            cells += plan([w], runtimes[:1], profiles, req.timing, **kw) + plan(others, runtimes[1:], profiles, req.timing, **kw)
    cells = _drop_other_formats(cells, {w.variant.id: w.variant for w in built.workloads})
    if not req.runtimes_asked:  # the default runtimes: leave out what a runtime cannot run at all, and say so
        cells = _drop_unaccepted(cells, {w.variant.id: w.variant for w in built.workloads})
    if req.overhead and built.workloads:
        w0 = built.workloads[0]
        scenario = "rank-200" if "rank-200" in w0.feeds else next(iter(w0.feeds))
        cells += plan([Workload(w0.variant, {scenario: w0.feeds[scenario]})], [("null", {})], profiles, req.timing)
    return cells


def _parity_specs(req: RunPlan, built: Built) -> dict:
    if not req.parity:
        return {}
    known = {**load_variants(req.out), **{w.variant.id: w.variant for w in built.workloads}}
    t0 = time.perf_counter()
    specs = prepare(list(built.workloads), known, req.out, log=log)
    log(f"[parity] reference outputs for {len(specs)} (variant, scenario) pairs on onnxruntime "
        f"({time.perf_counter() - t0:.1f}s)")
    return specs


def execute(executor: Executor, cells: list[CellSpec], store: ResultStore, quiet: bool) -> None:
    """Run the cells with one progress bar per device profile; one log line per finished cell."""
    todo = [c for c in cells if not store.done(c.cell_id)]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err(), disable=quiet, transient=False) as progress:
        tasks = {}
        for c in todo:
            if c.profile_name not in tasks:
                tasks[c.profile_name] = progress.add_task(c.profile_name, total=sum(x.profile_name == c.profile_name for x in todo))

        def on_start(spec: CellSpec) -> None:
            progress.update(tasks[spec.profile_name], description=f"{spec.profile_name}: {spec.variant_id} {spec.runtime} {spec.scenario}")

        def on_result(r: Result) -> None:
            s = r.stats or {}
            detail = f"p50 {s['p50']:.3f} ms  p95 {s['p95']:.3f} ms  n={r.n_samples}" if s else r.reason[:160]
            where = f" @{r.provenance.get('worker')}" if r.provenance.get("worker") else ""
            progress.console.print(f"  {r.verdict:8s} {r.cell_id}{where}  {detail}")
            if r.profile in tasks:
                progress.advance(tasks[r.profile])

        executor.run(cells, store, on_start=on_start, on_result=on_result)


def _write_run_files(req: RunPlan, built: Built, cells: list[CellSpec], store: ResultStore) -> None:
    variants = load_variants(req.out)
    variants.update({w.variant.id: w.variant for w in built.workloads})
    store.write_json("variants.json", [json.loads(to_json(v)) for v in variants.values()])
    store.write_json("machine.json", provenance.machine())
    if req.force:
        for c in cells:
            store.path_for(c.cell_id).unlink(missing_ok=True)


def _summary(req: RunPlan, built: Built, cells: list[CellSpec], store: ResultStore, run_s: float) -> int:
    md, csv_path = write_tables(req.out)
    store.write_json("run.json", {"preset": req.preset, "executor": req.executor_name, "timing": dataclasses.asdict(req.timing),
                                  "build_s": round(built.build_s, 1), "compress_s": round(built.compress_s, 1),
                                  "recipe": req.recipe, "matrix_s": round(run_s, 1), "cells": len(cells), "argv": sys.argv[1:]})
    log(f"[done] build {built.build_s:.0f}s, matrix {run_s:.0f}s; tables: {md} {csv_path}")
    if not req.quiet:
        print(md.read_text())
    results = [store.get(c.cell_id) for c in cells]
    failed = [r for r in results if r.verdict == "FAIL"]
    if failed:
        log(f"[parity] {len(failed)} cell(s) FAIL: timed, but their outputs do not match the fp32 reference "
            f"(see the reason column; `odbench gate` fails any budget that matches them): "
            + ", ".join(r.cell_id for r in failed[:6]) + (" ..." if len(failed) > 6 else ""))
    return 1 if any(r.verdict in BAD_VERDICTS for r in results) else 0


def run_matrix(req: RunPlan, executor: Executor, cache: Path) -> int:
    built = build_workloads(req, cache)
    cells = plan_cells(req, built, _parity_specs(req, built))
    if not cells:
        raise usage("the plan is empty (check --scenario against the models' scenarios)")
    store = ResultStore(req.out)
    _write_run_files(req, built, cells, store)
    done = sum(store.done(c.cell_id) for c in cells)
    log(f"[run] {len(cells)} cells planned, {done} already done (resume), {len(cells) - done} to run; "
        f"preset {req.preset!r}, results -> {req.out}/")
    t0 = time.perf_counter()
    execute(executor, cells, store, req.quiet)
    run_s = time.perf_counter() - t0
    if req.accuracy:  # each timed (variant, runtime)'s own accuracy, cached, into RUN/accuracy.json (verdicts/accuracy.py)
        t1 = time.perf_counter()
        results = [store.get(c.cell_id) if store.done(c.cell_id) else None for c in cells]
        measure_run_accuracy(results, load_variants(req.out), {m.name: m for m in req.models}, cache, req.out, log)
        log(f"[accuracy] {time.perf_counter() - t1:.0f}s; per-runtime accuracy -> {req.out / ACCURACY_FILE}")
    return _summary(req, built, cells, store, run_s)


def _make_executor(name: str, scheduler: str | None, shared_root: str | None, seed: int) -> Executor:
    try:
        return get_executor(name, ExecutorSettings(scheduler=scheduler, shared_root=shared_root, seed=seed))
    except ValueError as exc:
        raise usage(str(exc)) from None


@click.command("run")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: ctr-ml100k and minilm-l6-query unless --onnx is given)")
@click.option("--onnx", multiple=True, help="your own ONNX file (repeatable); feeds come from its input signature")
@click.option("--runtime", multiple=True, help="NAME[:KEY=VALUE,...]; KEY=A|B sweeps the values (repeatable; default: onnxruntime, openvino)")
@click.option("--profile", multiple=True, help="device profile name or YAML path (repeatable; default: host)")
@click.option("--scenario", multiple=True, help="only these scenarios (repeatable)")
@click.option("--preset", type=click.Choice(sorted(TIMING_PRESETS)), default="default", show_default=True, help="timing preset")
@click.option("--min-time", type=float, help="override the preset's minimum measured seconds per process")
@click.option("--processes", type=click.IntRange(min=1), help="override the preset's number of fresh processes per cell")
@click.option("--timeout", type=float, help="per-cell timeout in seconds (default: from the preset)")
@click.option("--dim", multiple=True, help="symbolic dimension size for --onnx feeds, NAME=SIZE (repeatable)")
@click.option("--int-range", default="0:100", show_default=True, help="LOW:HIGH for synthetic integer inputs")
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
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the random order in which the processes of all cells are interleaved")
@click.option("-q", "--quiet", is_flag=True, help="no progress bars and no table on stdout")
@click.pass_context
def run_cmd(ctx: click.Context, **opt) -> int:
    """Run the benchmark matrix (default: zoo x onnxruntime, openvino x host)."""
    models = resolve_models(opt["model"] or (() if opt["onnx"] else DEFAULT_MODELS))
    if opt["recipe"] != "none":
        for m in models:
            recipe_steps(m.name, opt["recipe"])
    for path in opt["onnx"]:
        existing_file(path, "ONNX file")
    req = RunPlan(
        models=tuple(models), onnx=opt["onnx"], runtimes=tuple(parse_runtimes(opt["runtime"] or DEFAULT_RUNTIMES)),
        runtimes_asked=bool(opt["runtime"]), profiles=tuple(resolve_profiles(opt["profile"])), scenarios=opt["scenario"],
        timing=_timing(opt["preset"], opt["min_time"], opt["processes"]), preset=opt["preset"], timeout_s=opt["timeout"],
        dims=parse_dims(opt["dim"]), int_range=parse_int_range(opt["int_range"]),
        feeds=existing_file(opt["feeds"], "feeds file"), out=Path(opt["out"]), force=opt["force"],
        overhead=not opt["no_overhead"], parity=not opt["no_parity"], recipe=opt["recipe"],
        all_scenarios=opt["all_scenarios"], quiet=opt["quiet"], executor_name=opt["executor"],
        onnx_recipe=opt["recipe"] if ctx.get_parameter_source("recipe") == click.core.ParameterSource.COMMANDLINE else None,
        accuracy=not opt["no_accuracy"],
    )
    executor = _make_executor(opt["executor"], opt["scheduler"], opt["shared_root"], opt["seed"])
    return run_matrix(req, executor, cache_path(ctx))
