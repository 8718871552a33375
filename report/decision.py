"""The report's answer, per model: which variant x runtime x device to ship, why, and which runners-up the
data cannot separate from it.

Every usable cell (timed, outputs match, not emulated beyond its machine) becomes a ``Point`` with the
figures a user decides on: speedup vs fp32 (``tables.speedup_of``, the one accessor; paired when the run
has a paired design), the task metric's delta vs fp32 with its paired interval, fidelity, and p95.

* With budgets: the candidates are the machine x profile x variant x runtime that meet all budgets
  (judged per machine), ranked by price, then power (the profile's datasheet), then worst p95.
* Without budgets: the candidates are those whose task-metric interval shows no loss vs fp32, ranked by
  p95 at the model's focus scenario.

Two candidates are *separated* only when their intervals do not overlap: speedup vs the same fp32 cell
when they share machine, profile, runtime and scenario, else p95. The runners-up listed are those the
pick is not separated from. A point without a finite interval is separated from nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from odbench.core.records import HARNESS_RUNTIMES, Result, Verdict, lineage_root
from odbench.report.figures import (
    Estimate,
    fidelity_metric,
    metric_estimate,
    no_detected_loss,
    stat_estimate,
    task_metric,
)
from odbench.report.runs import MachineRuns
from odbench.report.tables import ISOLATED_OVER_PAIRED, PairedLookup, cell_key, runtime_label, speedup_of, task_delta
from odbench.verdicts.accuracy import merge_run_accuracy, row_accuracy

TIMED = ("device", "emulated")  # measured_on values whose latency is a measurement
USABLE = (Verdict.OK, Verdict.UNSTABLE)  # timed, outputs match the references (UNSTABLE: v1/v2 results only)


@dataclass(frozen=True)
class Point:
    """One usable cell on one machine, with the figures a user decides on."""

    tag: str  # the machine's tag, M1, M2, ...
    r: Result
    speedup: Estimate | None
    delta: Estimate | None  # task metric minus fp32's (ONNX Runtime), paired over the test examples
    fidelity: Estimate | None
    p95: Estimate | None
    design: str = ""  # how the speedup was measured (the ratio's own ``design``, when it says)

    @property
    def variant(self) -> str:
        return self.r.variant_id.split("/", 1)[-1]

    @property
    def runtime(self) -> str:
        return runtime_label(self.r.runtime, self.r.runtime_options)

    @property
    def where(self) -> str:
        return f"{self.tag}:{self.r.profile}" + (" (emulated)" if self.r.measured_on == "emulated" else "")

    @property
    def group(self) -> tuple:
        """Points whose speedups share one fp32 cell: same machine, profile, runtime and scenario."""
        return (self.tag, self.r.profile, self.r.measured_on, self.runtime, self.r.scenario)

    def name(self) -> str:
        return f"{self.variant} on {self.runtime}, {self.where}"


def separated(a: Point, b: Point) -> bool:
    """The data tell a and b apart on speed: speedup intervals vs the same fp32 cell, else p95 intervals."""
    if a.group == b.group and a.speedup and b.speedup:
        return not a.speedup.overlaps(b.speedup)
    if a.p95 and b.p95:
        return not a.p95.overlaps(b.p95)
    return False


def points_of(model: str, tag: str, group: MachineRuns, usable: Sequence[Result], paired: PairedLookup | None = None) -> list[Point]:
    """``usable``: this machine's usable results of ``model`` (html.MachineView filters what lies beyond it);
    ``paired``: the machine's paired speedups, where its runs have them."""
    run_acc = merge_run_accuracy(group.paths)
    variants = group.variants
    by_key = {cell_key(r.variant_id, r): r for r in group.results}
    metric = task_metric(model, [v.accuracy for v in variants.values() if v.model == model])
    out = []
    for r in usable:
        ratio = speedup_of(r, by_key, variants, "fp32", paired)
        if ratio is not None:
            sp = Estimate.of(ratio.ratio, ratio.lo, ratio.hi)
        elif r.variant_id == lineage_root(r.variant_id, variants):
            sp = Estimate(1.0, 1.0, 1.0)  # the reference itself, exactly
        else:
            sp = None
        delta, _ = task_delta(r, variants, run_acc, metric)
        acc, _ = row_accuracy(r, variants, run_acc)
        fid = metric_estimate(acc, fidelity_metric(model, [acc or {}]))
        out.append(Point(tag, r, sp, delta, fid, stat_estimate(r.stats, "p95"), ratio.design if ratio else ""))
    return out


