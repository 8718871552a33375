"""Accuracy you can trust, on the bench side:

1. ``judge_drop``: an accuracy budget is a non-inferiority test (ICH E9, "Statistical principles for
   clinical trials", 1998, section 3.3.2; Wellek, "Testing Statistical Hypotheses of Equivalence
   and Noninferiority", 2010). With the 95% interval of a variant's relative drop vs its fp32 baseline:
   PASS when the upper bound is under the cap, FAIL when the lower bound is over it, else INCONCLUSIVE.
2. ``runtime_accuracy``: a variant's task metrics measured on a given runtime (through the runtimes
   registry's Runtime/Session seam), cached on disk by (variant sha256, runtime, runtime version, host ISA),
   so a row's accuracy is that runtime's own figure, not ONNX Runtime's.
3. ``measure_run_accuracy``: after `odbench run`'s matrix, ``runtime_accuracy`` for every (variant,
   runtime, options) that has a timed cell, written into the run folder (``accuracy.json``) so that a
   committed run is self-contained; ``row_accuracy`` is what tables and the gate read for one row.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from odbench.bench.run_folder import ACCURACY_FILE, RunFolder
from odbench.compressors.isa import host_int8_isa
from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import HARNESS_RUNTIMES, Result, Variant, Verdict, atomic_write_text
from odbench.devices.host import cpu_flags
from odbench.models.metrics import LOWER_IS_BETTER, metric_kind, point_metrics
from odbench.runtimes import RuntimeUnavailable, get_runtime, parse_options

VERDICT_ORDER = ("ERROR", "FAIL", "INCONCLUSIVE", "PASS")


@dataclass(frozen=True)
class DropJudgement:
    metric: str
    verdict: str  # PASS | FAIL | INCONCLUSIVE | ERROR
    drop: float | None  # relative drop vs fp32 (positive = worse), point estimate
    lo: float | None
    hi: float | None
    reason: str


def drop_interval(metric: str, acc: Mapping[str, float], base: Mapping[str, float]) -> tuple[float, float, float, str]:
    """(point, lo, hi, source) of the relative drop of ``metric`` vs the baseline's value.

    Source, best first: the paired delta interval (``delta_m_lo``/``_hi``); the variant's own interval
    around the baseline's point (``m_lo``/``_hi``; fidelity metrics have no delta); the point alone
    (a variant recorded before intervals), which the reason then says.
    """
    b = base[metric]
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0  # drop = sign * (variant - fp32) / |fp32|
    scale = abs(b)
    point = sign * (acc[metric] - b) / scale
    if f"delta_{metric}_lo" in acc and f"delta_{metric}_hi" in acc:
        ends = (acc[f"delta_{metric}_lo"], acc[f"delta_{metric}_hi"])
        source = "paired 95% interval"
    elif f"{metric}_lo" in acc and f"{metric}_hi" in acc:
        ends = (acc[f"{metric}_lo"] - b, acc[f"{metric}_hi"] - b)
        source = "95% interval of the variant (fp32 value taken as fixed)"
    else:
        ends = (acc[metric] - b, acc[metric] - b)
        source = "point estimate only: no interval recorded (rebuild the variant)"
    lo, hi = sorted(sign * e / scale for e in ends)
    return point, lo, hi, source


def judge_drop(metric: str, acc: Mapping[str, float], base: Mapping[str, float], cap: float) -> DropJudgement:
    if metric not in acc or metric not in base:
        return DropJudgement(metric, "ERROR", None, None, None, f"{metric} is not recorded for the variant and its fp32 baseline")
    if base[metric] == 0:
        return DropJudgement(metric, "ERROR", None, None, None, f"fp32 {metric} is 0: a relative drop is undefined")
    point, lo, hi, source = drop_interval(metric, acc, base)
    if hi < cap:
        verdict, why = "PASS", f"upper bound {hi:.3%} < cap {cap:.2%}"
    elif lo > cap:
        verdict, why = "FAIL", f"lower bound {lo:.3%} > cap {cap:.2%}"
    else:
        verdict, why = "INCONCLUSIVE", f"[{lo:.3%}, {hi:.3%}] straddles cap {cap:.2%}"
    reason = (f"{metric} ({metric_kind(metric)}) {acc[metric]:.4f} vs fp32 {base[metric]:.4f}: relative drop {point:.3%}, "
              f"{why} ({source})")
    return DropJudgement(metric, verdict, point, lo, hi, reason)


def judge_budget(acc: Mapping[str, float], base: Mapping[str, float], cap: float, metric: str | None, kind: str) -> DropJudgement:
    """The budget's metric, or else every ``kind`` metric the baseline records; the worst one decides."""
    metrics = [metric] if metric else [m for m in point_metrics(base) if metric_kind(m) == kind]
    if not metrics:
        return DropJudgement(metric or kind, "ERROR", None, None, None, f"the fp32 baseline records no {kind} metric")
    judged = [judge_drop(m, acc, base, cap) for m in metrics]
    return min(judged, key=lambda j: (VERDICT_ORDER.index(j.verdict), -(j.drop if j.drop is not None else 0.0)))


