"""The gate's regression check from the paired design (issue 25, item 4), with run-against-run as the fallback.

For each cell of the run that has a baseline cell (the same cell id: model and variant, runtime and options,
profile, scenario), the baseline's model file and the run's are timed inside the same fresh processes, taking
turns round by round (bench/paired_cell.py), when both files are still on disk with the sha256 their results
carry, both runs used the runtime version installed here, and this is the machine the runs were measured on.
Each process gives one log ratio (candidate / baseline median); the looks (default 8 then 16 processes) stop
once the cell is decided. Otherwise the row keeps the run-against-run check (verdicts/regression.py) and says
why: two runtime versions cannot share a process, a missing or changed file cannot be timed again.

The statistics (``sequential_cell``, pure, fed synthetic ratios by the simulation test): at each look the signed-rank
p-value of "at most ``min_effect`` slower" (stats/paired.shifted_p) and its mirror for faster; a cell's p-value is
``looks * min`` over the looks it took (Bonferroni over the planned looks, valid whatever the stopping), and Holm's
step-down over every tested cell of the run, either design, keeps the chance of any false REGRESSION <= alpha
(regression.decide). A paired cell not flagged is SAME when its interval (two one-sided tests at 5% over the looks)
lies within ±min_effect, else INCONCLUSIVE: the equivalence margin is the regression rule's own effect.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from odbench.bench import paired_run, provenance
from odbench.bench.paired_plan import PAIRED_TIMING
from odbench.bench.run_folder import RunFolder
from odbench.core.paired import PairedMember, PairedProcess, PairedResult, PairedSpec
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, CellSpec, Result, Verdict, sha256_file
from odbench.runtimes import get_runtime
from odbench.stats import paired
from odbench.stats.paired import Effect, PairedVerdict
from odbench.verdicts.regression import (
    PAIRED,
    RUN_AGAINST_RUN,
    BaselineRefused,
    Change,
    Regression,
    RegressionRule,
    check_same_machine,
    compare_cell,
    decide,
)

DEFAULT_LOOKS = (8, 16)  # cumulative paired processes per cell: 16 processes of ~3-4 s each at most
GROUP_FOLDER = "gate-paired"  # under the gate's output folder: every paired group it ran, samples included


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class PairedCell:
    """One cell's sequential paired comparison, before Holm over the run's cells."""

    ratios: tuple[float, ...]  # per-process log(candidate median / baseline median)
    effect: Effect  # stats/paired.decide at the last look taken, margin = the rule's effect (its SAME is used)
    p_slower: float  # p of "at most min_effect slower", Bonferroni over the planned looks
    p_faster: float
    looks_taken: int
    looks: int


def sequential_cell(draw: Callable[[int], Sequence[float]], schedule: Sequence[int], rule: RegressionRule,
                    cells: int) -> PairedCell:
    """Looks at the cumulative process counts of ``schedule``; ``draw(n)`` returns n more log ratios. Stops at the
    first look where the cell is SAME within ±min_effect, or its p-value is under Holm's smallest level
    (alpha / cells: flagged whatever the other cells give). The stopping never inflates the error rate: each
    p-value is Bonferroni-adjusted over every planned look, taken or not."""
    looks = len(schedule)
    ratios: list[float] = []
    p_slow, p_fast = math.inf, math.inf
    sure = rule.alpha / max(1, cells)
    effect, j = None, 0
    for j, n in enumerate(schedule, 1):
        ratios += [float(v) for v in draw(n - len(ratios))]
        p_slow = min(p_slow, paired.shifted_p(ratios, rule.min_effect))
        p_fast = min(p_fast, paired.shifted_p([-v for v in ratios], rule.min_effect))
        effect = paired.decide(ratios, rule.min_effect, j, looks)
        if effect.verdict == PairedVerdict.SAME or min(p_slow, p_fast) * looks <= sure:
            break
    assert effect is not None
    return PairedCell(tuple(ratios), effect, min(1.0, looks * p_slow), min(1.0, looks * p_fast), j, looks)


def fewest_processes(looks: int, level: float) -> int:
    """The fewest processes whose smallest signed-rank p-value (all ratios on one side: 1 / 2**k), Bonferroni over
    ``looks``, reaches ``level``."""
    return max(paired.MIN_PROCESSES, math.ceil(math.log2(looks / level)))


def paired_row(cell_id: str, c: PairedCell, group: str = "", rule: RegressionRule = RegressionRule(), cells: int = 1) -> Regression:
    """The row regression.decide finishes (Holm): verdict SAME marks it as tested."""
    e = c.effect
    need = fewest_processes(c.looks, rule.alpha / max(1, cells))
    more = (f"; {e.k} processes cannot reach Holm's smallest level {rule.alpha / max(1, cells):.2g} over the looks: "
            f"at least {need} can (--paired-looks)" if e.k < need and e.verdict != PairedVerdict.SAME else "")
    ci = (f"[95%: {(e.lo - 1) * 100:+.1f}%, {(e.hi - 1) * 100:+.1f}%]" if math.isfinite(e.lo) and math.isfinite(e.hi)
          else "[no 95% interval: the signed-rank interval needs more processes]")
    note = (f"paired design ({e.k} processes, both models in each, look {c.looks_taken} of {c.looks}): "
            f"candidate/baseline {e.percent:+.1f}% {ci}, per-process log-ratio sd {e.sd:.3f}{more}")
    return Regression(cell_id, Change.SAME, e.ratio - 1, e.lo - 1, e.hi - 1, c.p_slower, e.k, e.k, "", c.p_faster,
                      design=PAIRED, design_note=note, equivalent=e.verdict == PairedVerdict.SAME, paired_group=group)


def installed_version(runtime: str) -> tuple[str | None, str]:
    """(version, '') of the runtime this process would load, or (None, why not)."""
    try:
        rt = get_runtime(runtime)
        ok, why = rt.available()
        return (rt.version(), "") if ok else (None, why)
    except Exception as exc:  # an adapter that cannot even be imported: the row falls back, saying why
        return None, f"{type(exc).__name__}: {exc}"


def _file_problem(side: str, spec: CellSpec, result: Result) -> str:
    sha = result.provenance.get("model_sha256") or spec.variant_sha256
    path = Path(spec.variant_path)
    if not sha:
        return f"the {side}'s model file has no sha256 recorded"
    if not path.is_file():
        return f"the {side}'s model file is missing ({path})"
    now = sha256_file(path)
    if now != sha:
        return f"the {side}'s model file changed on disk (sha256 {now[:12]}, measured {sha[:12]})"
    return ""


def why_not_paired(r: Result, b: Result, cur: CellSpec | None, base: CellSpec | None,
                   installed: Callable[[str], tuple[str | None, str]] = installed_version) -> str:
    """'' when the two cells can be compared in paired processes here, else why not (the row says it)."""
    rv, bv = r.provenance.get("runtime_version"), b.provenance.get("runtime_version")
    if rv != bv:
        return f"runtime version differs ({r.runtime} {bv} in the baseline, {rv} now): two versions cannot share a process"
    if r.runtime in HARNESS_RUNTIMES:
        return "a harness runtime, not a model"
    if r.measured_on == "functional-emulation":
        return "measured under functional emulation: not a timing"
    if cur is None or base is None:
        return f"no cell spec stored in the {'run' if cur is None else 'baseline'} folder"
    version, why = installed(r.runtime)
    if version is None:
        return f"{r.runtime} cannot run here ({why})"
    if version != rv:
        return f"the installed {r.runtime} is {version}, both runs used {rv}"
    problem = _file_problem("baseline", base, b) or _file_problem("run", cur, r)
    if problem:
        return problem
    if cur.feeds.path and not Path(cur.feeds.path).exists():
        return f"the run's feeds file is missing ({cur.feeds.path})"
    return ""


def spec_for(r: Result, b: Result, cur: CellSpec, base: CellSpec, timing: dict, seed: int = 0) -> PairedSpec:
    def member(role: str, res: Result, spec: CellSpec) -> PairedMember:
        sha = res.provenance.get("model_sha256") or spec.variant_sha256
        return PairedMember(f"{role}={res.variant_id}", spec.variant_path, sha, res.runtime, dict(spec.runtime_options))

    return PairedSpec(model=r.model, scenario=r.scenario, profile=cur.profile,
                      members=(member("baseline", b, base), member("candidate", r, cur)), feeds=cur.feeds,
                      items_per_inference=cur.items_per_inference, seed=seed, timeout_s=max(cur.timeout_s, 180.0), **timing)


def run_cell(spec: PairedSpec, schedule: Sequence[int], rule: RegressionRule, cells: int,
             on_process: Callable[[PairedProcess], None] | None = None) -> tuple[PairedCell | None, PairedResult]:
    """The sequential paired comparison of one cell in fresh processes; (None, the group with its reason) on a fault."""
    base_key, cand_key = (m.key for m in spec.members)
    parts: list[PairedProcess] = []
    started = _now()

    def draw(n: int) -> list[float]:
        new = paired_run.run_group(spec, n, on_process, first_index=len(parts) + 1)
        parts.extend(new.processes)
        if new.verdict != Verdict.OK:
            raise paired_run.ProcessFailed(new.verdict, new.reason)
        return [paired.log_ratio(p.samples_ms[base_key], p.samples_ms[cand_key]) for p in new.processes]

    try:
        cell = sequential_cell(draw, schedule, rule, cells)
    except (paired_run.ProcessFailed, ValueError) as exc:  # ValueError: a non-finite ratio (stats/paired.decide)
        verdict = exc.verdict if isinstance(exc, paired_run.ProcessFailed) else Verdict.ERROR
        return None, PairedResult(spec, verdict, str(exc), tuple(parts), started, _now())
    return cell, PairedResult(spec, Verdict.OK, "", tuple(parts), started, _now())


def _fallback(r: Result, b: Result, rule: RegressionRule, why: str) -> Regression | None:
    g = compare_cell(r, b, rule)
    if g is None:
        return None
    g = dataclasses.replace(g, design=RUN_AGAINST_RUN, design_note=why)
    if g.verdict != Change.SAME:  # MODEL CHANGED / UNKNOWN: decide passes them through, so label them here
        g = dataclasses.replace(g, reason=f"{RUN_AGAINST_RUN} ({why}): {g.reason}")
    return g


def elsewhere(run_machine: dict, here: dict) -> str:
    """'' when this machine is the one the run was measured on (the hardware keys), else what differs: paired
    processes here would time the two files on other hardware than the runs'."""
    try:
        check_same_machine(here, run_machine)
    except BaselineRefused as exc:
        detail = str(exc).partition("another machine")[2].replace("baseline", "the runs'").replace("current", "here")
        return "this machine is not the one the runs were measured on" + detail
    return ""


