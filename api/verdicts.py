"""What a finished run folder says: its tables, the gate's verdicts on budgets, the hardware report."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from odbench.api import comparison as paired_compare
from odbench.api.options import UsageError, open_run, read_budgets
from odbench.bench.run_folder import RunFolder, RunFolderError, is_unreadable
from odbench.report import html as report_html
from odbench.report.runs import gate_inputs
from odbench.report.tables import write_tables
from odbench.stats.paired import Sequential
from odbench.verdicts import gate as gating
from odbench.verdicts import ledger, regression_paired
from odbench.verdicts.accuracy import load_run_accuracy
from odbench.verdicts.budgets import BudgetFile
from odbench.verdicts.decide import extend


@dataclass(frozen=True)
class GateOutcome:
    """The gate's verdicts (one per budget and cell), regressions against a baseline, the exit code
    (0 PASS, 1 FAIL/ERROR/regression, 3 INCONCLUSIVE) and the files written (json, junit, markdown)."""

    verdicts: tuple[gating.CellVerdict, ...]
    regressions: tuple[gating.Regression, ...]
    exit_code: int
    paths: dict[str, Path]
    notes: tuple[str, ...] = ()


def table(run_dir: str | Path) -> tuple[Path, Path]:
    """Regenerate a run folder's table.md and table.csv; returns their paths."""
    open_run(run_dir)
    return write_tables(run_dir)


def _budgets(budgets: str | Path | BudgetFile) -> BudgetFile:
    return budgets if isinstance(budgets, BudgetFile) else read_budgets(budgets)


def unreadable_notes(results: Sequence, verdicts: Sequence) -> list[str]:
    """Result files that could not be read: those a budget needed are ERROR verdicts already; the rest are named here."""
    judged = {v.cell_id.rsplit("] ", 1)[-1] for v in verdicts}
    return [f"- unreadable result, no budget needed it: `{r.cell_id}`: {r.reason}"
            for r in results if is_unreadable(r) and r.cell_id not in judged]


def decide(folder: RunFolder, verdicts: list, budgets: BudgetFile, max_rounds: int = 3, max_processes: int = 80,
           on_round: Callable[[int], None] | None = None, on_result: Callable | None = None,
           earlier_looks: dict[str, int] | None = None, min_group: float | None = None) -> list:
    """Add batches of processes to INCONCLUSIVE cells (each batch a stricter look) until decided or a limit."""
    variants, run_acc = folder.variants(), load_run_accuracy(folder)
    for rounds in range(1, max_rounds + 1):
        if not any(v.verdict == gating.GateVerdict.INCONCLUSIVE for v in verdicts):
            break
        if on_round:
            on_round(rounds)
        if not extend(folder, verdicts, max_processes, on_result=on_result):
            break
        verdicts = gating.evaluate(folder.results(), variants, budgets, run_acc, earlier_looks, min_group)
    return verdicts


def _record_looks(folder: RunFolder, verdicts: list) -> None:
    """The ledger of fresh runs (verdicts/ledger.py): this folder's looks, and gate-looks.json in it."""
    per_cell: dict[str, list] = {}
    for v in verdicts:
        per_cell.setdefault(v.cell_id, []).append(v.verdict)
    worst = {c: str(gating.worst(vs)) for c, vs in per_cell.items()}
    results, machine = folder.results(), folder.machine() or {}
    ledger.record(folder.root, results, machine, worst, ledger.earlier_looks(folder.root, results, machine))


def _per_machine(run_dirs: Sequence[Path], budgets: BudgetFile) -> list:
    try:  # folder by folder: each one's accuracy.json goes with its own results
        groups = [(d, g) for d in run_dirs for g in gate_inputs([d])]
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None
    verdicts = []
    for d, (machine, results, variants) in groups:
        judged = gating.evaluate(results, variants, budgets, load_run_accuracy(d))
        verdicts += [dataclasses.replace(v, cell_id=f"[{machine.label}] {v.cell_id}") for v in judged]
    return verdicts