# ------------------------------------------------------------------ accuracy on every runtime


def host_isa() -> str:
    """The host's vector ISA as the cache key sees it: the widest of avx512*/avx2/neon flags (devices/host.py)."""
    flags = set(cpu_flags())
    for isa in ("amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2", "asimd", "neon"):
        if isa in flags:
            return isa
    return "generic"


def _cache_path(cache: Path, sha256: str, runtime: str, version: str, isa: str, options: str) -> Path:
    key = hashlib.sha256(json.dumps([sha256, runtime, version, isa, options]).encode()).hexdigest()[:16]
    return Path(cache) / "accuracy" / f"{sha256[:12]}-{runtime}-{key}.json"


def cached_runtime_accuracy(variant, runtime_name: str, cache: Path) -> dict[str, float] | None:
    """What ``runtime_accuracy`` stored for this variant and runtime on this host (any options), or None.
    For tables: reads only, never evaluates."""
    found = sorted(Path(cache, "accuracy").glob(f"{variant.sha256[:12]}-{runtime_name}-*.json"))
    for path in found:
        data = json.loads(path.read_text())
        if data.get("sha256") == variant.sha256 and data.get("isa") == host_isa():
            return data["accuracy"]
    return None


def runtime_accuracy_record(model, variant, runtime_name: str, cache: Path, threads: int = 1, options=None) -> "RuntimeAccuracy":
    """``variant``'s task metrics computed by ``model`` (its zoo model, built in ``cache``) from
    ``runtime_name``'s own outputs, with what they were measured on; cached by (variant sha256,
    runtime, runtime version, host ISA, options). Raises RuntimeUnavailable when the runtime cannot run here."""
    rt = get_runtime(runtime_name)
    ok, why = rt.available()
    if not ok:
        raise RuntimeUnavailable(why)
    opts = options if options is not None else rt.Options()
    version, isa = rt.version(), host_isa()
    path = _cache_path(Path(cache), variant.sha256, runtime_name, version, isa, repr(opts))
    if path.exists():
        return RuntimeAccuracy.from_dict(json.loads(path.read_text()), cached=True)
    session = rt.open(variant.path, threads, opts)
    try:
        accuracy = model.evaluate(lambda feed: session.run(dict(feed)), Path(cache))
    finally:
        session.close()
    rec = RuntimeAccuracy(variant.id, variant.sha256, runtime_name, version, isa, repr(opts), dict(accuracy))
    atomic_write_text(path, json.dumps(rec.to_dict(), indent=1))
    return rec


def runtime_accuracy(model, variant, runtime_name: str, cache: Path, threads: int = 1, options=None) -> dict[str, float]:
    """The accuracy dict of ``runtime_accuracy_record``."""
    return runtime_accuracy_record(model, variant, runtime_name, cache, threads, options).accuracy


# ------------------------------------------------------------------ accuracy of a run's rows

EVAL_THREADS = max(1, len(os.sched_getaffinity(0)))  # accuracy is not timed: every CPU the process may use
ACCURACY_FILE_VERSION = 1
TIMED_VERDICTS = (Verdict.OK, Verdict.FAIL)  # a FAIL cell was timed too: its accuracy says how wrong it is


