"""The release gate: budgets -> PASS / FAIL / INCONCLUSIVE / ERROR, with reasons, plus a regression
check against a baseline run (verdicts/regression.py).

Percentile budgets are judged on the population of fresh processes. A PASS needs all of: MLPerf's
early-stopping rule on the pooled samples; the generalized pivot's upper bound of the percentile
(stats/intervals.py, between-process variation included) under the budget; the upper bound of the
population's exceedance over the budget from the per-process fractions (stats/robust.py) under
the tail; no rejection of the pivot's model by the run's own processes (groups, heavy tails, tails
that differ: INCONCLUSIVE with the reason); and at least ``processes_for_pass`` processes, so that a
group of at least ``MIN_GROUP`` of processes that differs is drawn (the assumption that remains,
docs/statistics.md). A FAIL needs the mirror image, without the process floor.

The error rate is spent over looks: every batch of processes a cell was judged on (``Result.looks``,
grown by ``--decide``) and every earlier run folder of the same cell (verdicts/ledger.py). Look j is
judged at alpha / 2**j, half of it for the bounds and half for a group going unseen, so any number of
extensions or reruns keeps the stated rate overall. Size, memory and accuracy budgets do not depend
on timing noise and are never blocked by it.

Exit codes of ``odbench gate``: 0 every gated cell PASSES; 1 any FAIL, ERROR or regression;
3 nothing failed but something is INCONCLUSIVE (a budget, or a paired regression check that could not decide);
2 usage errors and refusals.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np

from odbench.core.records import (
    HARNESS_RUNTIMES,
    NOT_MEASURED,
    Result,
    Variant,
    Verdict,
    atomic_write_text,
    lineage_root,
)
from odbench.stats import earlystop, intervals, robust
from odbench.verdicts.accuracy import judge_budget, row_accuracy
from odbench.verdicts.budgets import Budget, BudgetFile
from odbench.verdicts.regression import (  # noqa: F401  (re-exported: the CLI and tests read them here)
    HARDWARE_KEYS,
    BaselineRefused,
    Change,
    Regression,
    RegressionRule,
    check_same_machine,
    compare,
    compare_cell,
)

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class GateVerdict(StrEnum):
    ERROR = "ERROR"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    PASS = "PASS"


ORDER = tuple(GateVerdict)  # worst first


@dataclass(frozen=True)
class Check:
    name: str
    verdict: GateVerdict
    reason: str
    value: float | None = None
    limit: float | None = None
    more_samples: int = 0


@dataclass(frozen=True)
class CellVerdict:
    cell_id: str
    budget: str
    verdict: str
    reason: str
    checks: tuple[Check, ...] = ()
    model: str = ""
    variant_id: str = ""
    profile: str = ""
    scenario: str = ""
    measured_on: str = ""


def worst(verdicts) -> GateVerdict:
    verdicts = [GateVerdict(v) for v in verdicts]
    return min(verdicts, key=ORDER.index) if verdicts else GateVerdict.PASS


def look_confidence(confidence: float, looks: int) -> float:
    """The confidence batch ``looks`` is judged at: alpha spent as alpha/2, alpha/4, ... (sums to alpha)."""
    return 1 - (1 - confidence) / 2 ** max(1, looks)


def _timing_refusal(r: Result) -> str:
    """Why the timing of this result cannot be judged at all, or ''."""
    if not r.gating:
        return "a non-gating design (one process cannot show the variation between processes): rerun with --preset default or gate"
    if not r.processes_known:
        return "a v1/v2 result whose process boundaries are lost: rerun it to judge its timing"
    if len(r.process_samples) < 2:
        return "fewer than 2 processes measured"
    return ""


MIN_GROUP = 0.10  # the assumption that remains: a group of processes that differs is at least this share of them


@dataclass(frozen=True)
class PercentileJudgement:
    verdict: GateVerdict
    lo: float  # one-sided bounds at the bounds' confidence (NaN where not needed to decide)
    hi: float
    early: earlystop.PercentileVerdict
    fit: intervals.Fit
    why: str = ""  # for INCONCLUSIVE: what kept it from a verdict
    shape: str = ""  # the assumption check's rejection, or ''


def bounds_confidence(confidence: float) -> float:
    """A look's error rate is split in two: half for the bounds, half for a group of processes going unseen."""
    return 1 - (1 - confidence) / 2