def usable(r: Result, model: str) -> bool:
    return (r.model == model and r.runtime not in HARNESS_RUNTIMES and r.verdict in USABLE and r.measured_on in TIMED
            and bool(r.stats) and "p95" in r.stats)


def dominated(points: Sequence[Point], x: str = "speedup", y: str = "delta") -> dict[int, int]:
    """index -> the index of a point that dominates it beyond the intervals, within its speedup group:
    at least as good on both axes (not worse beyond the intervals) and better beyond them on one.
    Points without intervals are never judged; the rest of the front cannot be told apart."""
    out = {}
    for i, a in enumerate(points):
        for j, b in enumerate(points):
            if i == j or a.group[:4] != b.group[:4]:
                continue
            ax, ay, bx, by = getattr(a, x), getattr(a, y), getattr(b, x), getattr(b, y)
            if None in (ax, ay, bx, by) or not all(e.has_interval for e in (ax, ay, bx, by)):
                continue  # without an interval on both axes, the data cannot say
            if not ax.above(bx) and not ay.above(by) and (bx.above(ax) or by.above(ay)):
                out[i] = j
                break
    return out


@dataclass(frozen=True)
class Decision:
    model: str
    metric: str | None
    pick: Point | None
    why: tuple[str, ...]
    ties: tuple[Point, ...]  # the runners-up the data cannot separate from the pick
    others: int  # candidates the data do separate from the pick (slower beyond the intervals)
    note: str = ""  # when there is no pick: why


def why_lines(p: Point, metric: str | None, basis: str) -> list[str]:
    design = {"": "", ISOLATED_OVER_PAIRED: " (isolated processes; paired disagreed)"}.get(p.design, f" ({p.design} processes)")
    sp = f"speedup vs fp32 on {p.runtime}: x{p.speedup.text('.2f')}{design}" if p.speedup else "speedup vs fp32: not measured"
    acc = (f"{metric} Δ vs fp32: {p.delta.text('.4f', signed=True)}" if p.delta is not None
           else f"{metric or 'task metric'} Δ vs fp32: not measured on {p.runtime}")
    at = f" at {p.r.scenario}" if p.r.scenario else " (worst of its budgeted cells)"
    p95 = f"p95{at}: {p.p95.text('.3g', unit=' ms')}" if p.p95 else ""
    return [x for x in (basis, acc, sp, p95) if x]


def decide(model: str, candidates: Sequence[Point], metric: str | None, budgets: int | None,
           rank_keys: Sequence | None = None, ranked_by: str = "worst p95") -> Decision:
    """``candidates``: best first (with budgets: those meeting them all, ranked by the caller; without:
    every usable point, filtered and ranked here). ``budgets``: how many budgets apply, None when none given.
    ``rank_keys``: per candidate, what ranked it before speed (price, power): a runner-up with another key
    is separated by it."""
    if budgets is None:
        cands = sorted((p for p in candidates if no_detected_loss(p.delta, metric)), key=lambda p: p.p95.value if p.p95 else float("inf"))
        basis = f"no budgets given: the lowest p95 among cells whose {metric or 'task metric'} Δ vs fp32 is not below 0 beyond its interval"
        if not cands:
            why = f"No usable cell has a {metric or 'task metric'} delta showing no loss vs fp32."
            return Decision(model, metric, None, (), (), 0, why)
    else:
        cands = list(candidates)
        basis = f"passes every budget judged on its cells ({budgets} for this model); ranked by {ranked_by}"
        if not cands:
            why = "No machine, device profile, variant and runtime meets all of this model's budgets."
            return Decision(model, metric, None, (), (), 0, why)
    pick = cands[0]
    keys = list(rank_keys) if rank_keys is not None and budgets is not None else [None] * len(cands)
    ties = tuple(p for p, k in zip(cands[1:], keys[1:]) if k == keys[0] and not separated(pick, p))
    return Decision(model, metric, pick, tuple(why_lines(pick, metric, basis)), ties, len(cands) - 1 - len(ties))