@dataclass(frozen=True)
class RuntimeAccuracy:
    """One variant's accuracy on one runtime (with its options) on this host, or why there is none."""

    variant_id: str
    sha256: str
    runtime: str
    runtime_version: str
    isa: str
    options: str  # repr of the runtime's typed Options: part of the cache key
    accuracy: dict[str, float] | None
    error: str = ""  # one line, when the runtime could not be evaluated
    runtime_options: dict = field(default_factory=dict)  # the cell's options, as the run's rows name them
    seconds: float = 0.0  # wall time of the evaluation (0 when read from the cache)
    cached: bool = False
    source: str = "evaluated"  # or "build": ONNX Runtime's own figure from the variant's build on this ISA

    def to_dict(self) -> dict:
        d = asdict(self)
        d["variant"] = d.pop("variant_id")
        d.pop("cached")
        return d

    @classmethod
    def from_dict(cls, d: Mapping, cached: bool = False) -> "RuntimeAccuracy":
        return cls(variant_id=d["variant"], sha256=d["sha256"], runtime=d["runtime"], runtime_version=d.get("runtime_version", ""),
                   isa=d.get("isa", ""), options=d.get("options", ""), accuracy=d.get("accuracy"), error=d.get("error", ""),
                   runtime_options=dict(d.get("runtime_options") or {}), seconds=float(d.get("seconds", 0.0)), cached=cached,
                   source=d.get("source", "evaluated"))


def accuracy_key(variant_id: str, runtime: str, runtime_options: Mapping | None) -> tuple[str, str, str]:
    return (variant_id, runtime, json.dumps(dict(runtime_options or {}), sort_keys=True))


def runtime_text(runtime: str, runtime_options: Mapping | None) -> str:
    opts = dict(runtime_options or {})
    return runtime + (f"[{','.join(f'{k}={v}' for k, v in sorted(opts.items()))}]" if opts else "")


def accuracy_pairs(results: Iterable[Result | None]) -> list[tuple[str, str, dict]]:
    """(variant id, runtime, options) of every timed cell (OK or FAIL) on an inference runtime, once each."""
    pairs: dict[tuple, tuple[str, str, dict]] = {}
    for r in results:
        if r is not None and r.verdict in TIMED_VERDICTS and r.runtime not in HARNESS_RUNTIMES:
            pairs.setdefault(accuracy_key(r.variant_id, r.runtime, r.runtime_options),
                             (r.variant_id, r.runtime, dict(r.runtime_options or {})))
    return list(pairs.values())


def _from_build(variant: Variant, rt, options: dict) -> RuntimeAccuracy | None:
    """A variant's build already scored it on ONNX Runtime (default options, all threads) with this very
    computation: that is the ONNX Runtime row's own figure when it was built for this host's ISA
    (int8 kernels differ by ISA; float variants record no target)."""
    target = variant.config.get("target_isa")
    if rt.name != REFERENCE_RUNTIME or options or not variant.accuracy or target not in (None, host_int8_isa()):
        return None
    return RuntimeAccuracy(variant.id, variant.sha256, rt.name, rt.version(), host_isa(), repr(rt.Options()),
                           dict(variant.accuracy), "", {}, 0.0, True, "build")


def _measure_one(variant: Variant, runtime: str, options: dict, models: Mapping, cache: Path) -> RuntimeAccuracy:
    """The record of one pair; an evaluation that fails is a record with its one-line reason."""
    t0 = time.perf_counter()
    model = models[variant.model]
    try:
        rt = get_runtime(runtime)
        built = _from_build(variant, rt, options)
        if built is not None:
            return built
        rec = runtime_accuracy_record(model, variant, runtime, cache, threads=EVAL_THREADS, options=parse_options(rt, options))
    except Exception as exc:  # noqa: BLE001 - one failing evaluation is a record with its reason; the run goes on
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return RuntimeAccuracy(variant.id, variant.sha256, runtime, "", host_isa(), "", None, reason, dict(options))
    seconds = 0.0 if rec.cached else time.perf_counter() - t0
    return RuntimeAccuracy(rec.variant_id, rec.sha256, runtime, rec.runtime_version, rec.isa, rec.options, rec.accuracy,
                           "", dict(options), round(seconds, 2), rec.cached)


