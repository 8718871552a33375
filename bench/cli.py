"""odbench: the suite's command line.

    odbench run       build what is missing, then run the benchmark matrix (default: zoo x onnxruntime x host)
    odbench build     build/cached-load the zoo's fp32 baselines
    odbench compress  build compressed variants (pruned, int8 via INC, low-rank, distilled, int8/int4 embeddings)
    odbench models    list the zoo models, their scenarios and built variants
    odbench devices   list device profiles, show one, or validate profile files
    odbench table     regenerate results tables from a run folder
    odbench gate      judge a run against a budgets file (and a baseline run): PASS/FAIL/INCONCLUSIVE/...
    odbench report    the hardware-selection report (HTML with plots + Markdown)
    odbench worker    start a Dask worker on a target device (for run --executor dask)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BAD_VERDICTS = ("ERROR", "TIMEOUT")
# The README's main command: every zoo model on these runtimes (a missing one is a reasoned SKIPPED).
DEFAULT_RUNTIMES = ("onnxruntime", "openvino", "torch")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_runtimes(texts: list[str]) -> list[tuple[str, dict]]:
    """Each --runtime, with 'a|b|c' values expanded into one runtime config each (a sweep):
    'onnxruntime:graph_optimization=disable|all' -> two configs."""
    import itertools

    out = []
    for text in texts:
        name, _, rest = text.partition(":")
        items = [item.partition("=") for item in filter(None, rest.split(","))]
        choices = [[f"{k}{sep}{v}" for v in value.split("|")] for k, sep, value in items]
        for combo in itertools.product(*choices) if choices else [()]:
            config = parse_runtime(name + (":" + ",".join(combo) if combo else ""))
            if config not in out:
                out.append(config)
    return out


def parse_runtime(text: str) -> tuple[str, dict]:
    """'onnxruntime' or 'onnxruntime:graph_optimization=basic,allow_spinning=false'."""
    from runtimes import get_runtime, parse_options

    name, _, rest = text.partition(":")
    runtime = get_runtime(name)
    defaults = runtime.Options()
    raw: dict = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"odbench: --runtime {text!r}: expected KEY=VALUE, got {item!r}")
        current = getattr(defaults, key, None)
        if isinstance(current, bool):
            raw[key] = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, int):
            raw[key] = int(value)
        elif isinstance(current, tuple):
            raw[key] = tuple(value.split("+"))
        else:
            raw[key] = value
    try:
        options = parse_options(runtime, raw)
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"odbench: {exc}")
    changed = {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if getattr(options, f.name) != getattr(defaults, f.name)}
    return name, {k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()}


def _dims(items: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"odbench: --dim expects NAME=SIZE with SIZE >= 1, got {item!r}")
        out.append((name, int(value)))
    return tuple(out)


def cmd_run(args) -> int:
    from tqdm import tqdm

    from bench import provenance
    from bench.executors.local import LocalExecutor
    from bench.matrix import Workload, plan
    from bench.records import TIMING_PRESETS, Feeds, to_json
    from bench.store import ResultStore
    from bench.tables import load_variants, write_tables
    from devices.profile import ProfileError, get_profile
    from models import ZOO, get_model
    from models.base import cache_dir
    from models.onnx_file import user_variant
    from bench.feeds import materialize_feeds

    try:
        profiles = [get_profile(p) for p in (args.profile or ["host"])]
    except ProfileError as exc:
        _log(f"odbench: {exc}")
        return 2
    runtimes = parse_runtimes(args.runtime or list(DEFAULT_RUNTIMES))
    timing = TIMING_PRESETS[args.preset]
    if args.min_time is not None:
        timing = dataclasses.replace(timing, min_time_s=args.min_time, max_time_s=max(timing.max_time_s, args.min_time))
    cache = cache_dir(args.cache)
    t_build = time.perf_counter()
    workloads: list[Workload] = []
    headlines: dict[str, str] = {}
    model_names = args.model or ([] if args.onnx else list(ZOO))
    compress_s = 0.0
    for name in model_names:
        model = get_model(name)
        _log(f"[build] {name}: fp32 baseline (cached after the first run) ...")
        variant = model.build(cache, log=_log)
        feeds = {}
        for scenario in model.scenarios:
            fs = model.feeds(scenario, cache)
            feeds[scenario] = (Feeds(path=str(fs.path)), fs.items_per_inference)
        workloads.append(Workload(variant, feeds, model.output_kind))
        headlines[variant.model] = model.headline
        _log(f"[build] {variant.id}: {variant.size_bytes / 2**20:.1f} MB, accuracy {variant.accuracy}, parity {variant.parity}")
        if args.recipe != "none":
            t0 = time.perf_counter()
            built = _compress_zoo(model, variant, cache, args.recipe)
            compress_s += time.perf_counter() - t0
            scen = feeds if args.all_scenarios else {model.headline: feeds[model.headline]}
            workloads += [Workload(b.variant, scen, model.output_kind) for b in built if b.variant is not None]
    dims = _dims(args.dim or [])
    lo, _, hi = (args.int_range or "0:100").partition(":")
    for path in args.onnx or []:
        try:
            variant = user_variant(path)
        except FileNotFoundError as exc:
            _log(f"odbench: {exc}")
            return 2
        feeds = Feeds(path=str(Path(args.feeds).resolve())) if args.feeds else Feeds(dims=dims, int_low=int(lo), int_high=int(hi))
        # Every runtime and the parity references must see the very same feeds: write them once.
        feeds = materialize_feeds(variant, feeds, Path(args.out) / "feeds", log=_log)
        batch = dict(dims).get("batch", 1)
        workloads.append(Workload(variant, {"synthetic": (feeds, batch)}))
    build_s = time.perf_counter() - t_build

    parity_specs = {}
    if not args.no_parity:
        from bench.parity import prepare

        known = {**load_variants(Path(args.out)), **{w.variant.id: w.variant for w in workloads}}
        t0 = time.perf_counter()
        parity_specs = prepare(workloads, known, Path(args.out), log=_log)
        _log(f"[parity] reference outputs for {len(parity_specs)} (variant, scenario) pairs on onnxruntime "
             f"({time.perf_counter() - t0:.1f}s)")
    cells = plan_cells(workloads, runtimes, profiles, timing, args, headlines, parity_specs)
    if not args.runtime:  # the default runtimes: leave out what a runtime cannot run at all, and say so
        cells = _drop_unaccepted(cells)
    if not args.no_overhead and workloads:
        w0 = workloads[0]
        scenario = "rank-200" if "rank-200" in w0.feeds else next(iter(w0.feeds))
        cells += plan([Workload(w0.variant, {scenario: w0.feeds[scenario]})], [("null", {})], profiles, timing)
    if not cells:
        _log("odbench: the plan is empty (check --scenario against the models' scenarios)")
        return 2

    out = Path(args.out)
    store = ResultStore(out)
    if args.force:
        for c in cells:
            store.path_for(c.cell_id).unlink(missing_ok=True)
    variants = load_variants(out)
    variants.update({w.variant.id: w.variant for w in workloads})
    store.write_json("variants.json", [json.loads(to_json(v)) for v in variants.values()])
    store.write_json("machine.json", provenance.machine())

    todo = [c for c in cells if not store.done(c.cell_id)]
    _log(f"[run] {len(cells)} cells planned, {len(cells) - len(todo)} already done (resume), {len(todo)} to run; "
         f"preset {args.preset!r}, results -> {out}/")
    t_run = time.perf_counter()
    # one progress bar per device profile
    per_profile: dict[str, int] = {}
    for c in todo:
        per_profile[c.profile_name] = per_profile.get(c.profile_name, 0) + 1
    bars = {p: tqdm(total=n, unit="cell", desc=p, position=i, file=sys.stderr, dynamic_ncols=True, disable=args.quiet)
            for i, (p, n) in enumerate(per_profile.items())}

    def on_start(spec):
        bars[spec.profile_name].set_description(f"{spec.profile_name}: {spec.variant_id} {spec.runtime} {spec.scenario}")

    def on_result(r):
        s = r.stats or {}
        detail = f"p50 {s['p50']:.3f} ms  p95 {s['p95']:.3f} ms  n={r.n_samples}" if s else r.reason[:160]
        where = f" @{r.provenance.get('worker')}" if r.provenance.get("worker") else ""
        bar = bars.get(r.profile) or next(iter(bars.values()))
        bar.write(f"  {r.verdict:8s} {r.cell_id}{where}  {detail}")
        bar.update(1)

    if args.executor == "dask":
        from bench.executors.dask import DaskExecutor

        try:
            executor = DaskExecutor(args.scheduler, shared_root=args.shared_root)
        except ValueError as exc:
            _log(f"odbench: {exc}")
            return 2
    else:
        executor = LocalExecutor()
    executor.run(cells, store, on_start=on_start, on_result=on_result)
    for bar in bars.values():
        bar.close()
    run_s = time.perf_counter() - t_run
    md, csv_path = write_tables(out)
    store.write_json("run.json", {"preset": args.preset, "executor": args.executor, "timing": dataclasses.asdict(timing), "build_s": round(build_s, 1),
                                  "compress_s": round(compress_s, 1), "recipe": args.recipe,
                                  "matrix_s": round(run_s, 1), "cells": len(cells), "argv": sys.argv[1:]})
    _log(f"[done] build {build_s:.0f}s, matrix {run_s:.0f}s; tables: {md} {csv_path}")
    if not args.quiet:
        print(md.read_text())
    results = [store.get(c.cell_id) for c in cells]
    failed = [r for r in results if r.verdict == "FAIL"]
    if failed:
        _log(f"[parity] {len(failed)} cell(s) FAIL: timed, but their outputs do not match the fp32 reference "
             f"(see the reason column; `odbench gate` fails any budget that matches them): "
             + ", ".join(r.cell_id for r in failed[:6]) + (" ..." if len(failed) > 6 else ""))
    return 1 if any(r.verdict in BAD_VERDICTS for r in results) else 0


def _drop_unaccepted(cells):
    """Default matrix only: cells a default runtime cannot run at all (the torch runtime on a compressed
    variant) are left out with one line of log instead of a SKIPPED row each. Asked-for runtimes keep them."""
    from runtimes import get_runtime

    kept, dropped = [], {}
    for c in cells:
        ok, why = get_runtime(c.runtime).accepts(c.variant_path)
        if ok:
            kept.append(c)
        else:
            dropped.setdefault((c.runtime, why), []).append(c)
    for (runtime, why), group in dropped.items():
        _log(f"[plan] {runtime}: {len(group)} cell(s) left out: {why}")
    return kept


def plan_cells(workloads, runtimes, profiles, timing, args, headlines: dict[str, str], parity_specs):
    """The first runtime (the reference) gets every scenario of each workload; the others get the
    model's headline scenario, unless --all-scenarios or --scenario asks for more."""
    from bench.matrix import Workload, plan

    kw = dict(scenarios=args.scenario, timeout_s=args.timeout, parity=parity_specs)
    if args.all_scenarios or args.scenario or len(runtimes) == 1:
        return plan(workloads, runtimes, profiles, timing, **kw)
    cells = []
    for w in workloads:
        head = headlines.get(w.variant.model)
        others = [Workload(w.variant, {head: w.feeds[head]}, w.output_kind)] if head in w.feeds else [w]
        cells += plan([w], runtimes[:1], profiles, timing, **kw) + plan(others, runtimes[1:], profiles, timing, **kw)
    return cells


