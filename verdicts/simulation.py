"""Seeded simulations of the gate and the regression check, run through the functions ``odbench gate``
calls: ``gate.judge_percentile`` at ``gate.look_confidence`` (with ``gate.processes_to_add`` sizing
each further look, as ``--decide`` does) and ``regression.compare`` on fabricated Results. They are the
evidence that the verdicts keep the error rates they state (tests/verdicts/test_simulation.py asserts
them; ``odbench simulate`` or ``python -m odbench.verdicts.simulation`` prints the table of
docs/statistics.md).

Latency model, one ``Population`` per row: each fresh process falls into a group (share, slowdown,
spike probability), draws a multiplicative offset (log-normal or t with 3 df on the log scale,
of the given between-process CV), and its samples are log-normal within the process (sd 8%, or the
0.15-0.22 measured here), optionally AR(1)-correlated, with a tail of spikes 1.5-3x slower. The true
population percentile is computed by numerical integration, so a budget can sit exactly on it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import optimize
from scipy import stats as sps
from scipy.signal import lfilter

from odbench.core.records import ProcessSamples, Result
from odbench.verdicts import gate, regression

WITHIN_SD = 0.08
MEASURED_SD = 0.18  # the within-process log sd measured on this suite's cells: 0.15-0.22
SPIKE_P = 0.02
SPIKE = (1.5, 3.0)
CONFIDENCE = 0.99
MAX_PROCESSES = 128  # --decide's cap on processes per cell in these simulations


@dataclass(frozen=True)
class Population:
    """How fresh processes' latencies are drawn (module docstring)."""

    name: str
    groups: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, SPIKE_P),)  # (share, slowdown, spike probability)
    cv: float = 0.0  # between-process CV of the offsets within a group
    offsets: str = "lognormal"  # or "t3": log offsets t-distributed with 3 df, same sd
    within_sd: float = WITHIN_SD
    ar: float = 0.0  # AR(1) coefficient of log latency within a process

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv**2))

    def draw(self, rng: np.random.Generator, k: int, n: int, scale: float = 1.0) -> list[np.ndarray]:
        """k processes of n samples each."""
        shares = np.array([g[0] for g in self.groups])
        which = rng.choice(len(self.groups), size=k, p=shares / shares.sum())
        if self.offsets == "t3":
            logoff = self.sigma / math.sqrt(3) * rng.standard_t(3, k)
        else:
            logoff = rng.normal(0.0, self.sigma, k) if self.sigma > 0 else np.zeros(k)
        eps = rng.normal(0.0, self.within_sd * math.sqrt(1 - self.ar**2), (k, n))
        if self.ar:
            start = rng.normal(0.0, self.within_sd, k) * self.ar  # a stationary start
            eps = lfilter([1.0], [1.0, -self.ar], eps, axis=1, zi=start[:, None])[0]
        x = np.exp(eps + logoff[:, None]) * scale
        out = []
        for i in range(k):
            _, slow, spike = self.groups[which[i]]
            row = x[i] * slow
            hit = rng.random(n) < spike
            row[hit] *= rng.uniform(*SPIKE, int(hit.sum()))
            out.append(row)
        return out

    def _offset_points(self) -> np.ndarray:
        u = (np.arange(400) + 0.5) / 400
        if self.sigma == 0:
            return np.zeros(1)
        if self.offsets == "t3":
            return self.sigma / math.sqrt(3) * sps.t.ppf(u, 3)
        return self.sigma * sps.norm.ppf(u)

    def exceedance(self, b: float) -> float:
        """The population's fraction of queries over b (processes drawn afresh)."""
        spikes = np.linspace(*SPIKE, 31)
        off = np.exp(self._offset_points())
        total = 0.0
        for share, slow, spike in self.groups:
            y = b / (slow * off)
            base = sps.norm.sf(np.log(y) / self.within_sd)
            tail = sps.norm.sf(np.log(y[:, None] / spikes) / self.within_sd).mean(-1)
            total += share * float(((1 - spike) * base + spike * tail).mean())
        return total / sum(g[0] for g in self.groups)

    def percentile(self, q: float) -> float:
        return _percentile(self, q)


@lru_cache(maxsize=256)
def _percentile(pop: Population, q: float) -> float:
    return optimize.brentq(lambda b: pop.exceedance(b) - (1 - q / 100), 0.2, 50.0, xtol=1e-7)


