"""Seeded simulations of the gate and the regression check: the evidence that their verdicts keep
the error rates they state (tests/bench/test_simulation.py asserts them; ``python -m odbench.verdicts.simulation``
prints the table the README quotes).

Latency model: each fresh process draws a multiplicative offset, lognormal with the given
between-process CV; within a process, samples are lognormal (sd 8% of log) with a 2% tail of
spikes 1.5-3x slower -- the shape of the CTR and encoder cells measured here. The true population
percentile is computed by numerical integration, so a budget can sit exactly on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize
from scipy import stats as sps

from odbench.verdicts import gate

from odbench.stats import intervals
from odbench.core.records import TIMING_PRESETS

WITHIN_SD = 0.08
SPIKE_P = 0.02
SPIKE = (1.5, 3.0)


def _within_sf(y: np.ndarray) -> np.ndarray:
    u = np.linspace(*SPIKE, 61)
    base = sps.norm.sf(np.log(y) / WITHIN_SD)
    spikes = sps.norm.sf(np.log(y[..., None] / u) / WITHIN_SD).mean(-1)
    return (1 - SPIKE_P) * base + SPIKE_P * spikes


def _sigma(cv: float) -> float:
    return math.sqrt(math.log1p(cv**2))


@lru_cache(maxsize=64)
def true_percentile(q: float, cv: float) -> float:
    """The population's q-th percentile (processes drawn afresh) for a between-process ``cv``."""
    z = np.linspace(-6, 6, 241)
    w = sps.norm.pdf(z) / sps.norm.pdf(z).sum()
    sb = _sigma(cv)
    sf = lambda b: float((_within_sf(b / np.exp(sb * z)) * w).sum())  # noqa: E731
    return optimize.brentq(lambda b: sf(b) - (1 - q / 100), 0.5, 20.0)


def draw(rng: np.random.Generator, k: int, n: int, cv: float, scale: float = 1.0) -> list[np.ndarray]:
    """k processes of n samples each."""
    out = []
    for _ in range(k):
        x = np.exp(rng.normal(0, WITHIN_SD, n))
        spikes = rng.random(n) < SPIKE_P
        x[spikes] *= rng.uniform(*SPIKE, spikes.sum())
        out.append(x * scale * math.exp(rng.normal(0, _sigma(cv))))
    return out


@dataclass(frozen=True)
class Rates:
    cv: float
    q: int
    false_pass: float  # budget exactly at the true percentile
    decided_20: float  # PASS with the budget 20% above it, or FAIL with it 20% below (mean of both)
    runs: int


def gate_rates(cv: float, q: int, k: int, n: int, runs: int, seed: int = 0, confidence: float = 0.99) -> Rates:
    rng = np.random.default_rng(seed)
    c = gate.look_confidence(confidence, 1)
    budget = true_percentile(q, cv)
    verdict = lambda procs, b: gate.judge_percentile(procs, q, b, c).verdict  # noqa: E731
    false_pass = sum(verdict(draw(rng, k, n, cv), budget) == gate.GateVerdict.PASS for _ in range(runs))
    m = max(1, runs // 4)
    passes = sum(verdict(draw(rng, k, n, cv), budget * 1.2) == gate.GateVerdict.PASS for _ in range(m))
    fails = sum(verdict(draw(rng, k, n, cv), budget / 1.2) == gate.GateVerdict.FAIL for _ in range(m))
    return Rates(cv, q, false_pass / runs, (passes + fails) / (2 * m), runs)


def regression_rates(cv: float, k: int, n: int, runs: int, slowdown: float = 0.0, seed: int = 0,
                     rule: gate.RegressionRule = gate.RegressionRule()) -> float:
    """Fraction of runs flagged REGRESSION when the current build is ``slowdown`` slower."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(runs):
        base = [float(np.median(p)) for p in draw(rng, k, n, cv)]
        cur = [float(np.median(p)) for p in draw(rng, k, n, cv, 1 + slowdown)]
        ratio = intervals.ratio_interval(cur, base)
        flagged += ratio.ratio - 1 >= rule.min_effect and ratio.p_greater < rule.alpha
    return flagged / runs


def main() -> None:  # pragma: no cover - prints the README's table

    for preset in ("default", "gate"):
        k = TIMING_PRESETS[preset].processes
        n = TIMING_PRESETS[preset].min_samples
        print(f"\n{preset}: {k} processes x {n} samples; gate at 99% (first look 99.5%), regression rule 10%:0.01")
        print("| between-process CV | false PASS p95 | false PASS p99 | decided at ±20% (p95) | false REGRESSION | power, 20% slower |")
        print("|---|---|---|---|---|---|")
        for cv in (0.0, 0.03, 0.10, 0.20):
            r95, r99 = gate_rates(cv, 95, k, n, 2000), gate_rates(cv, 99, k, n, 2000, seed=1)
            fr = regression_rates(cv, k, n, 2000)
            pw = regression_rates(cv, k, n, 2000, slowdown=0.2, seed=2)
            print(f"| {cv:.0%} | {r95.false_pass:.2%} | {r99.false_pass:.2%} | {r95.decided_20:.0%} | {fr:.2%} | {pw:.0%} |")


if __name__ == "__main__":  # pragma: no cover
    main()
