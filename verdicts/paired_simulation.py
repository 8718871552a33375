"""Seeded simulation of the paired design, calling the real decision code (stats/paired.py).

    .venv/bin/python -m odbench.verdicts.paired_simulation [--trials 2000] [--gate]

Model of one comparison process i (members A = base, B = candidate), log latency of sample j:

    log t = mu + delta * [B] + b_i + u_{i,m} + e_{i,m,j}

* ``b_i``: the process's placement, shared by both members, log-normal with the between-process CV;
* ``u_{i,m}``: what differs between the members from one process to the next (cache and core sharing),
  sized so that the sd of the per-process log ratio of medians is ``ratio_sd`` in total;
* ``e``: within-process samples, log-normal sd ``within_sd`` with 2% spikes 1.5-3x slower.

Each process's samples go through ``paired.log_ratio`` and the looks through ``paired.sequential`` with
the design ``odbench compare`` uses (``DEFAULT_DESIGN``). Rates: SLOWER at a true 5% slowdown (power),
false SLOWER / false FASTER / SAME with identical members, SAME at the 3% margin (false SAME).
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from odbench.stats import paired
from odbench.stats.paired import PairedVerdict, Sequential
from odbench.verdicts import regression_paired
from odbench.verdicts.regression import Change, RegressionRule, decide

DEFAULT_DESIGN = Sequential()
SAMPLES = 200  # per member per process (the default paired cell takes several hundred)
WITHIN_SD = 0.15
SPIKE_P = 0.02


@dataclass(frozen=True)
class Row:
    ratio_sd: float
    between_cv: float
    effect: float  # true candidate / base time ratio - 1

    def label(self) -> str:
        return f"sd {self.ratio_sd:.2f}, CV {self.between_cv:.0%}, effect {self.effect:+.0%}"


def _noise_sd(rng: np.random.Generator) -> float:
    """sd of one member's log median from the within-process samples alone (measured once, seeded)."""
    e = _within(rng, (4000, SAMPLES))
    return float(np.median(e, axis=-1).std())


def _within(rng: np.random.Generator, shape) -> np.ndarray:
    e = rng.normal(0.0, WITHIN_SD, shape)
    spikes = rng.random(shape) < SPIKE_P
    return e + spikes * np.log(rng.uniform(1.5, 3.0, shape))


def simulate(row: Row, trials: int, design: Sequential = DEFAULT_DESIGN, seed: int = 0) -> dict[str, float]:
    """Rates of each verdict over ``trials`` seeded comparisons, and the mean number of processes used."""
    rng = np.random.default_rng(seed)
    noise = _noise_sd(np.random.default_rng(seed + 1))
    tau = math.sqrt(max(row.ratio_sd**2 - 2 * noise**2, 0.0) / 2)
    sigma_b = math.sqrt(math.log1p(row.between_cv**2))
    delta = math.log1p(row.effect)

    def draw(n: int) -> np.ndarray:
        b = rng.normal(0.0, sigma_b, (n, 1, 1))
        u = rng.normal(0.0, tau, (n, 2, 1))
        logs = b + u + _within(rng, (n, 2, SAMPLES))
        logs[:, 1, :] += delta
        t = np.exp(logs)
        return paired.log_ratio(t[:, 0, :], t[:, 1, :])

    counts = {v: 0 for v in PairedVerdict}
    used = 0
    for _ in range(trials):
        effect, ratios = paired.sequential(design, draw)
        counts[effect.verdict] += 1
        used += len(ratios)
    out = {str(v).lower(): counts[v] / trials for v in PairedVerdict}
    out["processes"] = used / trials
    return out


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


ROWS = tuple(Row(sd, cv, eff) for sd in (0.02, 0.04, 0.06, 0.18) for cv in (0.0, 0.25) for eff in (0.0, 0.05, 0.03))


