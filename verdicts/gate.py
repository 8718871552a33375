"""The release gate: budgets -> PASS / FAIL / INCONCLUSIVE / ERROR, with reasons, plus a regression
check against a baseline run (effect size AND significance, on per-process summaries).

Percentile budgets are judged on the population of fresh processes (stats/intervals.py): a PASS
needs the one-sided upper bound of the percentile, which includes the variation between processes,
under the budget, and MLPerf's early-stopping rule on the pooled samples (its minimum counts a
floor); a FAIL needs the lower bound over it and MLPerf's confident FAIL. The error rate is spent
over the batches of processes a cell was judged on (``Result.looks``, grown by ``--decide``): batch
j is judged at alpha / 2**j, so that any number of extensions keeps the stated rate overall. Size,
memory and accuracy budgets do not depend on timing noise and are never blocked by it.

Exit codes of ``odbench gate``: 0 every gated cell PASSES; 1 any FAIL, ERROR or regression;
3 nothing failed but something is INCONCLUSIVE; 2 usage errors and refusals.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr
from typing import Sequence

from enum import StrEnum

import numpy as np

from odbench.stats import earlystop, intervals
from odbench.verdicts.accuracy import judge_budget, row_accuracy
from odbench.verdicts.budgets import Budget, BudgetFile
from odbench.core.records import (
    HARNESS_RUNTIMES,
    NOT_MEASURED,
    Result,
    Variant,
    Verdict,
    atomic_write_text,
    lineage_root,
)

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class GateVerdict(StrEnum):
    ERROR = "ERROR"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    PASS = "PASS"


ORDER = tuple(GateVerdict)  # worst first


class BaselineRefused(ValueError):
    pass


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


@dataclass(frozen=True)
class PercentileJudgement:
    verdict: GateVerdict
    lo: float  # one-sided bounds at the look's confidence (NaN where not needed to decide)
    hi: float
    early: earlystop.PercentileVerdict
    fit: intervals.Fit


def judge_percentile(process_samples, q: int, limit: float, confidence: float) -> PercentileJudgement:
    """PASS: the upper bound (between-process variation included) under ``limit`` and MLPerf's rule
    passes on the pooled samples; FAIL: the lower bound over it and MLPerf's confident FAIL."""
    f = intervals.fit(process_samples)
    early = earlystop.judge(f.pooled.size, int((f.pooled > limit).sum()), q / 100, confidence)
    if early.verdict == "INCONCLUSIVE":  # the pooled samples alone cannot decide: no bound can
        return PercentileJudgement(GateVerdict.INCONCLUSIVE, math.nan, math.nan, early, f)
    lo, hi = intervals.quantile_bounds(f, q, confidence)
    if early.verdict == "PASS" and hi < limit:
        return PercentileJudgement(GateVerdict.PASS, lo, hi, early, f)
    if early.verdict == "FAIL" and lo > limit:
        return PercentileJudgement(GateVerdict.FAIL, lo, hi, early, f)
    return PercentileJudgement(GateVerdict.INCONCLUSIVE, lo, hi, early, f)


def _latency_check(r: Result, pname: str, limit: float, confidence: float) -> Check:
    name = f"{pname}<={limit:g}ms"
    refusal = _timing_refusal(r)
    if refusal:
        return Check(name, GateVerdict.INCONCLUSIVE, refusal, r.stats.get(pname), limit)
    q = int(pname[1:])
    c = look_confidence(confidence, r.looks)
    j = judge_percentile(r.process_samples, q, limit, c)
    lo, hi = (j.lo, j.hi) if not math.isnan(j.hi) else intervals.quantile_bounds(j.fit, q, c)
    where = (f"{pname} {intervals.pooled_percentile(r.process_samples, q):.4g} ms, one-sided {c:.2%} bounds "
             f"[{lo:.4g}, {hi:.4g}] over {j.fit.k} processes (look {r.looks}); MLPerf: {j.early.reason}")
    if j.verdict != GateVerdict.INCONCLUSIVE:
        return Check(name, j.verdict, where, float(hi if j.verdict == GateVerdict.PASS else lo), limit)
    more = intervals.processes_to_decide(j.fit, q, limit, c)
    hint = f"; about {more} processes in all would likely decide it" if more else "; more processes are unlikely to decide it soon"
    return Check(name, GateVerdict.INCONCLUSIVE, where + hint, float(hi), limit, max(0, more - j.fit.k))


def _throughput_check(r: Result, floor: float, confidence: float) -> Check:
    name = f"throughput>={floor:g}/s"
    refusal = _timing_refusal(r)
    if refusal:
        return Check(name, GateVerdict.INCONCLUSIVE, refusal, r.throughput_items_s, floor)
    c = look_confidence(confidence, r.looks)
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