def processes_for_pass(confidence: float, min_group: float = MIN_GROUP) -> int:
    """Processes a PASS needs at a look's ``confidence``: a group of ``min_group`` goes unseen with
    probability at most half the look's error rate."""
    return robust.min_processes(min_group, (1 - confidence) / 2)


def judge_percentile(process_samples, q: int, limit: float, confidence: float, min_group: float = MIN_GROUP) -> PercentileJudgement:
    """PASS: at least ``processes_for_pass`` processes, no rejected assumption (stats/robust.py), the
    pivot's upper bound and the per-process exceedance bound both under the budget, and MLPerf's rule
    passes on the pooled samples; FAIL: the same with lower bounds and MLPerf's confident FAIL (no
    process floor: a group not drawn cannot turn a clear FAIL into a PASS unless it is faster, and
    the floor guards only against that for PASS)."""
    f = intervals.fit(process_samples)
    c = bounds_confidence(confidence)
    early = earlystop.judge(f.pooled.size, int((f.pooled > limit).sum()), q / 100, c)
    nan = math.nan
    if early.verdict == "INCONCLUSIVE":  # the pooled samples alone cannot decide: no bound can
        return PercentileJudgement(GateVerdict.INCONCLUSIVE, nan, nan, early, f, "MLPerf's rule on the pooled samples cannot decide")
    need = processes_for_pass(confidence, min_group)
    if early.verdict == "PASS" and f.k < need:
        miss = robust.unseen_probability(min_group, f.k)
        return PercentileJudgement(GateVerdict.INCONCLUSIVE, nan, nan, early, f,
                                   f"a PASS needs {need} processes: a group of {min_group:.0%} of processes that differs goes unseen "
                                   f"in {f.k} with probability {miss:.1%}")
    shape = robust.shape_check(f, q)
    if shape:
        return PercentileJudgement(GateVerdict.INCONCLUSIVE, nan, nan, early, f, shape, shape)
    lo, hi = intervals.quantile_bounds(f, q, c)
    e_lo, e_hi = robust.exceedance_bounds(f, limit, c)
    tail = 1 - q / 100
    if early.verdict == "PASS" and hi < limit and e_hi < tail:
        return PercentileJudgement(GateVerdict.PASS, lo, hi, early, f)
    if early.verdict == "FAIL" and lo > limit and e_lo > tail:
        return PercentileJudgement(GateVerdict.FAIL, lo, hi, early, f)
    return PercentileJudgement(GateVerdict.INCONCLUSIVE, lo, hi, early, f,
                               f"the bounds straddle the budget (exceedance over it {e_lo:.2%} to {e_hi:.2%} against {tail:.0%})")


def processes_to_add(j: PercentileJudgement, q: int, limit: float, confidence: float, looks: int, min_group: float = MIN_GROUP) -> int:
    """Processes to add so that the NEXT look (a stricter confidence) would likely decide: 0 when not
    within reach, or when the processes reject the model (more of them will not make it hold)."""
    if j.shape:
        return 0
    nxt = look_confidence(confidence, looks + 1)
    k = intervals.processes_to_decide(j.fit, q, limit, bounds_confidence(nxt), cap=128)
    if k and float(np.quantile(j.fit.pooled, q / 100)) < limit:  # heading for a PASS: the process floor too
        k = max(k, processes_for_pass(nxt, min_group))
    return max(0, k - j.fit.k) if k else 0