@dataclass(frozen=True)
class Rate:
    hits: int
    trials: int

    @property
    def value(self) -> float:
        return self.hits / self.trials if self.trials else math.nan

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval."""
        ci = sps.binomtest(self.hits, self.trials).proportion_ci(level, method="exact")
        return float(ci.low), float(ci.high)

    def se(self, p: float | None = None) -> float:
        p = self.value if p is None else p
        return math.sqrt(p * (1 - p) / self.trials)

    def __str__(self) -> str:
        lo, hi = self.interval()
        return f"{self.value:.2%} [{lo:.2%}, {hi:.2%}]"


@dataclass(frozen=True)
class GateRow:
    population: str
    design: str
    q: int
    looks: int
    false_pass: Rate  # budget exactly at the true percentile: PASS at any look
    false_fail: Rate  # the same runs: FAIL at any look
    decided: Rate  # PASS with the budget 20% above it plus FAIL with it 20% below
    processes: float  # mean processes at the end (looks > 1 add some)


def _judge(pop: Population, rng: np.random.Generator, q: int, k: int, n: int, budget: float, looks: int) -> tuple[str, int]:
    """One cell through up to ``looks`` looks, each batch sized by the gate's own hint; (verdict, processes)."""
    procs = pop.draw(rng, k, n)
    for look in range(1, looks + 1):
        c = gate.look_confidence(CONFIDENCE, look)
        j = gate.judge_percentile(procs, q, budget, c)
        if j.verdict != gate.GateVerdict.INCONCLUSIVE or look == looks:
            return str(j.verdict), len(procs)
        add = min(gate.processes_to_add(j, q, budget, CONFIDENCE, look), MAX_PROCESSES - len(procs))
        if add <= 0:
            return str(j.verdict), len(procs)
        procs = procs + pop.draw(rng, add, n)
    return str(gate.GateVerdict.INCONCLUSIVE), len(procs)