def judge_cell(r: Result, budget: Budget, variants: dict[str, Variant], confidence: float, run_accuracy: dict | None = None) -> CellVerdict:
    meta = dict(model=r.model, variant_id=r.variant_id, profile=r.profile, scenario=r.scenario, measured_on=r.measured_on)
    if r.verdict in NOT_MEASURED:
        return CellVerdict(r.cell_id, budget.label, GateVerdict.ERROR, f"cell {r.verdict}: {r.reason}", **meta)
    if r.verdict == Verdict.FAIL:  # measured, but the outputs are wrong: no latency can make up for that
        return CellVerdict(r.cell_id, budget.label, GateVerdict.FAIL, f"cell FAIL: {r.reason}", **meta)
    checks = [_latency_check(r, pname, limit, confidence) for pname, limit in sorted(budget.latency_ms.items())]
    if budget.throughput_min:
        checks.append(_throughput_check(r, budget.throughput_min, confidence))
    if budget.peak_rss_mb_max:
        checks.append(_limit_check(f"peak_rss<={budget.peak_rss_mb_max:g}MB", r.peak_rss_mb, budget.peak_rss_mb_max, "peak RSS (MB)"))
    if budget.size_mb_max:
        v = variants.get(r.variant_id)
        checks.append(_limit_check(f"size<={budget.size_mb_max:g}MB", v.size_bytes / 2**20 if v else None, budget.size_mb_max, "model file (MB)"))
    if budget.accuracy_drop_max is not None:
        checks.append(_accuracy_check(r, budget, variants, run_accuracy))
    verdict = worst(c.verdict for c in checks)
    bad = [c for c in checks if c.verdict == verdict and verdict != GateVerdict.PASS]
    reason = "; ".join(f"{c.name}: {c.reason}" for c in (bad or checks))
    return CellVerdict(r.cell_id, budget.label, verdict, reason, tuple(checks), **meta)


def evaluate(results: list[Result], variants: dict[str, Variant], budgets: BudgetFile, run_accuracy: dict | None = None) -> list[CellVerdict]:
    """``run_accuracy``: the run's per-runtime accuracy (bench/accuracy.load_run_accuracy), for accuracy budgets."""
    out = []
    for budget in budgets.budgets:
        matched = [r for r in results if budget.matches(r) and r.runtime not in HARNESS_RUNTIMES]
        if not matched:
            out.append(CellVerdict("-", budget.label, GateVerdict.ERROR, "this budget matched no result: check its patterns against the run"))
        out += [judge_cell(r, budget, variants, budgets.confidence, run_accuracy) for r in matched]
    return out


# ---------------------------------------------------------------- regression check

class Change(StrEnum):
    REGRESSION = "REGRESSION"
    IMPROVEMENT = "IMPROVEMENT"
    SAME = "SAME"
    MODEL_CHANGED = "MODEL CHANGED"  # a different model file under the same cell id: not comparable
    UNKNOWN = "UNKNOWN"  # too few processes on a side to test


@dataclass(frozen=True)
class RegressionRule:
    """Parsed from e.g. ``"10%:0.01"``: flag a regression when the per-process medians are at least
    10% slower AND a one-sided Welch test on their logs (processes as the replicates) gives p < 0.01."""

    min_effect: float = 0.10
    alpha: float = 0.01

    @classmethod
    def parse(cls, text: str) -> "RegressionRule":
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*(?::\s*(0?\.\d+|1e-\d+))?\s*", text)
        if not m:
            raise ValueError(f"regression rule {text!r}: expected EFFECT%[:ALPHA], e.g. '10%:0.01'")
        return cls(float(m.group(1)) / 100, float(m.group(2)) if m.group(2) else cls.alpha)


@dataclass(frozen=True)
class Regression:
    cell_id: str
    verdict: Change
    effect: float  # geometric mean of per-process medians, current / baseline - 1
    effect_lo: float  # its 95% interval
    effect_hi: float
    p_value: float
    n_current: int  # processes
    n_baseline: int
    reason: str


# What makes two machines the same for a comparison of timings.
HARDWARE_KEYS = ("cpu_model", "arch", "isa", "physical_cores", "logical_cpus", "memory_mb")


def check_same_machine(current: dict, baseline: dict) -> None:
    def norm(k, v):
        return sorted(v) if k == "isa" and isinstance(v, list) else v

    diff = {k: (baseline.get(k), current.get(k)) for k in HARDWARE_KEYS if norm(k, baseline.get(k)) != norm(k, current.get(k))}
    if diff:
        detail = ", ".join(_describe_difference(k, b, c) for k, (b, c) in diff.items())
        raise BaselineRefused(f"refusing to compare against a baseline from another machine ({detail})")


