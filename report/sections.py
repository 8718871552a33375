"""The report's compact tables, one row per thing: machines, parity failures (variant, runtime, machine,
metric, value, floor), cells not measured (once per reason) and untimed functional checks. ``views``
are html.MachineView: a machine's tag and its results."""
from __future__ import annotations

from typing import Sequence

from odbench.bench.parity import FP32_FLOORS, RUNTIME_FLOORS, TOP_K
from odbench.core.records import HARNESS_RUNTIMES
from odbench.report.plots import runtime_label, short

TIMED = ("device", "emulated")  # measured_on values whose latency is a measurement


def machine_rows(views: Sequence) -> list[list[str]]:
    return [[v.tag, v.label, " ".join(v.group.machine.isa), ", ".join(p.name for p in v.group.paths), str(len(v.group.results))]
            for v in views]


def parity_rows(model: str, views: Sequence) -> list[list[str]]:
    """Cells left out of every plot and selection because their outputs failed parity: one row per cell, with
    the value furthest below its floor (bench/parity.py) and how many others are below theirs; the check's
    reason when no value is recorded."""
    rows = []
    for v in views:
        for r in v.group.results:
            if r.model != model or r.verdict != "FAIL":
                continue
            par, kind = r.parity or {}, (r.parity or {}).get("kind", "values")
            bad = []
            for key, floors, label in (("fp32", FP32_FLOORS, "vs fp32"), ("runtime", RUNTIME_FLOORS, "vs same variant on ORT")):
                got, fl = par.get(key) or {}, floors.get(kind)
                pairs = (("cosine", fl.cosine), (f"top{TOP_K}_overlap", fl.topk_overlap), ("spearman", fl.spearman)) if fl else ()
                bad += [((floor - got[m]) / floor, f"{m} {label}", got[m], floor) for m, floor in pairs
                        if floor is not None and m in got and not got[m] >= floor]
            where = [short(r.variant_id), runtime_label(r), f"{v.tag} {r.profile}"]
            if not bad:
                rows.append(where + ["(check)", r.reason[:120], ""])
                continue
            _, metric, value, floor = max(bad, key=lambda b: b[0] if b[0] == b[0] else float("inf"))
            rows.append(where + [metric + (f" (+{len(bad) - 1} more below)" if len(bad) > 1 else ""), f"{value:.4f}", f"{floor:g}"])
    return rows


def skipped_rows(model: str, views: Sequence) -> list[list[str]]:
    """Why cells were not measured, once per machine, profile and reason."""
    seen: dict[tuple, int] = {}
    for v in views:
        for r in v.group.results:
            if r.model == model and r.verdict == "SKIPPED":
                seen[v.tag, r.profile, r.reason[:200]] = seen.get((v.tag, r.profile, r.reason[:200]), 0) + 1
    return [[tag, profile, str(n), reason] for (tag, profile, reason), n in seen.items()]


def functional_rows(model: str, views: Sequence) -> list[list[str]]:
    """Cells checked without timing (e.g. measured_on 'functional-emulation': parity on another ISA's kernels)."""
    return [[v.tag, r.profile, r.measured_on, short(r.variant_id), runtime_label(r), r.scenario, r.verdict, r.reason[:160]]
            for v in views for r in v.group.results
            if r.model == model and r.runtime not in HARNESS_RUNTIMES and r.measured_on not in TIMED]
