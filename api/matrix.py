"""Plan and run a benchmark matrix: the orchestration that `odbench run` is a thin layer over.

    workloads (zoo + your ONNX files) -> parity references -> cells -> executor -> tables and run.json

``plan(...)`` checks every value before anything is built (a typo costs a second, not a build);
``run(plan)`` builds what is missing, resumes what the run folder holds, runs the rest and returns
a ``RunOutcome``.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Sequence

from odbench.api import your_data
from odbench.api.options import (
    UsageError,
    check_out,
    existing_file,
    make_executor,
    out_folder,
    parse_dims,
    parse_int_range,
    parse_runtimes,
    positive,
    resolve_models,
    resolve_profiles,
    timing_for,
)
from odbench.bench import provenance
from odbench.bench.executors import Executor
from odbench.bench.matrix import Workload
from odbench.bench.matrix import plan as plan_matrix
from odbench.bench.paired_plan import PAIRED_PROCESSES, plan_groups, run_groups
from odbench.bench.paired_run import paired_dir
from odbench.bench.parity import prepare
from odbench.bench.resume import recover
from odbench.bench.run_folder import ACCURACY_FILE, RunFolder
from odbench.compressors.build import build_recipe, compress_onnx_file
from odbench.compressors.mobile import export_runtime, mobile_variants
from odbench.compressors.recipes import RECIPES, Step, built_for
from odbench.core.constants import MOBILE_RUNTIMES
from odbench.core.feeds import materialize_feeds
from odbench.core.not_built import NotBuilt
from odbench.core.onnx_tools import quantized_summary
from odbench.core.records import CellSpec, Feeds, Result, Timing, Variant, Verdict
from odbench.devices.profile import DeviceProfile
from odbench.models.base import ZooTask
from odbench.models.metrics import accuracy_line
from odbench.models.onnx_file import OWN_OUTPUTS, user_variant
from odbench.report.tables import write_tables
from odbench.runtimes import get_runtime
from odbench.verdicts.accuracy import measure_run_accuracy

Log = Callable[[str], None]

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
BAD_VERDICTS = (Verdict.ERROR, Verdict.TIMEOUT)


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunPlan:
    """What one run will do, checked and typed (make it with ``plan``)."""

    models: tuple  # zoo model objects
    onnx: tuple[str, ...]
    runtimes: tuple[tuple[str, dict], ...]
    runtimes_asked: bool  # runtimes given: keep cells a runtime cannot accept (as SKIPPED rows)
    profiles: tuple[DeviceProfile, ...]
    scenarios: tuple[str, ...]
    timing: Timing
    preset: str
    timeout_s: float | None
    dims: tuple[tuple[str, int], ...]
    int_range: tuple[int, int]
    feeds: Path | None
    out: Path
    force: bool = False
    overhead: bool = True
    parity: bool = True
    recipe: str = "default"
    all_scenarios: bool = False
    quiet: bool = False
    executor_name: str = "local"
    onnx_recipe: str | None = None  # a recipe for the --onnx files too (given explicitly)
    accuracy: bool = True  # evaluate each timed (variant, runtime) on its own outputs after the matrix
    eval_tasks: tuple = ()  # (onnx path, models.user_task.UserTask) per --onnx file given with --eval (api/your_data.py)
    paired_processes: int = 0  # comparison processes per group behind the speedups (bench/paired_plan.py; < 2: off)
    seed: int = 0  # of the comparison processes' interleaving and members' order


@dataclass(frozen=True)
class Built:
    workloads: tuple[Workload, ...]
    headlines: dict[str, str]
    build_s: float
    compress_s: float
    not_built: tuple[NotBuilt, ...] = ()  # recipe steps that built nothing, with their reasons (variants.json)


@dataclass(frozen=True)
class RunOutcome:
    """What a run left: its folder, the planned cells' results (unreadable ones as ERROR entries), the
    tables and the exit code `odbench run` gives (1 when any cell is ERROR or TIMEOUT)."""

    folder: RunFolder
    results: tuple[Result, ...]
    table_md: Path
    table_csv: Path
    exit_code: int
    your_data_md: Path | None = None  # with --eval: the short table of the user's model on the user's data


def plan(models: Sequence[str] = (), onnx: Sequence[str | Path] = (), runtimes: Sequence[str] = (),
         profiles: Sequence[str] = (), scenarios: Sequence[str] = (), preset: str = "default",
         out: str | Path = "results/latest", *, min_time: float | None = None, processes: int | None = None,
         timeout: float | None = None, dims: Sequence[str] = (), int_range: str = "0:100", feeds: str | Path | None = None,
         recipe: str = "default", onnx_recipe: str | None = None, force: bool = False, overhead: bool = True,
         parity: bool = True, accuracy: bool = True, all_scenarios: bool = False, quiet: bool = False,
         executor: str = "local", eval: str | Path | None = None, paired_processes: int | None = None,
         seed: int = 0) -> RunPlan:
    """A checked RunPlan from the words a user would type (`odbench run`'s flags); raises UsageError.

    ``models``: zoo model names (default: ctr-ml100k and minilm-l6-query unless ``onnx`` is given);
    ``runtimes``: 'NAME[:KEY=VALUE,...]', 'KEY=A|B' sweeps (default: onnxruntime, openvino);
    ``profiles``: device profile names or YAML paths (default: host); ``preset``: smoke | default | gate;
    ``eval``: an evaluation set (eval.yaml) for the ``onnx`` files (docs/your-data.md)."""
    chosen = resolve_models(tuple(models) or (() if onnx else DEFAULT_MODELS))
    if recipe not in ("default", "full", "none"):
        raise UsageError(f"unknown recipe {recipe!r}; known: default, full, none")
    if recipe != "none":
        for m in chosen:
            recipe_steps(m.name, recipe)
    for path in onnx:
        existing_file(path, "ONNX file")
    positive(timeout, "--timeout")
    tasks = your_data.eval_tasks(tuple(onnx), eval)
    check_out(out)  # a file in the way is said before anything is built (and nothing is created yet)
    return RunPlan(
        models=tuple(chosen), onnx=tuple(str(p) for p in onnx), runtimes=tuple(parse_runtimes(list(runtimes) or DEFAULT_RUNTIMES)),
        runtimes_asked=bool(runtimes), profiles=tuple(resolve_profiles(tuple(profiles))), scenarios=tuple(scenarios),
        timing=timing_for(preset, min_time, processes), preset=preset, timeout_s=timeout, dims=parse_dims(tuple(dims)),
        int_range=parse_int_range(int_range), feeds=existing_file(feeds, "feeds file"), out=Path(out), force=force,
        overhead=overhead, parity=parity, recipe=recipe, all_scenarios=all_scenarios, quiet=quiet, executor_name=executor,
        onnx_recipe=onnx_recipe, accuracy=accuracy, eval_tasks=tasks, seed=seed,
        paired_processes=PAIRED_PROCESSES.get(preset, 0) if paired_processes is None else paired_processes)


def recipe_steps(model: str, recipe: str) -> tuple[Step, ...]:
    steps = RECIPES.get((model, recipe))
    if steps is None:
        known = sorted(r for m, r in RECIPES if m == model)
        raise UsageError(f"no recipe {recipe!r} for {model}; known: {', '.join(known) or 'none'}")
    return steps


def compress_zoo(model, baseline: Variant, cache: Path, recipe: str, log: Log = stderr_log) -> list:
    steps = recipe_steps(model.name, recipe)
    log(f"[compress] {model.name}: {len(steps)} variants (recipe {recipe!r}; cached by content hash) ...")
    return build_recipe(baseline, steps, ZooTask(model, cache), cache / "variants" / model.name,
                        torch_task_factory=lambda: model.torch_task(cache), log=log)


def _zoo_workloads(model, cache: Path, req: RunPlan, log: Log) -> tuple[list[Workload], float, list[NotBuilt]]:
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
    acc = accuracy_line(variant.accuracy, getattr(model, "primary_metric", None), getattr(model, "fidelity_metric", None))
    log(f"[build] {variant.id}: {variant.size_bytes / 2**20:.1f} MB, {acc}")
    workloads = [Workload(variant, feeds, model.output_kind)]
    scen = feeds if req.all_scenarios else {model.headline: feeds[model.headline]}
    t0 = time.perf_counter()
    # The mobile runtimes' own formats and int8 flows (compressors/mobile.py): asked for by --runtime, whatever --recipe.
    mobile = [name for name, _ in req.runtimes if name in MOBILE_RUNTIMES]
    refused: list[NotBuilt] = []  # a mobile export that cannot be built: a NotBuilt record with its reason
    workloads += [Workload(v, scen, model.output_kind) for v in mobile_variants(
        ZooTask(model, cache), variant, cache / "variants" / model.name, mobile, log=log, refused=refused)]
    if req.recipe == "none":
        return workloads, time.perf_counter() - t0, refused
    built = compress_zoo(model, variant, cache, req.recipe, log)
    workloads += [Workload(b.variant, scen, model.output_kind) for b in built if b.variant is not None]
    return workloads, time.perf_counter() - t0, refused + [nb for b in built if (nb := b.not_built(variant))]


def _onnx_workloads(path: str, req: RunPlan, cache: Path, log: Log) -> tuple[list[Workload], list[NotBuilt]]:
    """The user's file first, and with an explicit --recipe every variant built from it (with lineage);
    a step that builds nothing is a NotBuilt record (its reason logged), never the end of the run."""
    try:
        variant = user_variant(path)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if variant.config.get("already_quantized"):
        log(f"[onnx] {variant.id}: {quantized_summary(variant.config['already_quantized'])}: benchmarked as-is as your baseline; "
            f"the quantizers skip it; fidelity and parity are measured against {OWN_OUTPUTS}")
    lo, hi = req.int_range
    feeds = Feeds(path=str(req.feeds)) if req.feeds else Feeds(dims=req.dims, int_low=lo, int_high=hi)
    # Every runtime and the parity references must see the very same feeds: write them once.
    feeds = materialize_feeds(variant, feeds, req.out / "feeds", log=log)
    batch = dict(req.dims).get("batch", 1)
    if not req.onnx_recipe or req.onnx_recipe == "none":
        return [Workload(variant, {"synthetic": (feeds, batch)})], []
    baseline, built = compress_onnx_file(variant, feeds, req.onnx_recipe, cache, log=log)
    workloads = [Workload(v, {"synthetic": (feeds, batch)}) for v in [baseline] + [b.variant for b in built if b.variant]]
    return workloads, [nb for b in built if (nb := b.not_built(baseline))]


def build_workloads(req: RunPlan, cache: Path, log: Log = stderr_log) -> Built:
    """Every model's variants built (or loaded from the cache) with the feeds of their scenarios."""
    t0 = time.perf_counter()
    workloads: list[Workload] = []
    headlines: dict[str, str] = {}
    compress_s = 0.0
    not_built: list[NotBuilt] = []
    for model in req.models:
        zoo, seconds, failed = _zoo_workloads(model, cache, req, log)
        workloads += zoo
        headlines[zoo[0].variant.model] = model.headline
        compress_s += seconds
        not_built += failed
    tasks = dict(req.eval_tasks)
    for path in req.onnx:
        if path in tasks:  # with its evaluation set: the recipe applies unless --recipe none
            mine, failed = your_data.eval_workloads(path, tasks[path], req.onnx_recipe or req.recipe, req.out, cache, log)
        else:
            mine, failed = _onnx_workloads(path, req, cache, log)
        workloads += mine
        not_built += failed
    if not_built:
        log(f"[compress] {len(not_built)} recipe step(s) built nothing (listed in variants.json as built: false); "
            f"the run benchmarks the {len(workloads)} variant(s) that were built:")
        for nb in not_built:
            log(f"  {nb.line()}")
    return Built(tuple(workloads), headlines, time.perf_counter() - t0, compress_s, tuple(not_built))


def _drop_unaccepted(cells: list[CellSpec], variants: dict, log: Log) -> list[CellSpec]:
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


def _drop_other_formats(cells: list[CellSpec], variants: dict, log: Log) -> list[CellSpec]:
    """A mobile export (.pte, .tflite) runs on its own runtime only, and a mobile runtime runs a zoo model through
    its exports, not its ONNX variants: those pairs are left out. A user's ONNX file (no export) keeps its mobile
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


def plan_cells(req: RunPlan, built: Built, parity_specs: dict, log: Log = stderr_log) -> list[CellSpec]:
    """The first runtime (the reference) gets every planned scenario of each workload; the others get the
    model's headline scenario, unless --all-scenarios or --scenario asks for more."""
    runtimes, profiles = list(req.runtimes), list(req.profiles)
    kw = dict(scenarios=list(req.scenarios) or None, timeout_s=req.timeout_s, parity=parity_specs)
    if req.all_scenarios or req.scenarios or len(runtimes) == 1:
        cells = plan_matrix(list(built.workloads), runtimes, profiles, req.timing, **kw)
    else:
        cells = []
        for w in built.workloads:
            head = built.headlines.get(w.variant.model)
            others = [Workload(w.variant, {head: w.feeds[head]}, w.output_kind)] if head in w.feeds else [w]
            cells += plan_matrix([w], runtimes[:1], profiles, req.timing, **kw)
            cells += plan_matrix(others, runtimes[1:], profiles, req.timing, **kw)
    cells = _drop_other_formats(cells, {w.variant.id: w.variant for w in built.workloads}, log)
    if not req.runtimes_asked:  # the default runtimes: leave out what a runtime cannot run at all, and say so
        cells = _drop_unaccepted(cells, {w.variant.id: w.variant for w in built.workloads}, log)
    if req.overhead and built.workloads:
        w0 = built.workloads[0]
        scenario = "rank-200" if "rank-200" in w0.feeds else next(iter(w0.feeds))
        cells += plan_matrix([Workload(w0.variant, {scenario: w0.feeds[scenario]})], [("null", {})], profiles, req.timing)
    return cells


def _parity_specs(req: RunPlan, built: Built, folder: RunFolder, log: Log) -> dict:
    if not req.parity:
        return {}
    known = {**folder.variants(), **{w.variant.id: w.variant for w in built.workloads}}
    t0 = time.perf_counter()
    specs = prepare(list(built.workloads), known, req.out, log=log)
    log(f"[parity] reference outputs for {len(specs)} (variant, scenario) pairs on onnxruntime "
        f"({time.perf_counter() - t0:.1f}s)")
    return specs


# A progress display for the executor: given the cells to run, a context giving (on_start, on_result).
Watch = Callable[[list[CellSpec]], ContextManager[tuple[Callable[[CellSpec], None] | None, Callable[[Result], None] | None]]]


def _write_run_files(req: RunPlan, built: Built, cells: list[CellSpec], folder: RunFolder) -> None:
    # This run's models get this run's not-built steps; steps of models not built this time keep their earlier record.
    models = {w.variant.model for w in built.workloads}
    not_built = {k: nb for k, nb in folder.not_built().items() if nb.model not in models}
    folder.put_variants({**folder.variants(), **{w.variant.id: w.variant for w in built.workloads}},
                        {**not_built, **{nb.id: nb for nb in built.not_built}})
    folder.put_machine(provenance.machine())
    folder.put_run_info({"preset": req.preset, "executor": req.executor_name, "timing": dataclasses.asdict(req.timing),
                         "recipe": req.recipe, "cells": len(cells), "argv": sys.argv[1:]})
    if req.force:
        for c in cells:
            folder.path_for(c.cell_id).unlink(missing_ok=True)
        for f in paired_dir(folder.root).glob("*") if paired_dir(folder.root).is_dir() else ():
            f.unlink()


def run_paired(req: RunPlan, cells: list[CellSpec], folder: RunFolder, log: Log) -> None:
    """The comparison groups behind the relative figures (bench/paired_plan.py), after the isolated cells."""
    if req.paired_processes < 2:
        return
    if req.executor_name != "local":  # the cells ran on other devices: their groups would have to run there too
        log(f"[paired] not run with --executor {req.executor_name}: the speedups are the isolated ones")
        return
    specs = plan_groups(cells, {c.cell_id: folder.get(c.cell_id) for c in cells if folder.done(c.cell_id)}, req.seed)
    if not specs:
        return
    t0 = time.perf_counter()
    log(f"[paired] {len(specs)} comparison group(s) x {req.paired_processes} processes (the speedups; docs/paired.md)")
    done = run_groups(specs, folder.root, req.paired_processes, req.seed, log=log if not req.quiet else (lambda _: None))
    bad = [r for r in done if r.verdict != Verdict.OK]
    log(f"[paired] {time.perf_counter() - t0:.0f}s" + (f"; {len(bad)} group(s) not measured: " + "; ".join(
        f"{r.group_id}: {r.reason[:120]}" for r in bad) if bad else ""))


def run(req: RunPlan, executor: Executor | str = "local", cache: str | Path | None = None, log: Log = stderr_log,
        watch: Watch | None = None) -> RunOutcome:
    """Build what is missing, resume what ``req.out`` holds (an unreadable cell is rebuilt from its parts/ or
    rerun), run the remaining cells on ``executor``, measure each timed (variant, runtime)'s own accuracy,
    and write table.md/table.csv and run.json. ``cache``: built models (default $ODBENCH_CACHE or ./artifacts)."""
    cache = Path(cache or os.environ.get("ODBENCH_CACHE") or "artifacts").resolve()
    executor = make_executor(executor) if isinstance(executor, str) else executor
    folder = out_folder(req.out)
    built = build_workloads(req, cache, log)
    cells = plan_cells(req, built, _parity_specs(req, built, folder, log), log)
    if not cells:
        raise UsageError("the plan is empty (check --scenario against the models' scenarios)")
    _write_run_files(req, built, cells, folder)
    recover(folder, cells, log)
    done = sum(folder.done(c.cell_id) for c in cells)
    log(f"[run] {len(cells)} cells planned, {done} already done (resume), {len(cells) - done} to run; "
        f"preset {req.preset!r}, results -> {req.out}/")
    t0 = time.perf_counter()
    todo = [c for c in cells if not folder.done(c.cell_id)]
    with (watch(todo) if watch else nullcontext((None, None))) as (on_start, on_result):
        executor.run(cells, folder, on_start=on_start, on_result=on_result)
    run_paired(req, cells, folder, log)
    run_s = time.perf_counter() - t0
    if req.accuracy:  # each timed (variant, runtime)'s own accuracy, cached, into RUN/accuracy.json (verdicts/accuracy.py)
        t1 = time.perf_counter()
        results = [folder.get(c.cell_id) if folder.done(c.cell_id) else None for c in cells]
        variants, tasks = folder.variants(), {t.name: t for _, t in req.eval_tasks}
        zoo, mine = your_data.split_results(results, variants, tasks)
        measure_run_accuracy(zoo, variants, {m.name: m for m in req.models}, cache, req.out, log)
        your_data.measure_eval_accuracy(mine, variants, tasks, cache, req.out, log)
        log(f"[accuracy] {time.perf_counter() - t1:.0f}s; per-runtime accuracy -> {req.out / ACCURACY_FILE}")
    md, csv_path = write_tables(req.out)
    folder.put_run_info({"build_s": round(built.build_s, 1), "compress_s": round(built.compress_s, 1), "matrix_s": round(run_s, 1)})
    log(f"[done] build {built.build_s:.0f}s, matrix {run_s:.0f}s; tables: {md} {csv_path}")
    results = tuple(folder.read(c.cell_id) for c in cells)
    failed = [r for r in results if r.verdict == Verdict.FAIL]
    if failed:
        log(f"[parity] {len(failed)} cell(s) FAIL: timed, but their outputs do not match the fp32 reference "
            f"(see the reason column; `odbench gate` fails any budget that matches them): "
            + ", ".join(r.cell_id for r in failed[:6]) + (" ..." if len(failed) > 6 else ""))
    code = 1 if any(r.verdict in BAD_VERDICTS for r in results) else 0
    short = your_data.write_eval_table(req.out, {t.name: t for _, t in req.eval_tasks}, log) if req.eval_tasks else None
    return RunOutcome(folder, results, md, csv_path, code, short)