def _describe_difference(key: str, base, cur) -> str:
    if key == "isa" and isinstance(base, list) and isinstance(cur, list):
        only_b, only_c = sorted(set(base) - set(cur)), sorted(set(cur) - set(base))
        return f"isa: baseline has {only_b or 'nothing more'}, current has {only_c or 'nothing more'}"
    return f"{key}: baseline {base!r} vs current {cur!r}"


def compare_cell(r: Result, b: Result, rule: RegressionRule) -> Regression | None:
    cur, base = r.process_medians_ms, b.process_medians_ms
    if not cur or not base:
        return None
    sha_r, sha_b = r.provenance.get("model_sha256"), b.provenance.get("model_sha256")
    if sha_r and sha_b and sha_r != sha_b:
        return Regression(r.cell_id, Change.MODEL_CHANGED, math.nan, math.nan, math.nan, math.nan, len(cur), len(base),
                          f"the model file changed (sha256 {sha_b[:12]} -> {sha_r[:12]}): timings are not comparable")
    ratio = intervals.ratio_interval(cur, base)
    effect = ratio.ratio - 1
    if len(cur) < 2 or len(base) < 2 or not r.processes_known or not b.processes_known:
        return Regression(r.cell_id, Change.UNKNOWN, effect, math.nan, math.nan, math.nan, len(cur), len(base),
                          f"median {effect:+.1%}; fewer than 2 known processes on a side: cannot test")
    if effect >= rule.min_effect and ratio.p_greater < rule.alpha:
        verdict, p = Change.REGRESSION, ratio.p_greater
    elif effect <= -rule.min_effect and ratio.p_less < rule.alpha:
        verdict, p = Change.IMPROVEMENT, ratio.p_less
    else:
        verdict, p = Change.SAME, min(ratio.p_greater, ratio.p_less)
    return Regression(r.cell_id, verdict, effect, ratio.lo - 1, ratio.hi - 1, p, len(cur), len(base),
                      f"median {effect:+.1%} [{ratio.lo - 1:+.1%}, {ratio.hi - 1:+.1%}] (Welch on log per-process medians, "
                      f"p={p:.2g}, {len(cur)} vs {len(base)} processes; rule >= {rule.min_effect:.0%} and p < {rule.alpha:g})")


def compare(current: list[Result], baseline: list[Result], rule: RegressionRule) -> list[Regression]:
    base = {r.cell_id: r for r in baseline}
    out = []
    for r in current:
        b = base.get(r.cell_id)
        if b is None or r.verdict in NOT_MEASURED or b.verdict in NOT_MEASURED:
            continue
        rv, bv = r.provenance.get("runtime_version"), b.provenance.get("runtime_version")
        if rv != bv:
            raise BaselineRefused(f"refusing to compare {r.cell_id}: runtime version {rv} vs baseline {bv}")
        g = compare_cell(r, b, rule)
        if g is not None:
            out.append(g)
    return out


# ---------------------------------------------------------------- outputs

def exit_code(verdicts: list[CellVerdict], regressions: list[Regression]) -> int:
    if any(v.verdict in (GateVerdict.FAIL, GateVerdict.ERROR) for v in verdicts) or any(g.verdict == Change.REGRESSION for g in regressions):
        return EXIT_FAIL
    if any(v.verdict == "INCONCLUSIVE" for v in verdicts):
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
        lines.append(f"| {icon.get(v.verdict, '')} | {v.budget} | `{v.cell_id}` | {v.measured_on} | **{v.verdict}** | {v.reason.replace('|', '/')[:400]} |")
    if regressions:
        lines += ["", "| regression check | cell | result |", "|---|---|---|"]
        for g in sorted(regressions, key=lambda g: (g.verdict != "REGRESSION", g.cell_id)):
            lines.append(f"| {g.verdict} | `{g.cell_id}` | {g.reason} |")
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
        body = f"<failure type=\"REGRESSION\" message={quoteattr(g.reason)}/>" if g.verdict == "REGRESSION" else ""
        cases.append(f"  <testcase classname=\"regression\" name={quoteattr(g.cell_id)}>{body}</testcase>")
    n_fail = sum(v.verdict == GateVerdict.FAIL for v in verdicts) + sum(g.verdict == "REGRESSION" for g in regressions)
    n_err = sum(v.verdict == "ERROR" for v in verdicts)
    n_skip = sum(v.verdict == "INCONCLUSIVE" for v in verdicts)
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
