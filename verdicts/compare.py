"""Release against release: ``odbench compare BASE CAND`` (stats/paired.py for the statistics).

Two members on one runtime share each comparison process (the paired design, bench/paired_cell.py), looked at
after 10, 20, 40 and 80 processes until decided. Members that cannot share a process (two runtimes; two
runtime versions) are compared from separate processes instead (the isolated design: Welch's t on the log
per-process medians), and the answer says so. ``isolated`` = N > 0 validates the paired ratio instead: N paired
processes interleaved in time with N isolated processes a side (paired k, then base and cand alone, the side
order alternating), so that both designs see the same load; run one after the other, a load that changed
between the two phases (a job starting beside them) moved the isolated ratio against the paired one (seen:
CTR int8-dyn/fp32 paired 1.070 [1.053, 1.119] from 10 quiet processes, isolated 1.12 [1.07, 1.17] under load
1-5). It reports both effects and the pairing cost (each member's paired median against its isolated median).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from odbench.bench import paired_run
from odbench.bench.stability import neighbour_warnings
from odbench.core.paired import PairedMember, PairedResult, PairedSpec
from odbench.core.records import Feeds, Verdict
from odbench.stats import paired
from odbench.stats.paired import Effect, Sequential


class CompareError(ValueError):
    """Bad input for a comparison (one line; the CLI exits 2)."""


@dataclass(frozen=True)
class Comparison:
    base: PairedMember
    cand: PairedMember
    effect: Effect | None  # None when the comparison could not measure (see ``error``)
    isolated: Effect | None = None  # the isolated design's answer, when run (validation)
    pairing_cost: dict[str, tuple[float, float]] = field(default_factory=dict)  # member -> (paired, isolated) median ms
    paired_result: PairedResult | None = None
    error: str = ""
    wall_s: float = 0.0

    def lines(self) -> list[str]:
        out = [f"base: {self.base.key}", f"cand: {self.cand.key}"]
        if self.effect is None:
            return out + [f"ERROR: {self.error}"]
        e = self.effect
        out.append(f"effect (cand/base time): {e.text()}")
        s, slo, shi = e.speedup
        out.append(f"speedup (base/cand): {s:.3f} [{slo:.3f}, {shi:.3f}]; 95% CI half-width {e.half_width:.1%}; "
                   f"per-process log-ratio sd {e.sd:.3f}; decided at look {e.look} of {e.looks}")
        if e.processes_to_decide:
            out.append(f"INCONCLUSIVE: about {e.processes_to_decide} paired processes would decide it at this spread")
        if self.isolated is not None:
            out.append(f"isolated design: {self.isolated.text()}")
            d, dlo, dhi = design_difference(e, self.isolated)
            out.append(f"paired vs isolated: {'agree' if dlo <= 1 <= dhi else 'DISAGREE'}: paired / isolated ratio {d:.4f} "
                       f"[{dlo:.4f}, {dhi:.4f}] (95%, both intervals' standard errors)")
        for key, (pm, im) in self.pairing_cost.items():
            out.append(f"pairing cost {key}: paired median {pm:.4f} ms vs isolated {im:.4f} ms ({(pm / im - 1) * 100:+.1f}%)")
        out.extend(self.neighbour_lines())
        if self.error:
            out.append(f"stopped early, on what was measured: {self.error}")
        out.append(f"wall time {self.wall_s:.0f} s")
        return out


    def neighbour_lines(self) -> list[str]:
        """Whether other work shared the machine while the paired processes were timed (bench/stability.py)."""
        procs = self.paired_result.processes if self.paired_result is not None else ()
        shares = [p.provenance.get("cpu_share", {}) for p in procs]
        beside = [s for s in shares if neighbour_warnings(s)]
        if not beside:
            return []
        worst = max(s.get("others", 0.0) for s in beside)
        return [f"WARNING: {len(beside)} of {len(procs)} paired processes were timed beside other work (up to {worst:.0%} of "
                "the CPUs): neighbours can move a ratio when they hit its members unequally (docs/measurement.md)"]


def design_difference(paired_effect: Effect, isolated: Effect) -> tuple[float, float, float]:
    """The paired ratio over the isolated one with its 95% interval (stats/paired.design_difference)."""
    return paired.design_difference((paired_effect.ratio, paired_effect.lo, paired_effect.hi),
                                    (isolated.ratio, isolated.lo, isolated.hi))


def spec_for(base: PairedMember, cand: PairedMember, model: str, scenario: str, profile: dict, feeds: Feeds,
             items: int, seed: int = 0, max_time_s: float = 2.0) -> PairedSpec:
    if base.key == cand.key:
        raise CompareError(f"BASE and CAND are the same member ({base.key}): copy the file to compare it with itself")
    return PairedSpec(model=model, scenario=scenario, profile=profile, members=(base, cand), feeds=feeds,
                      items_per_inference=items, seed=seed, max_time_s=max_time_s)


def _geo_median(parts: list[tuple[float, ...]]) -> float:
    return float(np.exp(np.mean([np.log(np.median(p)) for p in parts])))


def _isolated_pair(sides: dict[str, PairedSpec], order: tuple[str, str], k: int) -> dict[str, float]:
    """One single-member process per side, in ``order``; the median of each (ProcessFailed on a fault)."""
    return {key: paired_run.run_paired_process(sides[key], k).median(key) for key in order}


def _sides(spec: PairedSpec) -> dict[str, PairedSpec]:
    return {m.key: dataclasses.replace(spec, members=(m,)) for m in spec.members}


def run_isolated(spec: PairedSpec, processes: int, margin: float = paired.DEFAULT_MARGIN,
                 log: Callable[[str], None] = print) -> tuple[Effect | None, dict, str]:
    """``processes`` single-member processes a side, alternating base and cand; (effect, medians, error)."""
    base, cand = spec.members
    sides = _sides(spec)
    medians: dict[str, list[float]] = {base.key: [], cand.key: []}
    for k in range(1, processes + 1):
        try:
            for key, m in _isolated_pair(sides, (base.key, cand.key) if k % 2 else (cand.key, base.key), k).items():
                medians[key].append(m)
        except paired_run.ProcessFailed as exc:
            return None, medians, str(exc)
        log(f"[isolated] {k}/{processes} a side")
    return paired.decide_isolated(medians[base.key], medians[cand.key], margin), medians, ""


def validate(spec: PairedSpec, processes: int, margin: float = paired.DEFAULT_MARGIN,
             log: Callable[[str], None] = print, started: float | None = None) -> Comparison:
    """The paired design against the isolated one, interleaved in time (see the module doc): ``processes`` paired
    processes, each followed by one isolated process a side; both effects from all of them, one look."""
    t0 = time.perf_counter() if started is None else started
    base, cand = spec.members
    sides, parts, medians = _sides(spec), [], {base.key: [], cand.key: []}
    error = ""
    for k in range(1, processes + 1):
        try:
            part = paired_run.run_paired_process(spec, k)
            alone = _isolated_pair(sides, (base.key, cand.key) if k % 2 else (cand.key, base.key), k)
        except paired_run.ProcessFailed as exc:
            error = str(exc)
            break
        parts.append(part)
        for key, m in alone.items():
            medians[key].append(m)
        log(f"[validate] {k}/{processes}: paired ratio {part.median(cand.key) / part.median(base.key):.4f}, "
            f"isolated {alone[cand.key] / alone[base.key]:.4f}")
    result = PairedResult(spec, Verdict.ERROR if error else Verdict.OK, error, tuple(parts))
    if len(parts) < paired.MIN_PROCESSES:
        return Comparison(base, cand, None, paired_result=result, error=error or "too few processes",
                          wall_s=time.perf_counter() - t0)
    try:
        effect = paired.decide([paired.log_ratio(p.samples_ms[base.key], p.samples_ms[cand.key]) for p in parts], margin)
        iso = paired.decide_isolated(medians[base.key], medians[cand.key], margin)
    except ValueError as exc:  # a non-finite ratio: the comparison cannot be judged, and says why
        return Comparison(base, cand, None, paired_result=result, error=str(exc), wall_s=time.perf_counter() - t0)
    cost = {m.key: (_geo_median(result.samples(m.key)), float(np.exp(np.mean(np.log(medians[m.key])))))
            for m in spec.members}
    return Comparison(base, cand, effect, iso, cost, result, error=error, wall_s=time.perf_counter() - t0)


def compare(spec: PairedSpec, design: Sequential = Sequential(), isolated: int = 0,
            log: Callable[[str], None] = print) -> Comparison:
    """The paired design when both members can share a process, else the isolated one; ``isolated`` > 0 on one
    runtime validates the paired design against the isolated one, interleaved (``validate``)."""
    t0 = time.perf_counter()
    base, cand = spec.members
    if base.runtime != cand.runtime:  # two runtimes in one process interfere (docs/paired.md): isolated
        n = isolated or design.schedule[-1] // 2
        effect, _, error = run_isolated(spec, n, design.margin, log)
        return Comparison(base, cand, effect, error=error, wall_s=time.perf_counter() - t0)
    if isolated:
        return validate(spec, isolated, design.margin, log, started=t0)

    def progress(p) -> None:
        log(f"[paired] process {p.index}: {p.rounds} rounds, ratio {p.median(cand.key) / p.median(base.key):.4f}")

    effect, result = paired_run.compare(spec, base.key, cand.key, design, on_process=progress)
    if effect is None:
        return Comparison(base, cand, None, paired_result=result, error=f"{result.verdict}: {result.reason}",
                          wall_s=time.perf_counter() - t0)
    return Comparison(base, cand, effect, paired_result=result, wall_s=time.perf_counter() - t0)


def exit_code(c: Comparison) -> int:
    """0 SAME or FASTER, 1 SLOWER, 3 INCONCLUSIVE, 4 the comparison could not measure."""
    if c.effect is None:
        return 4
    return {paired.PairedVerdict.SLOWER: 1, paired.PairedVerdict.INCONCLUSIVE: 3}.get(c.effect.verdict, 0)


def save(run_dir: Path, c: Comparison) -> Path | None:
    return paired_run.save(run_dir, c.paired_result) if c.paired_result is not None else None



def to_dict(c: Comparison) -> dict:
    """What `odbench compare --out` writes as comparison.json."""

    def eff(e: Effect | None) -> dict | None:
        if e is None:
            return None
        return {"ratio": e.ratio, "lo": e.lo, "hi": e.hi, "verdict": str(e.verdict), "design": str(e.design), "k": e.k,
                "sd": e.sd, "margin": e.margin, "look": e.look, "looks": e.looks, "half_width": e.half_width,
                "processes_to_decide": e.processes_to_decide}

    return {"base": c.base.key, "cand": c.cand.key, "effect": eff(c.effect), "isolated": eff(c.isolated),
            "pairing_cost_ms": {k: list(v) for k, v in c.pairing_cost.items()}, "error": c.error, "wall_s": round(c.wall_s, 1)}
