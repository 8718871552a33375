"""The hardware-selection report over one or several run folders: a self-contained HTML page with
plots, and a Markdown twin for a PR comment.

Each run folder was measured on its own machine (its machine.json). Results are grouped by machine
(report/runs.py) and never pooled across machines: every statistic, box and bar is one cell on one
machine, and budgets are judged per machine. Per model the report shows
  * which machine, device profile and variant meet all the budgets -- ranked by price, then power
    (datasheet figures of the profile), then worst p95 -- with 95% intervals where results carry them;
  * where the machines' answers differ: fastest variant, its runtime, and whether int8 pays;
  * the plots (report/plots.py): latency vs accuracy with the Pareto frontier, p50 per variant
    and runtime, latency distributions, throughput vs batch size / N, size vs accuracy.
Emulated results are drawn hollow. A result emulating a profile beyond its machine (ISA features,
cores or memory the machine lacks; older runs could record such rows) is never used for selection.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from odbench.bench.run_folder import is_unreadable
from odbench.core.records import HARNESS_RUNTIMES, Result, Variant, atomic_write_text
from odbench.devices.catalog import get_profile
from odbench.devices.profile import ProfileError
from odbench.report import paired_figures
from odbench.report.decision import Decision, Point, decide, points_of, usable
from odbench.report.doc import Doc
from odbench.report.figures import Estimate, fidelity_metric, task_metric
from odbench.report.plots import OK, Cell, interval, model_plots, runtime_label, scenarios_of, short
from odbench.report.runs import Machine, MachineRuns, by_machine, distinct_labels, load_runs
from odbench.report.sections import functional_rows, machine_rows, parity_rows, skipped_rows
from odbench.verdicts import gate
from odbench.verdicts.accuracy import merge_run_accuracy, row_accuracy

TIMED = ("device", "emulated")  # measured_on values whose latency is a measurement
__all__ = ["render", "render_runs", "render_folders", "evaluate_groups", "selection", "differences", "decisions"]


@dataclass(frozen=True)
class MachineView:
    """One machine's results, its tag in plots (M1, M2, ...) and its own budget verdicts."""

    tag: str
    label: str
    group: MachineRuns
    verdicts: tuple | None = None  # gate.CellVerdict for this machine's results only

    def profile(self, name: str, fallback: dict) -> dict:
        return self.group.profiles.get(name) or fallback.get(name) or {}

    def beyond(self, r: Result, fallback: dict) -> list[str]:
        """What r's profile asks beyond this machine, when r was emulated on it (then r is not usable)."""
        if r.measured_on != "emulated":
            return []
        return self.group.machine.lacks(self.profile(r.profile, fallback))


@dataclass(frozen=True)
class Pick:
    machine: str
    profile: str
    measured_on: str
    variant_id: str
    runtime: str
    cells: int
    price: float | None
    power_w: float | None
    worst_p95: float
    worst_p95_ci: tuple[float, float] | None


def evaluate_groups(groups: Sequence[MachineRuns], budgets) -> list[tuple | None]:
    """Budget verdicts per machine, each judged on that machine's data alone."""

    return [tuple(gate.evaluate(list(g.results), g.variants, budgets, merge_run_accuracy(g.paths))) if budgets is not None else None
            for g in groups]


def views_of(groups: Sequence[MachineRuns], verdicts: Sequence | None = None) -> list[MachineView]:
    labels = distinct_labels([g.machine for g in groups])
    verdicts = list(verdicts) if verdicts is not None else [None] * len(groups)
    return [MachineView(f"M{i + 1}", labels[g.machine.key], g, v) for i, (g, v) in enumerate(zip(groups, verdicts))]


def _price(profile: dict) -> tuple[float | None, float | None]:
    ds = profile.get("datasheet") or {}
    price = ds.get("hourly_price_usd") if ds.get("hourly_price_usd") is not None else ds.get("unit_price_usd")
    return price, ds.get("power_w")