def _latency_check(r: Result, pname: str, limit: float, confidence: float, looks: int, min_group: float) -> Check:
    name = f"{pname}<={limit:g}ms"
    refusal = _timing_refusal(r)
    if refusal:
        return Check(name, GateVerdict.INCONCLUSIVE, refusal, r.stats.get(pname), limit)
    q = int(pname[1:])
    c = look_confidence(confidence, looks)
    j = judge_percentile(r.process_samples, q, limit, c, min_group)
    lo, hi = (j.lo, j.hi) if not math.isnan(j.hi) else intervals.quantile_bounds(j.fit, q, bounds_confidence(c))
    earlier = f", {looks - r.looks} in earlier run folders" if looks > r.looks else ""
    point = intervals.pooled_percentile(r.process_samples, q)
    where = (f"{pname} {point:.4g} ms, one-sided {bounds_confidence(c):.2%} bounds "
             f"[{lo:.4g}, {hi:.4g}] over {j.fit.k} processes (look {looks}{earlier}); MLPerf: {j.early.reason}")
    if j.verdict != GateVerdict.INCONCLUSIVE:
        return Check(name, j.verdict, where, float(hi if j.verdict == GateVerdict.PASS else lo), limit)
    more = processes_to_add(j, q, limit, confidence, looks, min_group)
    hint = (f"; about {more} more processes would likely decide it at look {looks + 1}" if more else
            "; more processes of this population will not decide it" if j.shape else "; more processes are unlikely to decide it soon")
    return Check(name, GateVerdict.INCONCLUSIVE, f"{j.why}; {where}{hint}", float(hi), limit, more)


def _throughput_check(r: Result, floor: float, confidence: float, looks: int) -> Check:
    name = f"throughput>={floor:g}/s"
    refusal = _timing_refusal(r)
    if refusal:
        return Check(name, GateVerdict.INCONCLUSIVE, refusal, r.throughput_items_s, floor)
    c = look_confidence(confidence, looks)
    per_process = [r.items_per_inference / (np.mean(p) / 1e3) for p in r.process_samples]
    point, lo, hi = intervals.log_mean_interval(per_process, 1 - 2 * (1 - c))
    where = f"{point:.4g} items/s, one-sided {c:.2%} bounds [{lo:.4g}, {hi:.4g}] over {len(per_process)} processes"
    if lo >= floor:
        return Check(name, GateVerdict.PASS, where, point, floor)
    if hi < floor:
        return Check(name, GateVerdict.FAIL, where, point, floor)
    return Check(name, GateVerdict.INCONCLUSIVE, where, point, floor)


def _limit_check(name: str, value: float | None, limit: float, what: str) -> Check:
    """A budget on a figure that timing noise does not touch (size, peak memory)."""
    if value is None:
        return Check(name, GateVerdict.ERROR, f"{what} not recorded", None, limit)
    verdict = GateVerdict.PASS if value <= limit else GateVerdict.FAIL
    return Check(name, verdict, f"{what} {value:.1f}", value, limit)


def _accuracy_check(r: Result, budget: Budget, variants: dict[str, Variant], run_accuracy: dict | None = None) -> Check:
    """Non-inferiority on the budget's metric (or every metric of its kind) of the row's OWN runtime's
    accuracy (bench/accuracy.row_accuracy; ``run_accuracy``: the run's accuracy.json, None for a run
    before it) against the fp32 baseline on ONNX Runtime. A row whose runtime was not evaluated is
    ERROR with the reason, never judged on ONNX Runtime's figure."""
    cap = budget.accuracy_drop_max
    v = variants.get(r.variant_id)
    base = variants.get(lineage_root(r.variant_id, variants))
    name = f"accuracy_drop<={cap:.2%}({budget.accuracy_metric or budget.accuracy_kind})"
    if v is None or base is None or not v.accuracy or not base.accuracy:
        return Check(name, GateVerdict.ERROR, f"no accuracy recorded for {r.variant_id} or the baseline it descends from")
    acc, why = row_accuracy(r, variants, run_accuracy)
    if acc is None:
        return Check(name, GateVerdict.ERROR, f"accuracy {why}: the budget cannot be judged on another runtime's figure")
    j = judge_budget(acc, base.accuracy, cap, budget.accuracy_metric, budget.accuracy_kind)
    return Check(name, GateVerdict(j.verdict), j.reason, j.drop, cap)