def gate(run_dirs: str | Path | Sequence[str | Path], budgets: str | Path | BudgetFile, baseline: str | Path | None = None,
         regression: str = "10%:0.01", decide_rounds: int = 0, max_processes: int = 80, out: str | Path | None = None,
         on_round: Callable[[int], None] | None = None, on_result: Callable | None = None,
         min_group: float | None = None, paired: bool = True, paired_looks: Sequence[int] = regression_paired.DEFAULT_LOOKS,
         log: Callable[[str], None] = print) -> GateOutcome:
    """Judge run folders against a budgets file: PASS / FAIL / INCONCLUSIVE / ERROR per budget and cell.

    Several folders (each from its own machine) are judged machine by machine. ``baseline``: a run folder
    from the same machine, checked for regressions by ``regression`` ('EFFECT%[:ALPHA]'): cell by cell in paired
    processes (both model files timed in each, ``paired_looks`` processes at most) where both files are still there
    and both runs used the runtime version installed here, else run against run, each row saying which design gave
    it and why (verdicts/regression_paired.py); ``paired=False``: run against run only. ``decide_rounds``
    > 0 adds batches of processes to INCONCLUSIVE cells (one folder only). ``min_group``: the share of
    processes a group that differs is assumed to have at least (a PASS rests on it; default: the budgets file's). Looks in earlier run
    folders of the same cells count (verdicts/ledger.py; one folder only). An unreadable result is an ERROR
    where a budget needs it, and named in the notes otherwise. Writes gate.json, gate.junit.xml and gate.md
    to ``out`` (default: the first folder)."""
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise UsageError("no run folder given")
    budget_file = _budgets(budgets)
    try:
        rule = gating.RegressionRule.parse(regression)
    except ValueError as exc:
        raise UsageError(f"--regression {regression!r}: {exc}") from None
    if len(dirs) > 1 and (decide_rounds or baseline):
        raise UsageError("--decide and --baseline take one run folder")
    try:
        looks = Sequential(tuple(int(n) for n in paired_looks))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--paired-looks {tuple(paired_looks)}: {exc}") from None
    folders = [open_run(d, need_machine=True) for d in dirs]  # a verdict names the machine it holds for
    regressions: list = []
    if len(folders) == 1:
        folder = folders[0]
        earlier = {c: e.looks for c, e in ledger.earlier_looks(folder.root, folder.results(), folder.machine() or {}).items()}
        verdicts = gating.evaluate(folder.results(), folder.variants(), budget_file, load_run_accuracy(folder), earlier, min_group)
        if decide_rounds:
            verdicts = decide(folder, verdicts, budget_file, decide_rounds, max_processes, on_round, on_result, earlier, min_group)
        _record_looks(folder, verdicts)
        if baseline is not None:
            base = open_run(baseline, need_machine=True)
            try:
                gating.check_same_machine(folder.machine(), base.machine())
            except gating.BaselineRefused as exc:
                raise UsageError(str(exc)) from None
            if paired:  # a runtime version that differs is a labelled run-against-run row here, not a refusal
                regressions = regression_paired.compare_runs(folder, base, rule, looks.schedule, Path(out) if out else dirs[0],
                                                             log=log)
            else:
                try:
                    regressions = gating.compare(folder.results(), base.results(), rule)
                except gating.BaselineRefused as exc:
                    raise UsageError(str(exc)) from None
    else:
        verdicts = _per_machine(dirs, budget_file)
    notes = unreadable_notes([r for f in folders for r in f.results()], verdicts)
    code = gating.exit_code(verdicts, regressions)
    paths = gating.write_outputs(Path(out) if out else dirs[0], verdicts, regressions, code, notes)
    return GateOutcome(tuple(verdicts), tuple(regressions), code, paths, tuple(notes))


def report(run_dirs: str | Path | Sequence[str | Path], budgets: str | Path | BudgetFile | None = None,
           out: str | Path | None = None) -> tuple[Path, Path]:
    """The hardware-selection report over run folders (each from its own machine): (report.html, report.md).
    Default output: RUN/report for one folder, report-RUN1-vs-RUN2 beside the first."""
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    budget_file = _budgets(budgets) if budgets is not None else None
    for d in dirs:
        open_run(d, need_machine=True)  # a hardware report without the hardware says nothing
    try:
        return report_html.render_folders(dirs, budget_file, Path(out) if out else None)
    except RunFolderError as exc:
        raise UsageError(str(exc)) from None


def compare(base: str | Path, cand: str | Path, **options):
    """CAND against BASE (ONNX files or zoo variant ids) in paired processes: api/compare.py, docs/paired.md."""
    return paired_compare.compare(str(base), str(cand), **options)