def table(trials: int, rows=ROWS, design: Sequential = DEFAULT_DESIGN) -> str:
    lines = [f"Design: looks at {design.schedule} processes, margin ±{design.margin:.0%}, false SLOWER <= {design.alpha:.0%} "
             f"and false SAME <= {design.alpha_same:.0%} over the looks (Bonferroni); {SAMPLES} samples per member per process; "
             f"{trials} trials per row (binomial se at 1%: {binomial_se(0.01, trials):.2%}).", "",
             "| per-process log-ratio sd | between-process CV | true effect | SLOWER | SAME | FASTER | INCONCLUSIVE | mean processes |",
             "|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(rows):
        r = simulate(row, trials, design, seed=i)
        lines.append(f"| {row.ratio_sd:.2f} | {row.between_cv:.0%} | {row.effect:+.0%} | {r['slower']:.2%} | {r['same']:.2%} | "
                     f"{r['faster']:.2%} | {r['inconclusive']:.2%} | {r['processes']:.1f} |")
    return "\n".join(lines)


# ------------------------------------------------------------- the gate's paired regression check, over cells

GATE_CELLS = 10


def gate_rates(ratio_sd: float, effects: Sequence[float], rule: RegressionRule, trials: int,
               schedule: Sequence[int] = regression_paired.DEFAULT_LOOKS, seed: int = 0) -> dict[str, float]:
    """The gate's decision path (regression_paired.sequential_cell -> paired_row -> regression.decide, Holm over the
    cells) on synthetic per-process log ratios, normal about log(1 + effect) with sd ``ratio_sd``, one cell per
    entry of ``effects``. Returns the family-wise rate of any false REGRESSION (a cell flagged whose true slowdown
    is at most the rule's effect), of any false IMPROVEMENT, the per-cell REGRESSION rate of the cells truly beyond
    the rule (power), the SAME and INCONCLUSIVE rates of the cells truly at 0, and the mean processes per cell."""
    rng = np.random.default_rng(seed)
    null = [e <= rule.min_effect for e in effects]
    beyond = [e > rule.min_effect for e in effects]
    false_slow = false_fast = 0
    hits = same = inconclusive = used = 0
    for _ in range(trials):
        rows = []
        for i, e in enumerate(effects):
            mu = math.log1p(e)
            cell = regression_paired.sequential_cell(lambda n, mu=mu: rng.normal(mu, ratio_sd, n), schedule, rule, len(effects))
            used += len(cell.ratios)
            rows.append(regression_paired.paired_row(f"cell{i}", cell, "", rule, len(effects)))
        out = decide(rows, rule)
        false_slow += any(g.verdict == Change.REGRESSION and null[i] for i, g in enumerate(out))
        false_fast += any(g.verdict == Change.IMPROVEMENT and effects[i] >= -rule.min_effect for i, g in enumerate(out))
        hits += sum(g.verdict == Change.REGRESSION and beyond[i] for i, g in enumerate(out))
        same += sum(g.verdict == Change.SAME and effects[i] == 0 for i, g in enumerate(out))
        inconclusive += sum(g.verdict == Change.INCONCLUSIVE and effects[i] == 0 for i, g in enumerate(out))
    zero, slow = sum(e == 0 for e in effects), sum(beyond)
    return {"false_regression": false_slow / trials, "false_improvement": false_fast / trials,
            "power": hits / (trials * slow) if slow else math.nan, "same": same / (trials * zero) if zero else math.nan,
            "inconclusive": inconclusive / (trials * zero) if zero else math.nan,
            "processes": used / (trials * len(effects))}


GATE_ROWS = (  # (label, effects of the GATE_CELLS cells, rule)
    ("all at the rule's +10% (worst case)", (0.10,) * GATE_CELLS, "10%:0.01"),
    ("all identical", (0.0,) * GATE_CELLS, "10%:0.01"),
    ("one +10%, nine identical", (0.10,) + (0.0,) * (GATE_CELLS - 1), "10%:0.01"),
    ("one +10%, nine identical", (0.10,) + (0.0,) * (GATE_CELLS - 1), "5%:0.01"),
    ("one +10%, nine identical", (0.10,) + (0.0,) * (GATE_CELLS - 1), "3%:0.01"),
    ("one +10%, nine identical", (0.10,) + (0.0,) * (GATE_CELLS - 1), "0%:0.01"),
    ("one +20%, nine identical", (0.20,) + (0.0,) * (GATE_CELLS - 1), "10%:0.01"),
)


def gate_table(trials: int, sds: Sequence[float] = (0.02, 0.04, 0.06)) -> str:
    lines = [f"The gate's paired regression check: {GATE_CELLS} cells, looks at {regression_paired.DEFAULT_LOOKS} processes, "
             f"Holm over the cells, {trials} trials per row (binomial se at 1%: {binomial_se(0.01, trials):.2%}).", "",
             "| cells | rule | per-process log-ratio sd | any false REGRESSION | any false IMPROVEMENT | power (cells beyond the rule) "
             "| SAME (identical cells) | INCONCLUSIVE (identical cells) | mean processes per cell |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, (label, effects, rule_text) in enumerate(GATE_ROWS):
        for j, sd in enumerate(sds):
            r = gate_rates(sd, effects, RegressionRule.parse(rule_text), trials, seed=100 * i + j)
            cells = " | ".join("–" if math.isnan(r[k]) else f"{r[k]:.2%}" for k in ("power", "same", "inconclusive"))
            lines.append(f"| {label} | {rule_text} | {sd:.2f} | {r['false_regression']:.2%} | {r['false_improvement']:.2%} | "
                         f"{cells} | {r['processes']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--gate", action="store_true", help="the gate's paired regression check over cells instead (Holm)")
    args = ap.parse_args()
    print(gate_table(args.trials) if args.gate else table(args.trials))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
