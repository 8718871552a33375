"""The run-against-run regression check: each cell's per-process medians against a baseline run's,
from the same machine and runtime version.

A cell is a REGRESSION when the run is, with confidence, at least ``min_effect`` slower: the
permutation test of "at most ``min_effect`` slower" (stats/regression.py) rejects at the level Holm's
step-down gives it among the run's cells, so the effect rule is applied to the confidence bound,
not to the point estimate, and the chance of any false REGRESSION in the run is at most alpha
(family-wise error). IMPROVEMENT is the mirror image, with its own Holm family.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from odbench.core.records import NOT_MEASURED, Result
from odbench.stats import intervals
from odbench.stats import regression as rs

CORRECTION = "Holm"


class BaselineRefused(ValueError):
    pass


class Change(StrEnum):
    REGRESSION = "REGRESSION"
    IMPROVEMENT = "IMPROVEMENT"
    SAME = "SAME"
    MODEL_CHANGED = "MODEL CHANGED"  # a different model file under the same cell id: not comparable
    UNKNOWN = "UNKNOWN"  # too few processes on a side to test
    INCONCLUSIVE = "INCONCLUSIVE"  # paired design: neither a change beyond the rule nor SAME within it was shown


RUN_AGAINST_RUN = "run-against-run"  # the designs a row's figure can come from
PAIRED = "paired"


@dataclass(frozen=True)
class RegressionRule:
    """Parsed from e.g. ``"10%:0.01"``: flag a regression when the per-process medians are, with
    family-wise confidence 1 - 0.01 over the run's cells, at least 10% slower."""

    min_effect: float = 0.10
    alpha: float = 0.01

    @classmethod
    def parse(cls, text: str) -> "RegressionRule":
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)%\s*(?::\s*(0?\.\d+|1e-\d+))?\s*", text)
        if not m:
            raise ValueError(f"regression rule {text!r}: expected EFFECT%[:ALPHA], e.g. '10%:0.01'")
        return cls(float(m.group(1)) / 100, float(m.group(2)) if m.group(2) else cls.alpha)

    def describe(self, cells: int) -> str:
        return (f"permutation test on per-process log medians that the change is beyond {self.min_effect:.0%}; "
                f"{CORRECTION} over {cells} cells (family-wise error <= {self.alpha:g})")


@dataclass(frozen=True)
class Regression:
    cell_id: str
    verdict: Change
    effect: float  # geometric mean of per-process medians, current / baseline - 1
    effect_lo: float  # its 95% interval (Welch, for display; the verdict is the permutation test's)
    effect_hi: float
    p_value: float  # permutation p of "at most min_effect slower" (or faster, for IMPROVEMENT)
    n_current: int  # processes
    n_baseline: int
    reason: str
    p_faster: float = math.nan  # permutation p of "at most min_effect faster"
    level: float = math.nan  # the level Holm held p_value to
    correction: str = CORRECTION
    design: str = RUN_AGAINST_RUN  # which design gave the figure (verdicts/regression_paired.py chooses)
    design_note: str = ""  # why that design: e.g. why the paired design could not be used
    equivalent: bool = False  # paired: the interval lies within ±min_effect (SAME when no change is flagged)
    paired_group: str = ""  # paired: the saved group (samples of every process), relative to the gate's output


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
    """One cell's comparison before the correction over cells: ``verdict`` is SAME, MODEL CHANGED or
    UNKNOWN here; ``compare`` decides REGRESSION and IMPROVEMENT over the run."""
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
    p_slow = rs.permutation_p(cur, base, rule.min_effect, stop_above=rule.alpha)
    p_fast = rs.permutation_p(base, cur, rule.min_effect, stop_above=rule.alpha)
    return Regression(r.cell_id, Change.SAME, effect, ratio.lo - 1, ratio.hi - 1, p_slow, len(cur), len(base), "", p_fast)


def _finish(g: Regression, verdict: Change, level: float, rule: RegressionRule, cells: int) -> Regression:
    p = g.p_faster if verdict == Change.IMPROVEMENT else g.p_value if verdict == Change.REGRESSION else min(g.p_value, g.p_faster)
    word = {Change.REGRESSION: "slower", Change.IMPROVEMENT: "faster"}.get(verdict, "slower or faster")
    if g.design == PAIRED:
        if verdict == Change.SAME and not g.equivalent:
            verdict = Change.INCONCLUSIVE
        tail = {Change.SAME: f"; SAME: the interval lies within ±{rule.min_effect:.0%}",
                Change.INCONCLUSIVE: f"; INCONCLUSIVE: neither beyond nor within ±{rule.min_effect:.0%}"}.get(verdict, "")
        reason = (f"{g.design_note}; signed-rank p={p:.2g} that it is at most {rule.min_effect:.0%} {word}; "
                  f"{CORRECTION}'s level for it {level:.2g} over {cells} cells{tail}")
    else:
        floor = rs.smallest_p(g.n_current, g.n_baseline)
        note = f"; {g.n_current} vs {g.n_baseline} processes cannot reach p <= {level:.2g}" if floor > level else ""
        design = f"{RUN_AGAINST_RUN}{f' ({g.design_note})' if g.design_note else ''}: "
        reason = (f"{design}median {g.effect:+.1%} [95%: {g.effect_lo:+.1%}, {g.effect_hi:+.1%}]; permutation p={p:.2g} that it is "
                  f"at most {rule.min_effect:.0%} {word} ({g.n_current} vs {g.n_baseline} processes); {CORRECTION}'s level for "
                  f"it {level:.2g} over {cells} cells{note}")
    return dataclasses.replace(g, verdict=verdict, p_value=p, reason=reason, level=level, correction=CORRECTION)


def _levels(p: list[float], alpha: float) -> list[float]:
    """Each p-value's Holm level: alpha / (m - rank), rank its place among the family's p-values."""
    order = sorted(range(len(p)), key=lambda i: (p[i] != p[i], p[i]))
    out = [0.0] * len(p)
    for rank, i in enumerate(order):
        out[i] = rs.holm_level(rank, len(p), alpha)
    return out


def decide(tested: list[Regression], rule: RegressionRule) -> list[Regression]:
    """Holm over the tested cells (either design: Holm holds for any valid p-values), separately for slower and
    faster; other verdicts pass through. A paired row not flagged is SAME only when its interval lies within
    ±min_effect, else INCONCLUSIVE."""
    idx = [i for i, g in enumerate(tested) if g.verdict == Change.SAME]
    m = len(idx)
    p_slow, p_fast = [tested[i].p_value for i in idx], [tested[i].p_faster for i in idx]
    slow, fast = rs.holm(p_slow, rule.alpha), rs.holm(p_fast, rule.alpha)
    lv_slow, lv_fast = _levels(p_slow, rule.alpha), _levels(p_fast, rule.alpha)
    out = list(tested)
    for j, i in enumerate(idx):
        verdict = Change.REGRESSION if slow[j] else Change.IMPROVEMENT if fast[j] else Change.SAME
        level = lv_fast[j] if verdict == Change.IMPROVEMENT else lv_slow[j] if verdict == Change.REGRESSION else min(lv_slow[j], lv_fast[j])
        out[i] = _finish(tested[i], verdict, level, rule, m)
    return out


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
    return decide(out, rule)