def _compress_zoo(model, baseline, cache: Path, recipe: str):
    from compressors.build import build_recipe
    from compressors.recipes import RECIPES
    from models.base import ZooTask

    steps = RECIPES.get((model.name, recipe))
    if steps is None:
        raise SystemExit(f"odbench: no recipe {recipe!r} for {model.name}")
    _log(f"[compress] {model.name}: {len(steps)} variants (recipe {recipe!r}; cached by content hash) ...")
    return build_recipe(baseline, steps, ZooTask(model, cache), cache / "variants" / model.name,
                        torch_task_factory=lambda: model.torch_task(cache), log=_log)


def cmd_compress(args) -> int:
    from compressors.build import build_recipe
    from compressors.fidelity import OnnxFidelityTask
    from compressors.recipes import RECIPES
    from bench.records import Feeds
    from models import ZOO, get_model
    from models.base import cache_dir, ort_run_fn
    from models.onnx_file import user_variant

    cache = cache_dir(args.cache)
    rows = []
    t_all = time.perf_counter()
    for name in args.model or ([] if args.onnx else list(ZOO)):
        model = get_model(name)
        baseline = model.build(cache, log=_log)
        rows += [(baseline, b) for b in _compress_zoo(model, baseline, cache, args.recipe)]
    for path in args.onnx or []:
        baseline = user_variant(path)
        feeds = Feeds(path=str(Path(args.feeds).resolve())) if args.feeds else Feeds(dims=_dims(args.dim or []))
        task = OnnxFidelityTask(baseline.path, feeds)
        baseline = dataclasses.replace(baseline, accuracy=task.evaluate(ort_run_fn(baseline.path)))
        rows += [(baseline, b) for b in build_recipe(baseline, RECIPES[("onnx", args.recipe)], task,
                                                      cache / "variants" / baseline.model, log=_log)]
    total = time.perf_counter() - t_all
    print("| variant | parent | compressor | size MB | gzip MB | emb MB | dense MB | sparsity | accuracy | build s | note |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for base, b in rows:
        v = b.variant
        if v is None:
            print(f"| {base.model}/{b.step.key} | | {b.step.compressor} | | | | | | FAILED | {b.seconds:.1f} | {b.error[:120]} |")
            continue
        acc = " ".join(f"{k}={x:.4f} ({x - base.accuracy.get(k, x):+.4f})" for k, x in v.accuracy.items())
        print(f"| {v.id} | {v.parent} | {v.compressor} | {v.size_bytes / 2**20:.1f} | {(v.gzip_bytes or 0) / 2**20:.1f} | "
              f"{v.embedding_mb or 0:.1f} | {v.dense_mb or 0:.1f} | {v.sparsity or 0:.2f} | {acc} | {b.seconds:.1f} | {(v.notes or ('',))[0][:120]} |")
    print(f"\nbuilt {sum(b.variant is not None for _, b in rows)}/{len(rows)} variants in {total:.0f}s (cached steps are instant)")
    return 0 if all(b.variant is not None for _, b in rows) else 1


def cmd_worker(args) -> int:
    """Start a Dask worker on this device, advertising its profile (checked against the machine)."""
    from devices.check import mismatches
    from devices.profile import ProfileError, get_profile
    from bench.executors.dask import MEASURED_ON_ENV, SCHEDULER_ENV, resource_for

    address = args.scheduler or os.environ.get(SCHEDULER_ENV)
    if not address:
        _log(f"odbench: no scheduler address: pass --scheduler or set {SCHEDULER_ENV}")
        return 2
    try:
        profile = get_profile(args.profile)
    except ProfileError as exc:
        _log(f"odbench: {exc}")
        return 2
    problems = mismatches(profile)
    if problems and not args.emulate:
        _log(f"odbench: profile {profile.name!r} does not describe this machine: " + "; ".join(problems)
             + "\n(use --emulate to run it emulated here; results will be marked 'emulated')")
        return 2
    measured_on = "emulated" if (args.emulate or problems) else "device"
    import socket

    cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--resources", f"{resource_for(profile.name)}=1",
           "--nthreads", "1", "--name", f"odbench-{profile.name}-{socket.gethostname()}-{os.getpid()}"]
    if args.no_nanny:
        cmd.append("--no-nanny")
    _log(f"[worker] {profile.name} ({measured_on}) -> {address}: {' '.join(cmd[3:])}")
    os.execve(sys.executable, cmd, dict(os.environ, **{MEASURED_ON_ENV: measured_on}))
    return 0  # not reached