def judge_cell(r: Result, budget: Budget, variants: dict[str, Variant], confidence: float, run_accuracy: dict | None = None,
               earlier_looks: int = 0, min_group: float = MIN_GROUP) -> CellVerdict:
    """``earlier_looks``: looks this cell had in earlier run folders (verdicts/ledger.py), so that a
    rerun into a fresh folder is judged as the next look, not the first."""
    meta = dict(model=r.model, variant_id=r.variant_id, profile=r.profile, scenario=r.scenario, measured_on=r.measured_on)
    if r.verdict in NOT_MEASURED:
        return CellVerdict(r.cell_id, budget.label, GateVerdict.ERROR, f"cell {r.verdict}: {r.reason}", **meta)
    if r.verdict == Verdict.FAIL:  # measured, but the outputs are wrong: no latency can make up for that
        return CellVerdict(r.cell_id, budget.label, GateVerdict.FAIL, f"cell FAIL: {r.reason}", **meta)
    looks = r.looks + earlier_looks
    checks = [_latency_check(r, pname, limit, confidence, looks, min_group) for pname, limit in sorted(budget.latency_ms.items())]
    if budget.throughput_min:
        checks.append(_throughput_check(r, budget.throughput_min, confidence, looks))
    if budget.peak_rss_mb_max:
        checks.append(_limit_check(f"peak_rss<={budget.peak_rss_mb_max:g}MB", r.peak_rss_mb, budget.peak_rss_mb_max, "peak RSS (MB)"))
    if budget.size_mb_max:
        v = variants.get(r.variant_id)
        checks.append(_limit_check(f"size<={budget.size_mb_max:g}MB", v.size_bytes / 2**20 if v else None, budget.size_mb_max,
                                   "model file (MB)"))
    if budget.accuracy_drop_max is not None:
        checks.append(_accuracy_check(r, budget, variants, run_accuracy))
    verdict = worst(c.verdict for c in checks)
    bad = [c for c in checks if c.verdict == verdict and verdict != GateVerdict.PASS]
    reason = "; ".join(f"{c.name}: {c.reason}" for c in (bad or checks))
    return CellVerdict(r.cell_id, budget.label, verdict, reason, tuple(checks), **meta)


def evaluate(results: list[Result], variants: dict[str, Variant], budgets: BudgetFile, run_accuracy: dict | None = None,
             earlier_looks: dict[str, int] | None = None, min_group: float | None = None) -> list[CellVerdict]:
    """``run_accuracy``: the run's per-runtime accuracy (bench/accuracy.load_run_accuracy), for accuracy budgets;
    ``earlier_looks``: per cell id, its looks in earlier run folders (verdicts/ledger.py); ``min_group``
    overrides the budgets file's."""
    earlier = earlier_looks or {}
    min_group = budgets.min_group if min_group is None else min_group
    out = []
    for budget in budgets.budgets:
        matched = [r for r in results if budget.matches(r) and r.runtime not in HARNESS_RUNTIMES]
        if not matched:
            out.append(CellVerdict("-", budget.label, GateVerdict.ERROR,
                                   "this budget matched no result: check its patterns against the run"))
        out += [judge_cell(r, budget, variants, budgets.confidence, run_accuracy, earlier.get(r.cell_id, 0), min_group)
                for r in matched]
    return out


# ---------------------------------------------------------------- outputs

def exit_code(verdicts: list[CellVerdict], regressions: list[Regression]) -> int:
    if (any(v.verdict in (GateVerdict.FAIL, GateVerdict.ERROR) for v in verdicts)
            or any(g.verdict == Change.REGRESSION for g in regressions)):
        return EXIT_FAIL
    if any(v.verdict == "INCONCLUSIVE" for v in verdicts) or any(g.verdict == Change.INCONCLUSIVE for g in regressions):
        return EXIT_INCONCLUSIVE
    return EXIT_PASS


def summary_counts(verdicts: list[CellVerdict]) -> dict[str, int]:
    return {k: sum(v.verdict == k for v in verdicts) for k in ORDER if any(v.verdict == k for v in verdicts)}


