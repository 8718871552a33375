"""`odbench table`, `gate` and `report`: what a finished run folder says (api/verdicts.py)."""
from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from odbench.api import verdicts as api
from odbench.cli.common import err, log, usage
from odbench.verdicts.regression_paired import DEFAULT_LOOKS

RUN_DIR = click.Path(file_okay=False, path_type=Path)


@click.command("table")
@click.argument("run_dir", type=RUN_DIR)
def table_cmd(run_dir: Path) -> int:
    """Regenerate table.md and table.csv of a run folder."""
    md, _csv = api.table(run_dir)
    print(md.read_text())
    return 0


@click.command("gate", epilog="Exit codes: 0 PASS, 1 FAIL/ERROR/regression, 2 usage error or refused baseline, "
               "3 INCONCLUSIVE (a budget, or a paired regression check).")
@click.argument("run_dirs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--budgets", required=True, help="budgets YAML (see budgets/example.yaml)")
@click.option("--baseline", type=RUN_DIR, help="a baseline run folder from the same machine and runtime version (one RUN only)")
@click.option("--regression", default="10%:0.01", show_default=True,
              help="EFFECT%[:ALPHA]: the per-process medians at least EFFECT slower with confidence (permutation test); "
                   "ALPHA the family-wise error over the cells (Holm)")
@click.option("--decide", is_flag=True, help="add batches of processes to INCONCLUSIVE cells; batch j is judged at "
              "alpha/2^j, so the stated rate holds overall (one RUN only)")
@click.option("--max-rounds", type=click.IntRange(min=1), default=3, show_default=True, help="--decide: batches to add at most")
@click.option("--max-processes", type=click.IntRange(min=2), default=80, show_default=True,
              help="--decide: most processes a cell may reach (a PASS needs 57 at look 1, 64 at look 2, 71 at look 3)")
@click.option("--min-group", type=click.FloatRange(0.001, 0.99), default=None,
              help="the assumption a PASS rests on: a group of processes that differs is at least this share of them "
                   "(default: the budgets file's min_group, 0.10)")
@click.option("--no-paired", "no_paired", is_flag=True,
              help="--baseline: run-against-run only (the per-process medians of the two runs), no paired processes")
@click.option("--paired-looks", default=",".join(map(str, DEFAULT_LOOKS)), show_default=True,
              help="--baseline: cumulative paired processes per cell at each look (stops once decided)")
@click.option("--out", type=RUN_DIR, help="where gate.json, gate.junit.xml and gate.md go (default: the first run folder)")
def gate_cmd(run_dirs: tuple[Path, ...], **opt) -> int:
    """Judge run folders against a budgets file (and a baseline run): PASS / FAIL / INCONCLUSIVE.

    Several folders, each measured on its own machine, are judged machine by machine: a cell is
    judged on its own machine's data only. With --baseline, each cell's regression check times both model files
    in the same fresh processes (paired) where it can, and says which design gave each row."""
    try:
        looks = tuple(int(x) for x in opt["paired_looks"].split(","))
    except ValueError:
        raise usage(f"--paired-looks {opt['paired_looks']!r}: expected comma-separated process counts") from None
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err(),
                  disable=not opt["decide"]) as progress:
        task = progress.add_task("decide", total=None)
        outcome = api.gate(
            run_dirs, opt["budgets"], baseline=opt["baseline"], regression=opt["regression"],
            decide_rounds=opt["max_rounds"] if opt["decide"] else 0, max_processes=opt["max_processes"], out=opt["out"],
            min_group=opt["min_group"], paired=not opt["no_paired"], paired_looks=looks, log=log,
            on_round=lambda n: progress.update(task, description=f"decide: round {n}/{opt['max_rounds']}"),
            on_result=lambda r: progress.console.print(f"  [decide] {r.verdict} {r.cell_id} processes={len(r.processes)} look {r.looks}"))
    print(outcome.paths["markdown"].read_text())
    log(f"[gate] exit {outcome.exit_code}; {', '.join(str(p) for p in outcome.paths.values())}")
    return outcome.exit_code


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=RUN_DIR)
@click.option("--budgets", help="budgets YAML: the report then says which machine, profile and variant meet them")
@click.option("--out", type=RUN_DIR, help="output folder (default RUN/report for one folder, report-RUN1-vs-RUN2 beside the first)")
@click.option("--markdown", is_flag=True, help="print the Markdown report (for a PR comment)")
def report_cmd(run_dirs: tuple[Path, ...], budgets: str | None, out: Path | None, markdown: bool) -> int:
    """The hardware-selection report over one or more run folders (each from its own machine):
    an HTML page with plots, and its Markdown twin."""
    html_path, md_path = api.report(run_dirs, budgets, out)
    print(md_path.read_text() if markdown else f"{html_path}\n{md_path}")
    return 0