def gate_rates(pop: Population, q: int, k: int, n: int, trials: int, seed: int = 0, looks: int = 1) -> GateRow:
    rng = np.random.default_rng(seed)
    truth = pop.percentile(q)
    at = [_judge(pop, rng, q, k, n, truth, looks) for _ in range(trials)]
    m = max(1, trials // 4)
    passes = sum(_judge(pop, rng, q, k, n, truth * 1.2, looks)[0] == "PASS" for _ in range(m))
    fails = sum(_judge(pop, rng, q, k, n, truth / 1.2, looks)[0] == "FAIL" for _ in range(m))
    return GateRow(pop.name, f"{k}x{n}", q, looks, Rate(sum(v == "PASS" for v, _ in at), trials),
                   Rate(sum(v == "FAIL" for v, _ in at), trials), Rate(passes + fails, 2 * m), float(np.mean([p for _, p in at])))


def _result(cell: int, procs: list[np.ndarray]) -> Result:
    return Result(cell_id=f"sim.{cell}", model="sim", variant_id="sim/fp32", runtime="sim", profile="host", measured_on="sim",
                  scenario="sim", verdict="OK", gating=True, provenance={"runtime_version": "sim", "model_sha256": "sim"},
                  processes=tuple(ProcessSamples(tuple(p.tolist())) for p in procs))


@dataclass(frozen=True)
class RegressionRow:
    population: str
    design: str  # current x baseline processes, samples each
    cells: int
    slowdown: float
    flagged: Rate  # slowdown 0: runs with any REGRESSION; else runs where the slowed cell is a REGRESSION


def regression_rates(pop: Population, k_current: int, k_baseline: int, n: int, trials: int, slowdown: float = 0.0, cells: int = 1,
                     seed: int = 0, rule: regression.RegressionRule = regression.RegressionRule()) -> RegressionRow:
    """Through ``regression.compare``: ``cells`` cells, the first ``slowdown`` slower in the current run."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        base = [_result(c, pop.draw(rng, k_baseline, n)) for c in range(cells)]
        cur = [_result(c, pop.draw(rng, k_current, n, 1 + slowdown if c == 0 else 1.0)) for c in range(cells)]
        flagged = [g.verdict == regression.Change.REGRESSION for g in regression.compare(cur, base, rule)]
        hits += flagged[0] if slowdown else any(flagged)
    return RegressionRow(pop.name, f"{k_current}v{k_baseline}x{n}", cells, slowdown, Rate(hits, trials))


# ---------------------------------------------------------------- the rows of docs/statistics.md

MODEL = Population("log-normal offsets, CV 10%", cv=0.10)
MEASURED = Population("CV 10%, within sd 0.18, AR(1) 0.5", cv=0.10, within_sd=MEASURED_SD, ar=0.5)
ISSUE_ROWS = (  # issue 19's populations
    Population("bimodal 70/30 x1.3", groups=((0.7, 1.0, SPIKE_P), (0.3, 1.3, SPIKE_P))),
    Population("90/10 x1.5", groups=((0.9, 1.0, SPIKE_P), (0.1, 1.5, SPIKE_P))),
    Population("t3 offsets, CV 10%", cv=0.10, offsets="t3"),
    Population("20% of processes spike 10%", groups=((0.8, 1.0, SPIKE_P), (0.2, 1.0, 0.10))),
)
DESIGNS = ((5, 200), (10, 200), (3, 400), (64, 200))


@dataclass
class Table:
    gate: list[GateRow] = field(default_factory=list)
    regression: list[RegressionRow] = field(default_factory=list)
    on_row: Callable | None = None

    def add(self, row: GateRow | RegressionRow) -> None:
        (self.gate if isinstance(row, GateRow) else self.regression).append(row)
        if self.on_row:
            self.on_row(row)


def table(trials: int = 2000, regression_trials: int = 2000, seed: int = 0, on_row: Callable | None = None) -> Table:
    """Every row of docs/statistics.md (hours on one core at the default trial counts; a count of 0 skips
    that part). ``on_row`` is called with each row as it is done."""
    out = Table(on_row=on_row)
    for i, pop in enumerate((*ISSUE_ROWS, MODEL, MEASURED) if trials else ()):
        for k, n in DESIGNS:
            for q in (95, 99):
                out.add(gate_rates(pop, q, k, n, trials, seed=seed + 10 * i + q))
        out.add(gate_rates(pop, 95, 10, 200, max(1, trials // 4), seed=seed + 10 * i + 7, looks=3))
    for i, pop in enumerate((MODEL, MEASURED, ISSUE_ROWS[0], ISSUE_ROWS[2]) if regression_trials else ()):
        for kc, kb in ((10, 10), (10, 3), (10, 2), (3, 10), (5, 5)):
            out.add(regression_rates(pop, kc, kb, 200, regression_trials, seed=seed + 100 * i + kc + kb))
        out.add(regression_rates(pop, 10, 10, 200, max(1, regression_trials // 4), cells=20, seed=seed + 100 * i + 50))
        out.add(regression_rates(pop, 10, 10, 200, max(1, regression_trials // 4), 0.20, seed=seed + 100 * i + 60))
        out.add(regression_rates(pop, 10, 10, 200, max(1, regression_trials // 4), 0.20, cells=20, seed=seed + 100 * i + 70))
        out.add(regression_rates(pop, 10, 10, 200, max(1, regression_trials // 4), 0.08, seed=seed + 100 * i + 80))
    return out


def to_markdown(t: Table) -> str:
    lines = [f"Gate at {CONFIDENCE:.0%} (look j at 1 - 1%/2^j); budget at the true percentile (false PASS, false FAIL) or 20% "
             "above/below it (decided); 95% Clopper-Pearson intervals.", "",
             "| population | processes x samples | looks | percentile | false PASS | false FAIL | decided at ±20% | processes at the end |",
             "|---|---|---|---|---|---|---|---|"]
    for r in t.gate:
        lines.append(f"| {r.population} | {r.design} | {r.looks} | p{r.q} | {r.false_pass} | {r.false_fail} | {r.decided} "
                     f"| {r.processes:.0f} |")
    lines += ["", "Regression check 10%:0.01 (permutation test, effect on the bound, Holm over the cells).", "",
              "| population | current v baseline x samples | cells | true slowdown | flagged REGRESSION |", "|---|---|---|---|---|"]
    for r in t.regression:
        what = "any cell (false)" if not r.slowdown else "the slowed cell"
        lines.append(f"| {r.population} | {r.design} | {r.cells} | {r.slowdown:.0%} | {r.flagged} ({what}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(to_markdown(table()))
