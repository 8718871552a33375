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

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from odbench.bench.run_folder import is_unreadable
from odbench.core.records import HARNESS_RUNTIMES, Result, Variant, atomic_write_text
from odbench.report.plots import (
    OK,
    Cell,
    interval,
    model_plots,
    pareto,
    primary_metric,
    runtime_label,
    scenarios_of,
    short,
)
from odbench.report.runs import Machine, MachineRuns, distinct_labels
from odbench.verdicts.accuracy import merge_run_accuracy, row_accuracy
from odbench.verdicts import gate
from odbench.devices.profile import ProfileError
from odbench.devices.catalog import get_profile
from odbench.report.runs import by_machine, load_runs

TIMED = ("device", "emulated")  # measured_on values whose latency is a measurement
__all__ = ["pareto", "primary_metric", "render", "render_runs", "evaluate_groups", "selection", "differences"]


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


def selection_rows(picks: list[Pick]) -> list[list[str]]:
    return [[str(i + 1), p.machine, f"{p.profile} ({p.measured_on})", short(p.variant_id), p.runtime, str(p.cells),
             "no price data" if p.price is None else f"${p.price:g}", "" if p.power_w is None else f"{p.power_w:g}",
             _fmt_ci(p.worst_p95, p.worst_p95_ci)] for i, p in enumerate(picks)]


SELECTION_HEADER = ["rank", "machine", "profile", "variant", "runtime", "budgeted cells", "price", "power W", "worst p95 ms [95% CI]"]
DIFF_HEADER = ["machine", "profile", "scenario", "fastest variant", "runtime", "p50 ms [95% CI]", "int8 pays?"]


def _int8_pays(fp32: Result | None, int8: Result | None) -> str:
    if fp32 is None or int8 is None:
        return "not measured"
    speedup = fp32.stats["p50"] / int8.stats["p50"]
    a, b = interval(int8.stats, "p50"), interval(fp32.stats, "p50")
    name = short(int8.variant_id)
    if a and b and a[1] >= b[0] and b[1] >= a[0]:
        return f"unclear: {name} x{speedup:.2f}, intervals overlap"
    return f"{'yes' if speedup > 1 else 'no'}: {name} x{speedup:.2f} vs fp32"


def differences(model: str, views: Sequence[MachineView], profiles: dict) -> list[list[str]]:
    """Per machine and profile, at the focus scenario: the fastest usable variant and runtime, and
    whether the fastest int8 variant beats fp32 on that runtime."""
    rows = []
    for view in views:
        usable = [r for r in view.group.results if r.model == model and r.runtime not in HARNESS_RUNTIMES and r.verdict in OK
                  and r.stats and "p50" in r.stats and not view.beyond(r, profiles)]
        _, focus = scenarios_of([Cell(view.tag, r) for r in usable])
        for (profile, on), group in sorted(_by(usable, lambda r: (r.profile, r.measured_on)).items()):
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


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    cell = lambda x: str(x).replace("|", "/")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(cell, r)) + " |" for r in rows] + [""]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def machine_rows(views: Sequence[MachineView]) -> list[list[str]]:
    return [[v.tag, v.label, " ".join(v.group.machine.isa), ", ".join(p.name for p in v.group.paths), str(len(v.group.results))]
            for v in views]


def wrong_outputs(model: str, views: Sequence[MachineView]) -> list[str]:
    """Cells left out of every plot and selection because their outputs failed parity."""
    return [f"{v.tag} {short(r.variant_id)} on {runtime_label(r)} @{r.profile}, {r.scenario}: {r.reason}"
            for v in views for r in v.group.results if r.model == model and r.verdict == "FAIL"]


def skipped_rows(model: str, views: Sequence[MachineView]) -> list[str]:
    """Why cells were not measured, once per machine, profile and reason."""
    seen = {}
    for v in views:
        for r in v.group.results:
            if r.model == model and r.verdict == "SKIPPED":
                seen.setdefault((v.tag, r.profile, r.reason), 0)
                seen[v.tag, r.profile, r.reason] += 1
    return [f"{tag} {profile}: {n} cell(s): {reason}" for (tag, profile, reason), n in seen.items()]


def functional_rows(model: str, views: Sequence[MachineView]) -> list[list[str]]:
    """Cells checked without timing (e.g. measured_on 'functional-emulation': parity on another ISA's kernels)."""
    return [[v.tag, r.profile, r.measured_on, short(r.variant_id), runtime_label(r), r.scenario, r.verdict, r.reason[:200]]
            for v in views for r in v.group.results
            if r.model == model and r.runtime not in HARNESS_RUNTIMES and r.measured_on not in TIMED]


class _Doc:
    """The HTML page and its Markdown twin, written side by side."""

    def __init__(self, title: str):
        self.h = ["<!doctype html><html><head><meta charset='utf-8'><title>odbench report</title>",
                  "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}"
                  "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:13px}"
                  "td,th{border:1px solid #ccc;padding:2px 6px}.emu{color:#a60}</style></head><body>",
                  f"<h1>{html.escape(title)}</h1>"]
        self.md = [f"# {title}", ""]

    def heading(self, level: int, text: str) -> None:
        self.h.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md += [f"{'#' * level} {text}", ""]

    def para(self, text: str, cls: str = "") -> None:
        self.h.append(f"<p class='{cls}'>{html.escape(text)}</p>")
        self.md += [f"> {text}" if cls else text, ""]

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.h.append(_html_table(header, rows))
        self.md += _md_table(header, rows)

    def bullets(self, items: list[str]) -> None:
        self.h.append("<ul>" + "".join(f"<li>{html.escape(x[:300])}</li>" for x in items) + "</ul>")
        self.md += [f"- {x[:300]}" for x in items] + [""]


