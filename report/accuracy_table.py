"""The accuracy table: every variant of the zoo models, on each runtime, with the task metric [95% CI],
fidelity, and the paired delta vs fp32 [95% CI], each measured from that runtime's own outputs.

Run: ``odbench accuracy [--model M ...] [--runtime R ...] [--recipe default] [--out DIR]``
(builds what is missing into ``$ODBENCH_CACHE`` or ./artifacts, prints a markdown table, and with
``--out`` writes DIR/accuracy.md, with the command, date and machine in its header, and DIR/accuracy.csv).
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from odbench.bench import provenance
from odbench.compressors.build import build_recipe
from odbench.compressors.recipes import RECIPES
from odbench.core.records import atomic_write_text
from odbench.models import get_model
from odbench.models.base import ZooTask
from odbench.verdicts.accuracy import runtime_accuracy_record

CSV_COLUMNS = ["model", "variant", "runtime", "runtime_version", "isa", "metric", "value", "lo", "hi", "delta", "delta_lo",
               "delta_hi", "fidelity_metric", "fidelity", "fidelity_lo", "fidelity_hi", "seconds", "error"]
HEADER = ("| model | variant | runtime | task metric [95% CI] | fidelity [95% CI] | "
          "delta vs fp32 on ONNX Runtime [paired 95% CI] |")


def _ci(acc: dict, key: str, pct: bool = False) -> str:
    if key not in acc:
        return "—"
    f = (lambda x: f"{x:+.4f}") if pct else (lambda x: f"{x:.4f}")
    lo, hi = acc.get(f"{key}_lo"), acc.get(f"{key}_hi")
    return f"{f(acc[key])} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(acc[key])


def variants_of(model, cache: Path, recipe: str, only: list[str] | None = None, log=print) -> list:
    base = model.build(cache, log=log)
    steps = tuple(s for s in RECIPES.get((model.name, recipe), ()) if not only or s.key in only)
    torch_task = getattr(model, "torch_task", None)
    built = build_recipe(base, steps, ZooTask(model, cache), cache / "variants" / model.name,
                         torch_task_factory=(lambda: torch_task(cache)) if torch_task else None, log=log)
    return [base] + [b.variant for b in built if b.variant is not None]


def measure(model, variants: list, runtimes: list[str], cache: Path, log=print) -> list[dict]:
    """One record per (variant, runtime): the model's primary task metric, its fidelity metric and the delta."""
    out = []
    m, fid = model.primary_metric, model.fidelity_metric
    for v in variants:
        for rt in runtimes:
            row = {"model": model.name, "variant": v.id.split("/", 1)[-1], "runtime": rt, "metric": m, "fidelity_metric": fid or ""}
            t0 = time.perf_counter()
            try:
                rec = runtime_accuracy_record(model, v, rt, cache)
            except Exception as exc:  # noqa: BLE001 - one failing cell is a row with its reason, the table goes on
                out.append({**row, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]})
                log(f"[accuracy] {v.id} on {rt}: {out[-1]['error']}")
                continue
            acc = rec.accuracy
            row.update(runtime_version=rec.runtime_version, isa=rec.isa, seconds=0.0 if rec.cached else round(time.perf_counter() - t0, 1))
            for col, key in (("value", m), ("delta", f"delta_{m}"), ("fidelity", fid)):
                if key and key in acc:
                    lo = "lo" if col == "value" else f"{col}_lo"
                    row.update({col: acc[key], lo: acc.get(f"{key}_lo"), lo[:-2] + "hi": acc.get(f"{key}_hi")})
            row["_acc"] = acc
            out.append(row)
            took = "cached" if rec.cached else f"{row['seconds']}s"
            log(f"[accuracy] {v.id} on {rt}: {m} {_ci(acc, m)} ({took})")
    return out


def markdown_row(r: dict) -> str:
    if r.get("error"):
        return f"| {r['model']} | {r['variant']} | {r['runtime']} | error: {r['error']} | | |"
    acc, m, fid = r["_acc"], r["metric"], r["fidelity_metric"]
    fid_text = f"{fid} {_ci(acc, fid)}" if fid else "—"
    return (f"| {r['model']} | {r['variant']} | {r['runtime']} {r.get('runtime_version', '')} | {m} {_ci(acc, m)} | {fid_text} | "
            f"{_ci(acc, f'delta_{m}', pct=True)} |")


def render(records: list[dict], argv: list[str]) -> str:
    mach = provenance.machine()
    lines = [
        "# Accuracy per variant and runtime",
        "",
        f"Command: `odbench accuracy {' '.join(argv)}`".rstrip() + f"; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {mach['cpu_model']} ({mach['arch']}), ISA {', '.join(mach['isa'])}, {mach['physical_cores']} physical cores; "
        f"Python {mach['python']}.",
        "",
        "Each figure is computed from that runtime's own outputs on the model's held-out test split (verdicts/accuracy.py, "
        "models/metrics.py): the task metric with its 95% interval (DeLong for AUC, a bootstrap over test examples otherwise), "
        "fidelity to the fp32 reference, and the delta of the task metric vs the fp32 baseline **on ONNX Runtime**, "
        "paired over the same test examples (on OpenVINO's fp32 row it is OpenVINO's own deviation).",
        "",
        HEADER,
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [markdown_row(r) for r in records]) + "\n"


def to_csv(records: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    return buf.getvalue()


def accuracy_report(models: list[str], runtimes: list[str], recipe: str, only: list[str] | None, cache: Path,
                    argv: list[str], out: Path | None = None, log=print) -> str:
    """The table over ``models`` (zoo names) on ``runtimes``; with ``out``, also DIR/accuracy.md and accuracy.csv.
    ``argv``: the command as typed, for the header."""
    records = []
    for name in models:
        model = get_model(name)
        records += measure(model, variants_of(model, cache, recipe, only, log=log), runtimes, cache, log=log)
    md = render(records, argv)
    if out is not None:
        atomic_write_text(Path(out) / "accuracy.md", md)
        atomic_write_text(Path(out) / "accuracy.csv", to_csv(records))
    return md