def _summary_text(rec: RuntimeAccuracy, model) -> str:
    if rec.accuracy is None:
        return f"not measured: {rec.error}"
    metric = getattr(model, "primary_metric", None)
    keys = [metric] if metric in rec.accuracy else list(point_metrics(rec.accuracy))[:1]
    return " ".join(f"{k}={rec.accuracy[k]:.4f}" for k in keys)


def measure_run_accuracy(results: Iterable[Result | None], variants: Mapping[str, Variant], models: Mapping, cache: Path,
                         out: Path, log: Callable[[str], None] = print) -> list[RuntimeAccuracy]:
    """Every timed (variant, runtime, options) of a run evaluated on that runtime (cached: a rerun is
    free), merged into ``out/accuracy.json``. ``models``: zoo model name -> model object."""
    records = dict(load_run_accuracy(out) or {})
    new, skipped = [], set()
    for variant_id, runtime, options in accuracy_pairs(results):
        variant = variants.get(variant_id)
        if variant is None or variant.model not in models:
            if variant is not None and variant_id not in skipped:  # a user's ONNX file: no task data to score it on
                log(f"[accuracy] {variant_id}: not a zoo model, no task data: not evaluated per runtime")
                skipped.add(variant_id)
            continue
        rec = _measure_one(variant, runtime, options, models, Path(cache))
        where = "from its build" if rec.source == "build" else "cached" if rec.cached else f"{rec.seconds:.1f}s"
        log(f"[accuracy] {variant_id} on {runtime_text(runtime, options)}: {_summary_text(rec, models.get(variant.model))} ({where})")
        records[accuracy_key(variant_id, runtime, options)] = rec
        new.append(rec)
    RunFolder(out).put_accuracy_body({"version": ACCURACY_FILE_VERSION, "records": [r.to_dict() for r in records.values()]})
    return new


def load_run_accuracy(run_dir: Path | RunFolder) -> dict[tuple, RuntimeAccuracy] | None:
    """A run folder's per-runtime accuracy records by ``accuracy_key``; None for a run without them."""
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir, create=False)
    body = folder.accuracy_body()
    if body is None:
        return None
    if body.get("version") != ACCURACY_FILE_VERSION:
        raise ValueError(f"{folder.root / ACCURACY_FILE}: version {body.get('version')!r}, "
                         f"this odbench reads version {ACCURACY_FILE_VERSION}")
    recs = [RuntimeAccuracy.from_dict(d) for d in body["records"]]
    return {accuracy_key(r.variant_id, r.runtime, r.runtime_options): r for r in recs}


def merge_run_accuracy(run_dirs: Iterable[Path]) -> dict[tuple, RuntimeAccuracy] | None:
    """The records of several folders of one machine (later folders win); None when none has any."""
    found = [a for a in (load_run_accuracy(d) for d in run_dirs) if a is not None]
    return {k: v for a in found for k, v in a.items()} if found else None


def row_accuracy(r: Result, variants: Mapping[str, Variant], run_acc: Mapping[tuple, RuntimeAccuracy] | None) -> tuple[dict | None, str]:
    """The accuracy of ``r``'s own runtime, or (None, why not). Without a record (a run from before
    per-runtime accuracy, a user's ONNX file, --no-accuracy) a default ONNX Runtime row keeps
    Variant.accuracy, which was measured there at build time; any other row is not measured."""
    where = runtime_text(r.runtime, r.runtime_options)
    v = variants.get(r.variant_id)
    rec = (run_acc or {}).get(accuracy_key(r.variant_id, r.runtime, r.runtime_options))
    if rec is None:
        if r.runtime == REFERENCE_RUNTIME and not r.runtime_options and v is not None and v.accuracy:
            return dict(v.accuracy), ""
        return None, f"not measured on {where}"
    if rec.accuracy is None:
        return None, f"not measured on {where}: {rec.error}"
    if v is not None and rec.sha256 != v.sha256:
        return None, f"not measured on {where}: accuracy.json holds another model file ({rec.sha256[:12]} vs {v.sha256[:12]})"
    return dict(rec.accuracy), ""
