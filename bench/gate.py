"""The release gate: budgets -> PASS / FAIL / INCONCLUSIVE / UNSTABLE / ERROR, with reasons,
plus a regression check against a baseline run (effect size AND significance).

Exit codes of ``odbench gate``: 0 every gated cell PASSES; 1 any FAIL, ERROR, UNSTABLE or
regression; 3 nothing failed but something is INCONCLUSIVE; 2 usage errors and refusals.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
from scipy import stats as sps

from bench import earlystop
from bench.accuracy import judge_budget
from bench.budgets import Budget, BudgetFile
from bench.records import Result, Variant, atomic_write_text, lineage_root

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
ORDER = ("ERROR", "FAIL", "UNSTABLE", "INCONCLUSIVE", "PASS")


class BaselineRefused(ValueError):
    pass


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
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


def worst(verdicts) -> str:
    verdicts = list(verdicts)
    return min(verdicts, key=ORDER.index) if verdicts else "PASS"


def _latency_checks(r: Result, budget: Budget, confidence: float) -> list[Check]:
    checks = []
    x = np.asarray(r.samples_ms)
    for pname, limit in sorted(budget.latency_ms.items()):
        p = int(pname[1:]) / 100
        over = int((x > limit).sum())
        v = earlystop.judge(len(x), over, p, confidence)
        observed = float(np.percentile(x, int(pname[1:]))) if len(x) else None
        checks.append(Check(f"{pname}<={limit:g}ms", v.verdict, f"{v.reason} (observed {pname} {observed:.3f} ms)" if observed is not None else v.reason,
                            observed, limit, v.more_samples))
    return checks


def _throughput_check(r: Result, floor: float, confidence: float) -> Check:
    x = np.asarray(r.samples_ms) / 1e3
    n = len(x)
    if n < 2:
        return Check(f"throughput>={floor:g}/s", "INCONCLUSIVE", "fewer than 2 samples", None, floor)
    mean, sem = x.mean(), x.std(ddof=1) / math.sqrt(n)
    q = sps.t.ppf(confidence, n - 1)
    lo_tp, hi_tp = r.items_per_inference / (mean + q * sem), r.items_per_inference / max(mean - q * sem, 1e-12)
    observed = r.items_per_inference / mean
    if lo_tp >= floor:
        verdict, why = "PASS", f"lower {confidence:.0%} bound {lo_tp:.4g} items/s >= {floor:g}"
    elif hi_tp < floor:
        verdict, why = "FAIL", f"upper {confidence:.0%} bound {hi_tp:.4g} items/s < {floor:g}"
    else:
        verdict, why = "INCONCLUSIVE", f"{confidence:.0%} interval [{lo_tp:.4g}, {hi_tp:.4g}] items/s straddles {floor:g}"
    return Check(f"throughput>={floor:g}/s", verdict, why, observed, floor)


def _accuracy_check(r: Result, budget: Budget, variants: dict[str, Variant]) -> Check:
    """Non-inferiority on the budget's metric (or every metric of its kind): bench/accuracy.py."""
    cap = budget.accuracy_drop_max
    v = variants.get(r.variant_id)
    base = variants.get(lineage_root(r.variant_id, variants))
    name = f"accuracy_drop<={cap:.2%}({budget.accuracy_metric or budget.accuracy_kind})"
    if v is None or base is None or not v.accuracy:
        return Check(name, "ERROR", f"no accuracy recorded for {r.variant_id} or the baseline it descends from")
    j = judge_budget(v.accuracy, base.accuracy, cap, budget.accuracy_metric, budget.accuracy_kind)
    return Check(name, j.verdict, j.reason, j.drop, cap)


