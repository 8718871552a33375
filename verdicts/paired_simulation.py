"""Seeded simulation of the paired design, calling the real decision code (stats/paired.py).

    .venv/bin/python -m odbench.verdicts.paired_simulation [--trials 2000]

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

import numpy as np

from odbench.stats import paired
from odbench.stats.paired import PairedVerdict, Sequential

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    args = ap.parse_args()
    print(table(args.trials))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