def _model_section(doc: _Doc, model: str, views: Sequence[MachineView], profiles: dict, out_dir: Path, budgets_given: bool) -> None:
    doc.heading(2, model)
    doc.heading(3, "Which machine, device and variant?")
    picks, notes = selection(model, views, profiles)
    if not budgets_given:
        doc.para("No budgets given (`--budgets`): no selection made; see the plots.")
    elif not picks:
        doc.para("No machine, device profile and variant meets all of this model's budgets.")
    else:
        p = picks[0]
        doc.para(f"Best: {p.machine} {p.profile} ({p.measured_on}) + {p.variant_id} on {p.runtime}")
        doc.table(SELECTION_HEADER, selection_rows(picks))
    if notes:
        doc.heading(3, "Never used: emulated beyond the machine that ran it")
        doc.bullets(notes)
    diffs = differences(model, views, profiles)
    if diffs:
        doc.heading(3, "Where the machines' answers differ")
        for col, what in ((3, "fastest variant"), (4, "runtime of the fastest variant")):
            answers = {row[0]: row[col] for row in diffs}
            if len(set(answers.values())) > 1:
                doc.para(f"The machines disagree on the {what} (each among the variants it measured): " + "; ".join(f"{m} {a}" for m, a in answers.items()) + ".")
        doc.table(DIFF_HEADER, diffs)
    skipped = skipped_rows(model, views)
    if skipped:
        doc.heading(3, "Not measured (SKIPPED)")
        doc.bullets(skipped)
    failed = wrong_outputs(model, views)
    if failed:
        doc.heading(3, "Left out: wrong outputs (parity FAIL)")
        doc.bullets(failed)
    functional = functional_rows(model, views)
    if functional:
        doc.heading(3, "Functional checks (outputs checked, no timing)")
        doc.table(["machine", "profile", "measured_on", "variant", "runtime", "scenario", "verdict", "reason"], functional)
    run_acc = {id(v): merge_run_accuracy(v.group.paths) for v in views}  # each row's own runtime's accuracy
    cells = [Cell(v.tag, r, v.group.variants.get(r.variant_id), row_accuracy(r, v.group.variants, run_acc[id(v)])[0])
             for v in views for r in v.group.results if not v.beyond(r, profiles)]
    for plot in model_plots(model, cells, [x for v in views for x in v.group.variants.values()]):
        (out_dir / "plots" / f"{plot.id}.png").write_bytes(plot.png)
        b64 = base64.b64encode(plot.png).decode()
        doc.h.append(f"<h3>{html.escape(plot.title)}</h3><img id='{plot.id}' class='plot' alt='{html.escape(plot.title)}' "
                     f"src='data:image/png;base64,{b64}'>")
        doc.md += [f"### {plot.title}", "", f"![{plot.title}](plots/{plot.id}.png)", ""]


def render_runs(groups: Sequence[MachineRuns], out_dir: Path, verdicts: Sequence | None = None,
                profiles: dict | None = None, title: str = "") -> tuple[Path, Path]:
    """The report over every machine's results (bench.runs.by_machine); ``verdicts``: per group (evaluate_groups)."""
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    views = views_of(groups, verdicts)
    profiles = profiles or {}
    doc = _Doc(f"odbench hardware-selection report: {title or ', '.join(p.name for g in groups for p in g.paths)}")
    doc.heading(2, "Machines")
    doc.para("Each machine's results are its own: statistics are never pooled across machines. "
             "Plots tag each point with its machine (M1, M2, ...) and profile.")
    doc.table(["tag", "machine", "ISA", "run folders", "results"], machine_rows(views))
    unreadable = [[v.tag, r.cell_id, "ERROR", r.reason] for v in views for r in v.group.results if is_unreadable(r)]
    if unreadable:
        doc.heading(2, "Results that could not be read (ERROR)")
        doc.para("These cells are left out of every choice below; `odbench run --out` their folder rebuilds or reruns them.")
        doc.table(["machine", "cell", "verdict", "why"], unreadable)
    emulated = sorted({f"{v.tag}:{r.profile}" for v in views for r in v.group.results if r.measured_on == "emulated" and r.stats})
    if emulated:
        doc.para(f"Emulated on their machine (not measured on the device): {', '.join(emulated)}. Drawn hollow / dashed.", "emu")
    models = sorted({r.model for v in views for r in v.group.results if r.runtime not in HARNESS_RUNTIMES})
    for model in models:
        _model_section(doc, model, views, profiles, out_dir, verdicts is not None and any(v is not None for v in verdicts))
    doc.h.append("</body></html>")
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write_text(html_path, "\n".join(doc.h))
    atomic_write_text(md_path, "\n".join(doc.md))
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


def render_folders(paths: Sequence[str | Path], budgets=None, out_dir: Path | None = None) -> tuple[Path, Path]:
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
    return render_runs(groups, Path(out_dir), verdicts, profiles, title=", ".join(names))


def render(run_dir: Path, results: list[Result], variants: dict[str, Variant], machine: dict,
           verdicts=None, profiles: dict | None = None, out_dir: Path | None = None) -> tuple[Path, Path]:
    """One run folder's report (the single-machine form of render_runs)."""
    group = MachineRuns(Machine.from_json(machine, run_dir.name), (run_dir,), tuple(results), variants, {})
    return render_runs([group], out_dir or run_dir / "report", None if verdicts is None else [tuple(verdicts)],
                       profiles, title=run_dir.name)