def cmd_build(args) -> int:
    from models import ZOO, get_model
    from models.base import cache_dir

    for name in args.model or list(ZOO):
        v = get_model(name).build(cache_dir(args.cache), log=_log)
        print(f"{v.id}\t{v.size_bytes / 2**20:.1f} MB\t{v.params} params\t{v.accuracy}\t{v.parity}\t{v.path}")
    return 0


def cmd_models(args) -> int:
    from models import ZOO, get_model
    from models.base import cache_dir
    from bench.records import Variant

    cache = cache_dir(args.cache)
    for name in ZOO:
        m = get_model(name)
        print(f"{name}\n  {m.description}\n  scenarios: {', '.join(m.scenarios)}")
        metas = sorted((cache / "models" / name).glob("*/*/variant.json")) + sorted((cache / "variants" / name).glob("*/variant.json"))
        for meta in metas:
            v = Variant.load(meta)
            acc = ", ".join(f"{k}={x:.4f}" for k, x in v.accuracy.items())
            lineage = f" <- {v.parent} [{v.compressor}]" if v.parent else ""
            print(f"  built: {v.id}{lineage}  {v.size_bytes / 2**20:.1f} MB  {acc}  ({meta.parent})")
    return 0


def cmd_devices(args) -> int:
    from devices.profile import ProfileError, get_profile, list_profile_files, load_profile_file

    if args.action == "validate":
        bad = 0
        for path in args.names:
            try:
                p = load_profile_file(path)
                print(f"ok: {path} ({p.name})")
            except ProfileError as exc:
                print(str(exc), file=sys.stderr)
                bad += 1
        return 1 if bad else 0
    if args.action == "show":
        for name in args.names or ["host"]:
            try:
                print(get_profile(name).model_dump_json(indent=2))
            except ProfileError as exc:
                print(str(exc), file=sys.stderr)
                return 1
        return 0
    print(_here_text())
    print()
    rows = [("profile", "arch", "cores/threads", "memory MB", "runtimes", "peak GFLOP/s", "GB/s", "price", "power W", "here")]
    for path in list_profile_files():
        try:
            p = load_profile_file(path)
        except ProfileError as exc:
            rows.append((path.stem, "INVALID", str(exc).splitlines()[-1].strip(), "", "", "", "", "", "", ""))
            continue
        d = p.datasheet
        price = "" if d is None else (f"${d.hourly_price_usd:g}/h" if d.hourly_price_usd is not None else f"${d.unit_price_usd:g}" if d.unit_price_usd is not None else "")
        rows.append((p.name, p.arch, f"{p.cores}/{p.threads}", str(p.memory_mb), ",".join(p.runtimes),
                     f"{d.peak_gflops:g}" if d and d.peak_gflops else "", f"{d.mem_bandwidth_gbs:g}" if d and d.mem_bandwidth_gbs else "",
                     price, f"{d.power_w:g}" if d and d.power_w else "", _emulation_note(p)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\n`odbench devices show NAME` prints a profile with its datasheet sources; `odbench run --profile NAME` emulates it here.")
    return 0


def _here_text() -> str:
    """What this machine really has: ISA, and each runtime with its providers/devices."""
    from devices.host import detect_host
    from runtimes import INFERENCE_RUNTIMES, get_runtime

    host = detect_host()
    lines = [f"This machine (profile 'host', measured_on=device): {host.cpu_model}, {host.arch}, {host.cores} physical cores, "
             f"{host.memory_mb} MB", f"  ISA: {' '.join(host.isa) or 'unknown'}", "  runtimes:"]
    for name in INFERENCE_RUNTIMES:
        rt = get_runtime(name)
        ok, why = rt.available()
        if not ok:
            lines.append(f"    {name}: not available: {why}")
            continue
        try:
            caps = rt.capabilities()
        except Exception as exc:  # noqa: BLE001 - a broken install is worth showing, not crashing on
            caps = {"error": f"{type(exc).__name__}: {exc}"}
        detail = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in caps.items())
        lines.append(f"    {name} {rt.version()}: {detail}")
    return "\n".join(lines)


def _emulation_note(profile) -> str:
    from devices.check import emulation_note

    return emulation_note(profile)


def cmd_table(args) -> int:
    from bench.tables import write_tables

    md, csv_path = write_tables(args.run_dir)
    print(md.read_text())
    return 0


def _load_run(run_dir: Path):
    from bench.store import ResultStore
    from bench.tables import load_variants

    if not (run_dir / "cells").is_dir():
        raise SystemExit(f"odbench: {run_dir} is not a run folder (no cells/); run `odbench run --out {run_dir}` first")
    machine = json.loads((run_dir / "machine.json").read_text()) if (run_dir / "machine.json").exists() else {}
    return ResultStore(run_dir), load_variants(run_dir), machine


def cmd_gate(args) -> int:
    from bench import gate
    from bench.budgets import BudgetError, load_budgets

    try:
        budgets = load_budgets(args.budgets)
        rule = gate.RegressionRule.parse(args.regression)
    except (BudgetError, ValueError) as exc:
        _log(f"odbench: {exc}")
        return gate.EXIT_USAGE
    run_dir = Path(args.run_dir)
    store, variants, machine = _load_run(run_dir)
    verdicts = gate.evaluate(store.all(), variants, budgets)
    rounds = 0
    while args.decide and rounds < args.max_rounds and any(v.verdict == "INCONCLUSIVE" for v in verdicts):
        from bench.decide import resample

        rounds += 1
        n = resample(store, verdicts, args.max_samples, args.max_time,
                     on_result=lambda r: _log(f"  [decide {rounds}] {r.verdict} {r.cell_id} n={r.n_samples}"))
        if not n:
            break
        verdicts = gate.evaluate(store.all(), variants, budgets)
    regressions = []
    if args.baseline:
        base_store, _, base_machine = _load_run(Path(args.baseline))
        try:
            gate.check_same_machine(machine, base_machine)
            regressions = gate.compare(store.all(), base_store.all(), rule)
        except gate.BaselineRefused as exc:
            _log(f"odbench: {exc}")
            return gate.EXIT_USAGE
    code = gate.exit_code(verdicts, regressions)
    paths = gate.write_outputs(Path(args.out or run_dir), verdicts, regressions, code)
    print(paths["markdown"].read_text())
    _log(f"[gate] exit {code}; {', '.join(str(p) for p in paths.values())}")
    return code


def cmd_report(args) -> int:
    from bench import gate, report
    from bench.budgets import BudgetError, load_budgets
    from devices.profile import ProfileError, get_profile

    run_dir = Path(args.run_dir)
    store, variants, machine = _load_run(run_dir)
    results = store.all()
    verdicts = None
    if args.budgets:
        try:
            verdicts = gate.evaluate(results, variants, load_budgets(args.budgets))
        except BudgetError as exc:
            _log(f"odbench: {exc}")
            return 2
    profiles = {}
    for name in sorted({r.profile for r in results}):
        try:
            profiles[name] = get_profile(name).model_dump(mode="json")
        except ProfileError:
            profiles[name] = {}
    html_path, md_path = report.render(run_dir, results, variants, machine, verdicts, profiles,
                                       Path(args.out) if args.out else None)
    print(f"{html_path}\n{md_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="odbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default="artifacts", help="where built models and feeds are cached (env ODBENCH_CACHE)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the benchmark matrix")
    r.add_argument("--model", action="append", help="zoo model (repeatable; default: every zoo model unless --onnx is given)")
    r.add_argument("--onnx", action="append", help="your own ONNX file (repeatable); feeds come from its input signature")
    r.add_argument("--runtime", action="append", help="NAME[:KEY=VALUE,...]; KEY=A|B sweeps the values (repeatable; default: onnxruntime, openvino, torch)")
    r.add_argument("--profile", action="append", help="device profile name or YAML path (repeatable; default: host)")
    r.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    r.add_argument("--preset", choices=["smoke", "default", "gate"], default="default", help="timing preset")
    r.add_argument("--min-time", type=float, help="override the preset's minimum measured seconds per cell")
    r.add_argument("--timeout", type=float, help="per-cell timeout in seconds (default: from the preset)")
    r.add_argument("--dim", action="append", help="symbolic dimension size for --onnx feeds, NAME=SIZE (repeatable)")
    r.add_argument("--int-range", help="LOW:HIGH for synthetic integer inputs (default 0:100)")
    r.add_argument("--feeds", help=".npz feed file for --onnx models (keys '<index>/<input name>')")
    r.add_argument("--out", default="results/latest", help="run folder (default results/latest); reruns resume")
    r.add_argument("--force", action="store_true", help="rerun cells that already have results")
    r.add_argument("--no-overhead", action="store_true", help="skip the null-session harness-overhead cell")
    r.add_argument("--no-parity", action="store_true", help="skip the output-parity spot check against fp32 on onnxruntime")
    r.add_argument("--executor", choices=["local", "dask"], default="local", help="where cells run (default: local)")
    r.add_argument("--scheduler", help="Dask scheduler address for --executor dask (env ODBENCH_SCHEDULER)")
    r.add_argument("--shared-root", help="--executor dask: workers see files under this path as-is (else files are sent)")
    r.add_argument("--recipe", choices=["default", "full", "none"], default="default",
                   help="compressed variants to build and benchmark for zoo models (default: default; none = fp32 only)")
    r.add_argument("--all-scenarios", action="store_true",
                   help="every scenario for every variant and runtime (default: fp32 on every scenario with the first "
                        "runtime; the headline scenario otherwise)")
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("build", help="build the zoo's fp32 baselines")
    b.add_argument("--model", action="append")
    b.set_defaults(func=cmd_build)

    w = sub.add_parser("worker", help="start a Dask worker for this device, advertising its profile")
    w.add_argument("--profile", required=True, help="device profile name or YAML path")
    w.add_argument("--scheduler", help="scheduler address (env ODBENCH_SCHEDULER)")
    w.add_argument("--emulate", action="store_true", help="allow a profile that is not this machine (results marked emulated)")
    w.add_argument("--no-nanny", action="store_true", help="no Dask nanny process (a dead worker is not restarted)")
    w.set_defaults(func=cmd_worker)

    c = sub.add_parser("compress", help="build compressed variants (zoo models, or --onnx files: graph-only compressors)")
    c.add_argument("--model", action="append")
    c.add_argument("--onnx", action="append", help="your own ONNX file; accuracy = fidelity to its fp32 outputs")
    c.add_argument("--recipe", choices=["default", "full"], default="default")
    c.add_argument("--dim", action="append", help="--onnx feeds: NAME=SIZE")
    c.add_argument("--feeds", help="--onnx feeds: .npz file")
    c.set_defaults(func=cmd_compress)

    m = sub.add_parser("models", help="list zoo models and built variants")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("devices", help="list, show or validate device profiles")
    d.add_argument("action", nargs="?", choices=["list", "show", "validate"], default="list")
    d.add_argument("names", nargs="*")
    d.set_defaults(func=cmd_devices)

    t = sub.add_parser("table", help="regenerate the tables of a run folder")
    t.add_argument("run_dir")
    t.set_defaults(func=cmd_table)

    g = sub.add_parser("gate", help="judge a run against budgets; exit 0 PASS, 1 FAIL/ERROR/UNSTABLE, 3 INCONCLUSIVE, 2 usage")
    g.add_argument("run_dir")
    g.add_argument("--budgets", required=True, help="budgets YAML (see budgets/example.yaml)")
    g.add_argument("--baseline", help="a baseline run folder from the same machine and runtime version")
    g.add_argument("--regression", default="10%:0.002", help="EFFECT%%[:ALPHA]: median slowdown and Mann-Whitney p (default 10%%:0.002)")
    g.add_argument("--decide", action="store_true", help="resample INCONCLUSIVE cells until they can be decided")
    g.add_argument("--max-rounds", type=int, default=3, help="--decide: resampling rounds (default 3)")
    g.add_argument("--max-samples", type=int, default=50_000, help="--decide: most samples a cell may reach (default 50000)")
    g.add_argument("--max-time", type=float, default=180.0, help="--decide: most seconds per process (default 180)")
    g.add_argument("--out", help="where gate.json, gate.junit.xml and gate.md go (default: the run folder)")
    g.set_defaults(func=cmd_gate)

    rp = sub.add_parser("report", help="hardware-selection report: HTML with plots + Markdown")
    rp.add_argument("run_dir")
    rp.add_argument("--budgets", help="budgets YAML: the report then says which device and variant meet them")
    rp.add_argument("--out", help="output folder (default RUN_DIR/report)")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cache:
        os.environ.setdefault("ODBENCH_CACHE", args.cache)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
