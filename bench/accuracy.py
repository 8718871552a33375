"""Accuracy you can trust, on the bench side:

1. ``judge_drop``: an accuracy budget is a non-inferiority test (ICH E9, "Statistical principles for
   clinical trials", 1998, section 3.3.2; Wellek, "Testing Statistical Hypotheses of Equivalence
   and Noninferiority", 2010). With the 95% interval of a variant's relative drop vs its fp32 baseline:
   PASS when the upper bound is under the cap, FAIL when the lower bound is over it, else INCONCLUSIVE.
2. ``runtime_accuracy``: a variant's task metrics measured on a given runtime (through the runtimes
   registry's Runtime/Session seam), cached on disk by (variant sha256, runtime, runtime version, host ISA),
   so a row's accuracy is that runtime's own figure, not ONNX Runtime's.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from odbench.core.records import atomic_write_text
from odbench.devices.host import cpu_flags
from odbench.models.metrics import LOWER_IS_BETTER, metric_kind, point_metrics
from odbench.runtimes import RuntimeUnavailable, get_runtime

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


def runtime_accuracy(model, variant, runtime_name: str, cache: Path, threads: int = 1, options=None) -> dict[str, float]:
    """``variant``'s task metrics computed by ``model`` (its zoo model, built in ``cache``) from
    ``runtime_name``'s own outputs; cached by (variant sha256, runtime, runtime version, host ISA,
    options). Raises RuntimeUnavailable when the runtime cannot run here."""
    rt = get_runtime(runtime_name)
    ok, why = rt.available()
    if not ok:
        raise RuntimeUnavailable(why)
    opts = options if options is not None else rt.Options()
    version, isa = rt.version(), host_isa()
    path = _cache_path(Path(cache), variant.sha256, runtime_name, version, isa, repr(opts))
    if path.exists():
        return json.loads(path.read_text())["accuracy"]
    session = rt.open(variant.path, threads, opts)
    try:
        accuracy = model.evaluate(lambda feed: session.run(dict(feed)), Path(cache))
    finally:
        session.close()
    atomic_write_text(path, json.dumps({"variant": variant.id, "sha256": variant.sha256, "runtime": runtime_name,
                                        "runtime_version": version, "isa": isa, "options": repr(opts),
                                        "accuracy": accuracy}, indent=1))
    return accuracy
