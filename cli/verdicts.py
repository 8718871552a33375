"""`odbench table`, `odbench gate` and `odbench report`: what a finished run folder says."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from odbench.report import accuracy_table, html as report
from odbench.bench.arm import functional as arm
from odbench.verdicts import gate
from odbench.verdicts.accuracy import load_run_accuracy
from odbench.cli.common import err, load_run, log, read_budgets, usage
from odbench.verdicts.decide import extend
from odbench.report.runs import RunError, gate_inputs
from odbench.bench.store import ResultStore
from odbench.report.tables import write_tables

RUN_DIR = click.Path(file_okay=False, path_type=Path)


@click.command("table")
@click.argument("run_dir", type=RUN_DIR)
def table_cmd(run_dir: Path) -> int:
    """Regenerate table.md and table.csv of a run folder."""
    load_run(run_dir, need_machine=False)  # a table names the machine when it is known
    md, _csv = write_tables(run_dir)
    print(md.read_text())
    return 0


def _decide(store: ResultStore, verdicts: list, variants: dict, budgets, opt: dict, run_acc: dict | None = None) -> list:
    """Add batches of processes to INCONCLUSIVE cells (each batch a stricter look) until decided or a limit."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err()) as progress:
        task = progress.add_task("decide", total=None)
        for rounds in range(1, opt["max_rounds"] + 1):
            if not any(v.verdict == "INCONCLUSIVE" for v in verdicts):
                break
            progress.update(task, description=f"decide: round {rounds}/{opt['max_rounds']}")
            n = extend(store, verdicts, opt["max_processes"],
                       on_result=lambda r: progress.console.print(f"  [decide {rounds}] {r.verdict} {r.cell_id} processes={len(r.processes)} look {r.looks}"))
            if not n:
                break
            verdicts = gate.evaluate(store.all(), variants, budgets, run_acc)
    return verdicts


def _regressions(store: ResultStore, machine: dict, baseline: Path | None, rule: gate.RegressionRule) -> list:
    if baseline is None:
        return []
    base_store, _, base_machine = load_run(baseline)
    try:
        gate.check_same_machine(machine, base_machine)
    except gate.BaselineRefused as exc:
        raise usage(str(exc)) from None
    return gate.compare(store.all(), base_store.all(), rule)


@click.command("gate", epilog="Exit codes: 0 PASS, 1 FAIL/ERROR/regression, 2 usage error or refused baseline, 3 INCONCLUSIVE.")
@click.argument("run_dirs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--budgets", required=True, help="budgets YAML (see budgets/example.yaml)")
@click.option("--baseline", type=RUN_DIR, help="a baseline run folder from the same machine and runtime version (one RUN only)")
@click.option("--regression", default="10%:0.01", show_default=True, help="EFFECT%[:ALPHA]: slowdown of the per-process medians and one-sided Welch p")
@click.option("--decide", is_flag=True, help="add batches of processes to INCONCLUSIVE cells; batch j is judged at alpha/2^j, so the stated rate holds overall (one RUN only)")
@click.option("--max-rounds", type=click.IntRange(min=1), default=3, show_default=True, help="--decide: batches to add at most")
@click.option("--max-processes", type=click.IntRange(min=2), default=40, show_default=True, help="--decide: most processes a cell may reach")
@click.option("--out", type=RUN_DIR, help="where gate.json, gate.junit.xml and gate.md go (default: the first run folder)")
def gate_cmd(run_dirs: tuple[Path, ...], **opt) -> int:
    """Judge run folders against a budgets file (and a baseline run): PASS / FAIL / INCONCLUSIVE.

    Several folders, each measured on its own machine, are judged machine by machine: a cell is
    judged on its own machine's data only."""
    budgets = read_budgets(opt["budgets"])
    try:
        rule = gate.RegressionRule.parse(opt["regression"])
    except ValueError as exc:
        raise usage(f"--regression {opt['regression']!r}: {exc}") from None
    if len(run_dirs) > 1 and (opt["decide"] or opt["baseline"]):
        raise usage("--decide and --baseline take one run folder")
    if len(run_dirs) == 1:
        store, variants, machine = load_run(run_dirs[0])
        run_acc = load_run_accuracy(run_dirs[0])
        verdicts = gate.evaluate(store.all(), variants, budgets, run_acc)
        if opt["decide"]:
            verdicts = _decide(store, verdicts, variants, budgets, opt, run_acc)
        regressions = _regressions(store, machine, opt["baseline"], rule)
    else:
        verdicts, regressions = _per_machine(run_dirs, budgets), []
    code = gate.exit_code(verdicts, regressions)
    paths = gate.write_outputs(opt["out"] or run_dirs[0], verdicts, regressions, code)
    print(paths["markdown"].read_text())
    log(f"[gate] exit {code}; {', '.join(str(p) for p in paths.values())}")
    return code