def selection(model: str, views: Sequence[MachineView], profiles: dict) -> tuple[list[Pick], list[str]]:
    """Machines x profiles x variants that meet all budgets, best first: price, then power, then worst p95.
    Also the notes on rows never used (emulated beyond their machine)."""
    picks, notes = [], []
    for view in views:
        if view.verdicts is None:
            continue
        by_cell: dict[str, list[str]] = {}
        for v in view.verdicts:
            by_cell.setdefault(v.cell_id, []).append(v.verdict)
        cand: dict[tuple, list[Result]] = {}
        for r in view.group.results:
            if r.model != model or r.runtime in HARNESS_RUNTIMES or r.cell_id not in by_cell or r.measured_on not in TIMED:
                continue  # untimed rows (a functional check on another ISA) choose no hardware
            lacks = view.beyond(r, profiles)
            if lacks:
                notes.append(f"{view.tag} {r.profile} ({r.measured_on}) {short(r.variant_id)} on {runtime_label(r)}, {r.scenario}: "
                             f"emulated on a machine that lacks {', '.join(lacks)}")
                continue
            cand.setdefault((r.profile, r.measured_on, r.variant_id, runtime_label(r)), []).append(r)
        for (profile, on, vid, rt), group in cand.items():
            if not all(x == "PASS" for r in group for x in by_cell[r.cell_id]):
                continue
            worst = max(group, key=lambda r: r.stats.get("p95", float("inf")))
            price, power = _price(view.profile(profile, profiles))
            picks.append(Pick(view.tag, profile, on, vid, rt, len(group), price, power, worst.stats.get("p95", float("inf")),
                              interval(worst.stats, "p95")))
    inf = float("inf")
    picks.sort(key=lambda p: (inf if p.price is None else p.price, inf if p.power_w is None else p.power_w, p.worst_p95))
    return picks, notes