def judge_cell(r: Result, budget: Budget, variants: dict[str, Variant], confidence: float) -> CellVerdict:
    meta = dict(model=r.model, variant_id=r.variant_id, profile=r.profile, scenario=r.scenario, measured_on=r.measured_on)
    if r.verdict in ("ERROR", "TIMEOUT", "SKIPPED"):
        return CellVerdict(r.cell_id, budget.label, "ERROR", f"cell {r.verdict}: {r.reason}", **meta)
    if r.verdict == "FAIL":  # measured, but the outputs are wrong: no latency can make up for that
        return CellVerdict(r.cell_id, budget.label, "FAIL", f"cell FAIL: {r.reason}", **meta)
    if not r.gating:
        return CellVerdict(r.cell_id, budget.label, "INCONCLUSIVE", "a non-gating (smoke) run: rerun with --preset default or gate", **meta)
    checks: list[Check] = []
    checks += _latency_checks(r, budget, confidence)
    if budget.throughput_min:
        checks.append(_throughput_check(r, budget.throughput_min, confidence))
    if budget.peak_rss_mb_max:
        rss = r.peak_rss_mb
        checks.append(Check(f"peak_rss<={budget.peak_rss_mb_max:g}MB", "ERROR" if rss is None else ("PASS" if rss <= budget.peak_rss_mb_max else "FAIL"),
                            "peak RSS not recorded" if rss is None else f"peak RSS {rss:.0f} MB", rss, budget.peak_rss_mb_max))
    if budget.size_mb_max:
        v = variants.get(r.variant_id)
        size = v.size_bytes / 2**20 if v else None
        checks.append(Check(f"size<={budget.size_mb_max:g}MB", "ERROR" if size is None else ("PASS" if size <= budget.size_mb_max else "FAIL"),
                            "variant size unknown" if size is None else f"model file {size:.1f} MB", size, budget.size_mb_max))
    if budget.accuracy_drop_max is not None:
        checks.append(_accuracy_check(r, budget, variants))
    verdict = worst(c.verdict for c in checks)
    # An unstable cell never passes. When it also lacks samples, INCONCLUSIVE (with how many
    # more are needed) says more than UNSTABLE, so it stays, with the instability noted.
    if r.verdict == "UNSTABLE" and verdict == "PASS":
        verdict = "UNSTABLE"
    bad = [c for c in checks if c.verdict == verdict and verdict != "PASS"]
    reason = r.reason if verdict == "UNSTABLE" else "; ".join(f"{c.name}: {c.reason}" for c in (bad or checks))
    if r.verdict == "UNSTABLE" and verdict == "INCONCLUSIVE":
        reason += f"; the cell is also UNSTABLE ({r.reason})"
    return CellVerdict(r.cell_id, budget.label, verdict, reason, tuple(checks), **meta)


def evaluate(results: list[Result], variants: dict[str, Variant], budgets: BudgetFile) -> list[CellVerdict]:
    out = []
    for budget in budgets.budgets:
        matched = [r for r in results if budget.matches(r) and r.runtime not in ("null", "faulty")]
        if not matched:
            out.append(CellVerdict("-", budget.label, "ERROR", "this budget matched no result: check its patterns against the run"))
        out += [judge_cell(r, budget, variants, budgets.confidence) for r in matched]
    return out


# ---------------------------------------------------------------- regression check

@dataclass(frozen=True)
class RegressionRule:
    """Parsed from e.g. ``"10%:0.002"``: flag a regression when the median is at least 10%
    slower AND a one-sided Mann-Whitney U test gives p < 0.002."""

    min_effect: float = 0.10
    alpha: float = 0.002

    @classmethod
    def parse(cls, text: str) -> "RegressionRule":
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*(?::\s*(0?\.\d+|1e-\d+))?\s*", text)
        if not m:
            raise ValueError(f"regression rule {text!r}: expected EFFECT%[:ALPHA], e.g. '10%:0.002'")
        return cls(float(m.group(1)) / 100, float(m.group(2)) if m.group(2) else cls.alpha)


@dataclass(frozen=True)
class Regression:
    cell_id: str
    verdict: str  # REGRESSION | IMPROVEMENT | SAME
    effect: float  # median(current) / median(baseline) - 1
    p_value: float
    n_current: int
    n_baseline: int
    reason: str


HARDWARE_KEYS = ("cpu_model", "arch", "physical_cores", "memory_mb")


def check_same_machine(current: dict, baseline: dict) -> None:
    diff = {k: (baseline.get(k), current.get(k)) for k in HARDWARE_KEYS if baseline.get(k) != current.get(k)}
    if diff:
        detail = ", ".join(f"{k}: baseline {b!r} vs current {c!r}" for k, (b, c) in diff.items())
        raise BaselineRefused(f"refusing to compare against a baseline from another machine ({detail})")