def _per_machine(run_dirs: tuple[Path, ...], budgets) -> list:
    for d in run_dirs:
        load_run(d)  # a folder without cells/ is a usage error
    try:  # folder by folder: each one's accuracy.json goes with its own results
        groups = [(d, g) for d in run_dirs for g in gate_inputs([d])]
    except RunError as exc:
        raise usage(str(exc)) from None
    verdicts = []
    for d, (machine, results, variants) in groups:
        judged = gate.evaluate(results, variants, budgets, load_run_accuracy(d))
        verdicts += [dataclasses.replace(v, cell_id=f"[{machine.label}] {v.cell_id}") for v in judged]
    return verdicts


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--budgets", help="budgets YAML: the report then says which machine, profile and variant meet them")
@click.option("--out", type=RUN_DIR, help="output folder (default RUN/report for one folder, report-RUN1-vs-RUN2 beside the first)")
@click.option("--markdown", is_flag=True, help="print the Markdown report (for a PR comment)")
def report_cmd(run_dirs: tuple[Path, ...], budgets: str | None, out: Path | None, markdown: bool) -> int:
    """The hardware-selection report over one or more run folders (each from its own machine):
    an HTML page with plots, and its Markdown twin."""
    budget_file = read_budgets(budgets) if budgets else None
    for d in run_dirs:
        load_run(d)
    try:
        html_path, md_path = report.render_folders(run_dirs, budget_file, out)
    except RunError as exc:
        raise usage(str(exc)) from None
    print(md_path.read_text() if markdown else f"{html_path}\n{md_path}")
    return 0


@click.command("accuracy")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: every zoo model)")
@click.option("--runtime", multiple=True, help="runtime (repeatable; default: onnxruntime, openvino)")
@click.option("--recipe", type=click.Choice(["default", "full", "none"]), default="default", show_default=True,
              help="compressed variants to include (none = fp32 only)")
@click.option("--only", multiple=True, help="only these recipe steps, by key (repeatable), e.g. int8dyn")
@click.option("--out", type=RUN_DIR, help="also write accuracy.md (command, date and machine in its header) and accuracy.csv here")
def accuracy_cmd(model: tuple[str, ...], runtime: tuple[str, ...], recipe: str, only: tuple[str, ...], out: Path | None) -> int:
    """Task metric, fidelity and delta vs fp32 with 95% CIs, per variant and runtime (each runtime's own outputs)."""
    argv = [*(a for m in model for a in ("--model", m)), *(a for r in runtime for a in ("--runtime", r)),
            "--recipe", recipe, *(a for o in only for a in ("--only", o)), *(("--out", str(out)) if out else ())]
    return accuracy_table.main(argv)


@click.command("arm", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def arm_cmd(args: tuple[str, ...]) -> int:
    """The ARM functional check under qemu-user: `odbench arm setup [--refresh] [--best-effort]`,
    `odbench arm check RUN [--runtime R] [--accuracy MODEL]`, `odbench arm table RUN`."""
    try:
        return arm.main(list(args))
    except SystemExit as exc:  # argparse's usage errors
        return exc.code if isinstance(exc.code, int) else 2