def to_markdown(verdicts: list[CellVerdict], regressions: list[Regression], code: int, notes: Sequence[str] = ()) -> str:
    """``notes``: lines after the tables (e.g. result files that could not be read and no budget needed)."""
    icon = {"PASS": "✅", "FAIL": "❌", "ERROR": "💥", "INCONCLUSIVE": "❔"}
    counts = ", ".join(f"{k} {n}" for k, n in summary_counts(verdicts).items())
    lines = [f"### odbench gate: {counts} (exit {code})", "",
             "| | budget | cell | on | verdict | why |", "|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (ORDER.index(v.verdict), v.cell_id)):
        lines.append(f"| {icon.get(v.verdict, '')} | {v.budget} | `{v.cell_id}` | {v.measured_on} | **{v.verdict}** | "
                     f"{v.reason.replace('|', '/')[:400]} |")
    if regressions:
        tested = sum(g.verdict in (Change.REGRESSION, Change.IMPROVEMENT, Change.SAME, Change.INCONCLUSIVE) for g in regressions)
        rule = f"{regressions[0].correction} over {tested} cells (family-wise error)"
        lines += ["", f"| regression check ({rule}) | design | cell | result |", "|---|---|---|---|"]
        for g in sorted(regressions, key=lambda g: (g.verdict != "REGRESSION", g.cell_id)):
            lines.append(f"| {g.verdict} | {g.design} | `{g.cell_id}` | {g.reason.replace('|', '/')} |")  # the reason says why
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def to_junit(verdicts: list[CellVerdict], regressions: list[Regression]) -> str:
    cases = []
    for v in verdicts:
        body = ""
        if v.verdict == GateVerdict.FAIL:
            body = f"<failure type={quoteattr(v.verdict)} message={quoteattr(v.reason)}/>"
        elif v.verdict == "ERROR":
            body = f"<error type=\"ERROR\" message={quoteattr(v.reason)}/>"
        elif v.verdict == "INCONCLUSIVE":
            body = f"<skipped message={quoteattr('INCONCLUSIVE: ' + v.reason)}/>"
        cls = v.variant_id.replace("/", ".") or "odbench"
        cases.append(f"  <testcase classname={quoteattr(cls)} name={quoteattr(f'{v.budget} :: {v.cell_id}')}>{body}</testcase>")
    for g in regressions:
        body = (f"<failure type=\"REGRESSION\" message={quoteattr(g.reason)}/>" if g.verdict == "REGRESSION" else
                f"<skipped message={quoteattr('INCONCLUSIVE: ' + g.reason)}/>" if g.verdict == "INCONCLUSIVE" else "")
        cases.append(f"  <testcase classname=\"regression\" name={quoteattr(g.cell_id)}>{body}</testcase>")
    n_fail = sum(v.verdict == GateVerdict.FAIL for v in verdicts) + sum(g.verdict == "REGRESSION" for g in regressions)
    n_err = sum(v.verdict == "ERROR" for v in verdicts)
    n_skip = sum(v.verdict == "INCONCLUSIVE" for v in verdicts) + sum(g.verdict == "INCONCLUSIVE" for g in regressions)
    head = (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="odbench-gate" tests="{len(cases)}" '
            f'failures="{n_fail}" errors="{n_err}" skipped="{n_skip}">')
    return "\n".join([head, *cases, "</testsuite></testsuites>"]) + "\n"


def write_outputs(out_dir: Path, verdicts: list[CellVerdict], regressions: list[Regression], code: int,
                  notes: Sequence[str] = ()) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "gate.json", "junit": out_dir / "gate.junit.xml", "markdown": out_dir / "gate.md"}
    payload = {"exit_code": code, "counts": summary_counts(verdicts),
               "verdicts": [asdict(v) for v in verdicts], "regressions": [asdict(g) for g in regressions]}
    atomic_write_text(paths["json"], json.dumps(payload, indent=1))
    atomic_write_text(paths["junit"], to_junit(verdicts, regressions))
    atomic_write_text(paths["markdown"], to_markdown(verdicts, regressions, code, notes))
    return paths