def _fmt_ci(value: float | None, ci: tuple[float, float] | None, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


SELECTION_HEADER = ["rank", "machine", "profile", "variant", "runtime", "budgeted cells", "price", "power W",
                    "worst p95 ms [95% CI]", "speedup vs fp32 [95% CI]", "task Δ vs fp32 [95% CI]"]
DIFF_HEADER = ["machine", "profile", "scenario", "fastest variant", "runtime", "p50 ms [95% CI]", "int8 pays?"]
PARITY_HEADER = ["variant", "runtime", "machine", "metric", "value", "floor"]
SELECTION_ROWS = 10  # the table lists the best ten; the decision block names the ones the data cannot separate


def selection_rows(picks: list[Pick], points: list[Point | None]) -> list[list[str]]:
    def est(e: Estimate | None, fmt: str, signed: bool = False) -> str:
        return e.text(fmt, signed) if e is not None else "not measured"

    return [[str(i + 1), p.machine, f"{p.profile} ({p.measured_on})", short(p.variant_id), p.runtime, str(p.cells),
             "" if p.price is None else f"${p.price:g}", "" if p.power_w is None else f"{p.power_w:g}",
             _fmt_ci(p.worst_p95, p.worst_p95_ci), est(pt.speedup if pt else None, ".2f"), est(pt.delta if pt else None, ".4f", True)]
            for i, (p, pt) in enumerate(zip(picks, points))]


def _int8_pays(fp32: Result | None, int8: Result | None) -> str:
    if fp32 is None or int8 is None:
        return "not measured"
    speedup = fp32.stats["p50"] / int8.stats["p50"]
    a, b = interval(int8.stats, "p50"), interval(fp32.stats, "p50")
    name = short(int8.variant_id)
    if not (a and b) or (a[1] >= b[0] and b[1] >= a[0]):
        return f"unclear: {name} x{speedup:.2f}, " + ("intervals overlap" if a and b else "no interval")
    return f"{'yes' if speedup > 1 else 'no'}: {name} x{speedup:.2f} vs fp32"


def differences(model: str, views: Sequence[MachineView], profiles: dict) -> list[list[str]]:
    """Per machine and profile, at the focus scenario: the fastest usable variant and runtime, and
    whether the fastest int8 variant beats fp32 on that runtime."""
    rows = []
    for view in views:
        usable_ = [r for r in view.group.results if r.model == model and r.runtime not in HARNESS_RUNTIMES and r.verdict in OK
                   and r.stats and "p50" in r.stats and not view.beyond(r, profiles)]
        _, focus = scenarios_of([Cell(view.tag, r) for r in usable_])
        for (profile, on), group in sorted(_by(usable_, lambda r: (r.profile, r.measured_on)).items()):
            at = [r for r in group if r.scenario == focus]
            if not at:
                continue
            best = min(at, key=lambda r: r.stats["p50"])
            same_rt = [r for r in at if runtime_label(r) == runtime_label(best)]
            fp32 = next((r for r in same_rt if r.variant_id.endswith("/fp32")), None)
            int8 = min((r for r in same_rt if "int8" in r.variant_id), key=lambda r: r.stats["p50"], default=None)
            rows.append([view.tag, f"{profile} ({on})", focus, short(best.variant_id), runtime_label(best),
                         _fmt_ci(best.stats["p50"], interval(best.stats, "p50")), _int8_pays(fp32, int8)])
    return rows


def _by(items, key) -> dict:
    out: dict = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


@dataclass(frozen=True)
class ModelView:
    """One model across the machines: its usable points (numbered as the plots number them), metrics,
    the budgeted picks and the decision."""

    model: str
    metric: str | None
    fidelity: str | None
    points: tuple[Point, ...]
    picks: tuple[Pick, ...]
    pick_points: tuple[Point | None, ...]
    notes: tuple[str, ...]
    decision: Decision


def _point_for(pick: Pick, points: Sequence[Point], focus: str | None) -> Point | None:
    same = [p for p in points if (p.tag, p.r.profile, p.r.measured_on, p.r.variant_id, p.runtime)
            == (pick.machine, pick.profile, pick.measured_on, pick.variant_id, pick.runtime)]
    return next((p for p in same if p.r.scenario == focus), same[0] if same else None)


def model_view(model: str, views: Sequence[MachineView], profiles: dict, budgets_given: bool, paired_for=None) -> ModelView:
    """``paired_for``: MachineRuns -> that machine's paired speedups (tables.PairedLookup), or None."""
    every = [p for v in views for p in points_of(model, v.tag, v.group,
                                                  [r for r in v.group.results if usable(r, model) and not v.beyond(r, profiles)],
                                                  paired_for(v.group) if paired_for else None)]
    _, focus = scenarios_of([Cell(p.tag, p.r) for p in every])
    at_focus = sorted((p for p in every if p.r.scenario == focus),
                      key=lambda p: (p.tag, p.r.profile, p.runtime, not p.r.variant_id.endswith("/fp32"), p.variant))
    accs = [v.accuracy for view in views for v in view.group.variants.values() if v.model == model]
    metric, fid = task_metric(model, accs), fidelity_metric(model, accs)
    picks, notes = selection(model, views, profiles) if budgets_given else ([], [])
    pick_points = [_point_for(p, every, focus) for p in picks]
    if budgets_given:
        n = len({cv.budget for v in views for cv in (v.verdicts or ()) if cv.model in (model, "")})
        cands = [pt or Point(p.machine, _stub(p), None, None, None, Estimate.of(p.worst_p95)) for p, pt in zip(picks, pick_points)]
        ranked = [w for w, has in (("price", any(p.price is not None for p in picks)),
                                   ("power", any(p.power_w is not None for p in picks))) if has] + ["worst p95"]
        dec = decide(model, cands, metric, n, [(p.price, p.power_w) for p in picks], ", then ".join(ranked))
    else:
        dec = decide(model, at_focus, metric, None)
    if budgets_given and dec.pick is None:
        dec = _provisional(model, views, at_focus, metric) or dec
    return ModelView(model, metric, fid, tuple(at_focus), tuple(picks), tuple(pick_points), tuple(notes), dec)


def _provisional(model: str, views: Sequence[MachineView], at_focus: Sequence[Point], metric: str | None) -> Decision | None:
    """No cell PASSes every budget yet: the best cell that FAILs none of them (its INCONCLUSIVE verdicts need more
    processes), labelled provisional, so that a default run still names its likely answer and what would confirm it."""
    verdicts = [cv for v in views for cv in (v.verdicts or ()) if cv.model in (model, "")]
    failed = {cv.cell_id for cv in verdicts if str(cv.verdict) == "FAIL"}
    judged = {cv.cell_id for cv in verdicts}
    ok = sorted((p for p in at_focus if p.r.cell_id in judged and p.r.cell_id not in failed),
                key=lambda p: p.p95.value if p.p95 else float("inf"))
    dec = decide(model, ok, metric, len({cv.budget for cv in verdicts}))
    if dec.pick is None:
        return None
    basis = ("PROVISIONAL: no cell PASSes every budget yet; the lowest p95 among those that FAIL none (their "
             "INCONCLUSIVE verdicts need more processes: `odbench gate RUN --budgets FILE --decide`)")
    return dataclasses.replace(dec, why=(basis,) + dec.why[1:])


def _stub(p: Pick) -> Result:
    return Result(cell_id="", model="", variant_id=p.variant_id, runtime=p.runtime, profile=p.profile, measured_on=p.measured_on,
                  scenario="", verdict="OK")


def decision_block(doc: Doc, mv: ModelView) -> None:
    d = mv.decision
    if d.pick is None:
        doc.decision(f"{mv.model}: no recommendation", [d.note], [], ok=False)
        return
    p = d.pick
    title = f"{mv.model}: {p.variant} on {p.runtime}, {p.where}"
    ties = []
    if d.ties:
        names = "; ".join(t.name() for t in d.ties[:6]) + (f"; +{len(d.ties) - 6} more" if len(d.ties) > 6 else "")
        ties.append(f"The data cannot separate it from: {names}.")
    elif d.others:
        ties.append(f"Every other candidate ({d.others}) is slower beyond the intervals.")
    doc.decision(title, list(d.why), ties, ok=True)


def _model_section(doc: Doc, mv: ModelView, views: Sequence[MachineView], profiles: dict, out_dir: Path, budgets_given: bool,
                   plots_out: list | None = None) -> None:
    model = mv.model
    doc.section(f"{model}-selection")
    doc.heading(2, model)
    if not budgets_given:
        doc.para("No budgets given (`--budgets`): the decision above is the fastest cell without a detected accuracy loss.")
    elif mv.picks:
        doc.heading(3, "Candidates meeting all budgets")
        rows = selection_rows(list(mv.picks[:SELECTION_ROWS]), list(mv.pick_points[:SELECTION_ROWS]))
        header = [h.replace("task Δ", f"{mv.metric} Δ") if mv.metric else h for h in SELECTION_HEADER]
        doc.table(header, rows)
        if len(mv.picks) > SELECTION_ROWS:
            doc.para(f"+{len(mv.picks) - SELECTION_ROWS} more candidates, slower by worst p95.")
    if mv.notes:
        doc.heading(3, "Never used: emulated beyond the machine that ran it")
        doc.bullets(list(mv.notes))
    run_acc = {id(v): merge_run_accuracy(v.group.paths) for v in views}  # each row's own runtime's accuracy
    cells = [Cell(v.tag, r, v.group.variants.get(r.variant_id), row_accuracy(r, v.group.variants, run_acc[id(v)])[0])
             for v in views for r in v.group.results if not v.beyond(r, profiles)]
    for plot in model_plots(model, cells, [x for v in views for x in v.group.variants.values()], list(mv.points), mv.metric, mv.fidelity):
        doc.section(plot.id)
        doc.figure(plot, out_dir / "plots")
        if plots_out is not None:
            plots_out.append(plot)
    for sid, title, header, rows in (
        ("differ", "Where the machines' answers differ", DIFF_HEADER, differences(model, views, profiles) if len(views) > 1 else []),
        ("parity", "Left out: wrong outputs (parity FAIL)", PARITY_HEADER, parity_rows(model, views)),
        ("skipped", "Not measured (SKIPPED)", ["machine", "profile", "cells", "reason"], skipped_rows(model, views)),
        ("functional", "Functional checks (outputs checked, no timing)",
         ["machine", "profile", "measured_on", "variant", "runtime", "scenario", "verdict", "reason"], functional_rows(model, views)),
    ):
        if rows:
            doc.section(f"{model}-{sid}")
            doc.heading(3, title)
            doc.table(header, rows)


def decisions(groups: Sequence[MachineRuns], verdicts: Sequence | None = None, profiles: dict | None = None,
              paired_for=None) -> list[ModelView]:
    """Each model's answer (for the API and tests): its points, picks and decision."""
    views = views_of(groups, verdicts)
    budgets_given = verdicts is not None and any(v is not None for v in verdicts)
    models = sorted({r.model for v in views for r in v.group.results if r.runtime not in HARNESS_RUNTIMES})
    return [model_view(m, views, profiles or {}, budgets_given, paired_for) for m in models]


def render_runs(groups: Sequence[MachineRuns], out_dir: Path, verdicts: Sequence | None = None,
                profiles: dict | None = None, title: str = "", plots_out: list | None = None, paired_for=None) -> tuple[Path, Path]:
    """``groups``: each machine's results (report.runs.by_machine); ``verdicts``: per group (evaluate_groups);
    ``plots_out``: a list that receives every plots.Plot drawn (their axis ranges, captions, label boxes);
    ``paired_for``: MachineRuns -> its paired speedups (tables.PairedLookup) or None."""
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    views = views_of(groups, verdicts)
    profiles = profiles or {}
    budgets_given = verdicts is not None and any(v is not None for v in verdicts)
    mvs = decisions(groups, verdicts, profiles, paired_for)
    doc = Doc(f"odbench hardware-selection report: {title or ', '.join(p.name for g in groups for p in g.paths)}")
    doc.section("decision")
    doc.heading(2, "Decision")
    for mv in mvs:
        decision_block(doc, mv)
    doc.para("Intervals are 95%, the fresh process the unit of replication; accuracy deltas are paired over the same test "
             "examples. A runner-up the data cannot separate overlaps the pick's interval (speedup vs the same fp32 cell, "
             "else p95).", "caption")
    doc.section("machines")
    doc.heading(2, "Machines")
    doc.para("Each machine's results are its own: statistics are never pooled across machines. Plots tag points M1, M2, ...")
    doc.table(["tag", "machine", "ISA", "run folders", "results"], machine_rows(views))
    unreadable = [[v.tag, r.cell_id, "ERROR", r.reason] for v in views for r in v.group.results if is_unreadable(r)]
    if unreadable:
        doc.heading(2, "Results that could not be read (ERROR)")
        doc.para("These cells are left out of every choice in this report; `odbench run --out` their folder rebuilds or reruns them.")
        doc.table(["machine", "cell", "verdict", "why"], unreadable)
    emulated = sorted({f"{v.tag}:{r.profile}" for v in views for r in v.group.results if r.measured_on == "emulated" and r.stats})
    if emulated:
        doc.para(f"Emulated on their machine (not measured on the device): {', '.join(emulated)}. Drawn hollow / dashed.", "emu")
    for mv in mvs:
        _model_section(doc, mv, views, profiles, out_dir, budgets_given, plots_out)
    page, md = doc.text()
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write_text(html_path, page)
    atomic_write_text(md_path, md)
    return html_path, md_path


def profiles_named(names) -> dict[str, dict]:
    """The shipped profiles by name (their datasheets), for results whose run folder kept no specs/."""

    out = {}
    for name in sorted(set(names) - {"host"}):  # 'host' is whatever machine ran it: its machine.json says
        try:
            out[name] = get_profile(name).model_dump(mode="json")
        except ProfileError:
            pass
    return out


def render_folders(paths: Sequence[str | Path], budgets=None, out_dir: Path | None = None, paired_for=None) -> tuple[Path, Path]:
    """`odbench report RUN [RUN ...]`: one report over run folders from any number of machines.
    ``budgets``: a BudgetFile (bench.budgets.load_budgets) or None. Default output: RUN/report for one
    folder, else report-RUN1-vs-RUN2 beside the first. Raises bench.runs.RunError for a bad folder."""

    runs = load_runs(paths)
    groups = by_machine(runs)
    names = [r.path.name for r in runs]
    if out_dir is None:
        out_dir = runs[0].path / "report" if len(runs) == 1 else runs[0].path.parent / ("report-" + "-vs-".join(names))
    verdicts = evaluate_groups(groups, budgets) if budgets is not None else None
    profiles = profiles_named({r.profile for g in groups for r in g.results})
    return render_runs(groups, Path(out_dir), verdicts, profiles, title=", ".join(names), paired_for=paired_for or _paired_of)


def _paired_of(group: MachineRuns):
    """A machine's paired speedups (RUN/paired/ of each of its folders), as the tables read them."""
    index: dict = {}
    for path in group.paths:
        index.update(paired_figures.load_index(Path(path)))
    return paired_figures.lookup(index)


def render(run_dir: Path, results: list[Result], variants: dict[str, Variant], machine: dict,
           verdicts=None, profiles: dict | None = None, out_dir: Path | None = None) -> tuple[Path, Path]:
    """One run folder's report (the single-machine form of render_runs)."""
    group = MachineRuns(Machine.from_json(machine, run_dir.name), (run_dir,), tuple(results), variants, {})
    return render_runs([group], out_dir or run_dir / "report", None if verdicts is None else [tuple(verdicts)],
                       profiles, title=run_dir.name)