def compare_runs(current: RunFolder, baseline: RunFolder, rule: RegressionRule, schedule: Sequence[int] = DEFAULT_LOOKS,
                 out_dir: Path | None = None, timing: dict | None = None, seed: int = 0,
                 installed: Callable[[str], tuple[str | None, str]] = installed_version,
                 here: Callable[[], dict] = provenance.machine, log: Callable[[str], None] = print) -> list[Regression]:
    """Every cell of ``current`` with a baseline cell: paired where it can be, run-against-run otherwise (labelled);
    Holm over all of them. Paired groups are saved under ``out_dir``/gate-paired (also the ones that failed)."""
    paired.Sequential(tuple(schedule))  # validates the schedule (ValueError)
    base = {x.cell_id: x for x in baseline.results()}
    cur_specs, base_specs = current.specs(), baseline.specs()
    pairs = [(r, base[r.cell_id]) for r in current.results()
             if r.cell_id in base and r.verdict not in NOT_MEASURED and base[r.cell_id].verdict not in NOT_MEASURED]
    away = elsewhere(current.machine() or {}, here())
    reasons = [away or why_not_paired(r, b, cur_specs.get(r.cell_id), base_specs.get(r.cell_id), installed) for r, b in pairs]
    cells = len(pairs)
    rows: list[Regression] = []
    for (r, b), why in zip(pairs, reasons):
        if why:
            g = _fallback(r, b, rule, why)
            rows += [g] if g is not None else []
            continue
        spec = spec_for(r, b, cur_specs[r.cell_id], base_specs[r.cell_id], dict(timing or PAIRED_TIMING), seed)
        log(f"[gate] paired {r.cell_id}: looks at {tuple(schedule)} processes")
        keys = [m.key for m in spec.members]

        def progress(p: PairedProcess, keys=keys) -> None:
            log(f"  [paired] process {p.index}: candidate/baseline {p.median(keys[1]) / p.median(keys[0]):.4f}")

        cell, group = run_cell(spec, schedule, rule, cells, progress)
        saved = paired_run.save_to(Path(out_dir or current.root) / GROUP_FOLDER, group)
        name = f"{GROUP_FOLDER}/{saved.name}"
        if cell is None:
            g = _fallback(r, b, rule, f"the paired processes failed ({group.reason}; {len(group.processes)} kept in {name})")
            rows += [g] if g is not None else []
        else:
            rows.append(paired_row(r.cell_id, cell, name, rule, cells))
    return decide(rows, rule)