def compare(current: list[Result], baseline: list[Result], rule: RegressionRule) -> list[Regression]:
    base = {r.cell_id: r for r in baseline}
    out = []
    for r in current:
        b = base.get(r.cell_id)
        if b is None or not r.samples_ms or not b.samples_ms:
            continue
        rv, bv = r.provenance.get("runtime_version"), b.provenance.get("runtime_version")
        if rv != bv:
            raise BaselineRefused(f"refusing to compare {r.cell_id}: runtime version {rv} vs baseline {bv}")
        x, y = np.asarray(r.samples_ms), np.asarray(b.samples_ms)
        effect = float(np.median(x) / np.median(y) - 1)
        p_slower = float(sps.mannwhitneyu(x, y, alternative="greater").pvalue)
        p_faster = float(sps.mannwhitneyu(x, y, alternative="less").pvalue)
        if effect >= rule.min_effect and p_slower < rule.alpha:
            verdict, p = "REGRESSION", p_slower
        elif effect <= -rule.min_effect and p_faster < rule.alpha:
            verdict, p = "IMPROVEMENT", p_faster
        else:
            verdict, p = "SAME", min(p_slower, p_faster)
        out.append(Regression(r.cell_id, verdict, effect, p, len(x), len(y),
                              f"median {effect:+.1%} (Mann-Whitney p={p:.2g}, n={len(x)} vs {len(y)}; rule >= {rule.min_effect:.0%} and p < {rule.alpha:g})"))
    return out


# ---------------------------------------------------------------- outputs

def exit_code(verdicts: list[CellVerdict], regressions: list[Regression]) -> int:
    if any(v.verdict in ("FAIL", "ERROR", "UNSTABLE") for v in verdicts) or any(g.verdict == "REGRESSION" for g in regressions):
        return EXIT_FAIL
    if any(v.verdict == "INCONCLUSIVE" for v in verdicts):
        return EXIT_INCONCLUSIVE
    return EXIT_PASS


def summary_counts(verdicts: list[CellVerdict]) -> dict[str, int]:
    return {k: sum(v.verdict == k for v in verdicts) for k in ORDER if any(v.verdict == k for v in verdicts)}


def to_markdown(verdicts: list[CellVerdict], regressions: list[Regression], code: int) -> str:
    icon = {"PASS": "✅", "FAIL": "❌", "ERROR": "💥", "UNSTABLE": "〰️", "INCONCLUSIVE": "❔"}
    counts = ", ".join(f"{k} {n}" for k, n in summary_counts(verdicts).items())
    lines = [f"### odbench gate: {counts} (exit {code})", "",
             "| | budget | cell | on | verdict | why |", "|---|---|---|---|---|---|"]
    for v in sorted(verdicts, key=lambda v: (ORDER.index(v.verdict), v.cell_id)):
        lines.append(f"| {icon.get(v.verdict, '')} | {v.budget} | `{v.cell_id}` | {v.measured_on} | **{v.verdict}** | {v.reason.replace('|', '/')[:400]} |")
    if regressions:
        lines += ["", "| regression check | cell | result |", "|---|---|---|"]
        for g in sorted(regressions, key=lambda g: (g.verdict != "REGRESSION", g.cell_id)):
            lines.append(f"| {g.verdict} | `{g.cell_id}` | {g.reason} |")
    return "\n".join(lines) + "\n"


def to_junit(verdicts: list[CellVerdict], regressions: list[Regression]) -> str:
    cases = []
    for v in verdicts:
        body = ""
        if v.verdict in ("FAIL", "UNSTABLE"):
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
    n_fail = sum(v.verdict in ("FAIL", "UNSTABLE") for v in verdicts) + sum(g.verdict == "REGRESSION" for g in regressions)
    n_err = sum(v.verdict == "ERROR" for v in verdicts)
    n_skip = sum(v.verdict == "INCONCLUSIVE" for v in verdicts)
    head = (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="odbench-gate" tests="{len(cases)}" '
            f'failures="{n_fail}" errors="{n_err}" skipped="{n_skip}">')
    return "\n".join([head, *cases, "</testsuite></testsuites>"]) + "\n"


def write_outputs(out_dir: Path, verdicts: list[CellVerdict], regressions: list[Regression], code: int) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "gate.json", "junit": out_dir / "gate.junit.xml", "markdown": out_dir / "gate.md"}
    payload = {"exit_code": code, "counts": summary_counts(verdicts),
               "verdicts": [asdict(v) for v in verdicts], "regressions": [asdict(g) for g in regressions]}
    atomic_write_text(paths["json"], json.dumps(payload, indent=1))
    atomic_write_text(paths["junit"], to_junit(verdicts, regressions))
    atomic_write_text(paths["markdown"], to_markdown(verdicts, regressions, code))
    return paths
