"""Comparison tables (Markdown and CSV), one row per cell, regenerated from a run folder."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from odbench.bench.run_folder import RunFolder
from odbench.compressors.mobile import is_export
from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, Variant, atomic_write_text, lineage_root
from odbench.models.metrics import point_metrics
from odbench.report import paired_figures
from odbench.report.build_notes import build_notes
from odbench.report.figures import Estimate, delta_estimate, stat_estimate, task_metric
from odbench.report.table_text import (
    ACCURACY_NOTE,
    TABLE_NOTE,
    not_ok_notes,
    overhead_line,
    render_markdown,
    unreadable_lines,
    warnings_summary,
)
from odbench.stats import intervals
from odbench.stats import paired as stats_paired
from odbench.verdicts.accuracy import RuntimeAccuracy, load_run_accuracy, row_accuracy

COLUMNS = [
    "model", "variant", "parent", "compressor", "runtime", "profile", "measured_on", "scenario", "verdict",
    "processes", "n", "p50_ms", "p50_lo", "p50_hi", "p90_ms", "p90_lo", "p90_hi", "p95_ms", "p95_lo", "p95_hi",
    "p99_ms", "p99_lo", "p99_hi", "mean_ms", "cv", "between_cv", "between_cv_lo", "between_cv_hi",
    "speedup_vs_fp32", "speedup_vs_fp32_lo", "speedup_vs_fp32_hi", "speedup_vs_fp32_design",
    "speedup_vs_ort", "speedup_vs_ort_lo", "speedup_vs_ort_hi",
    "items_per_s", "items_per_s_lo", "items_per_s_hi",
    "parity_vs_fp32", "parity_vs_ort", "max_abs_diff_vs_fp32", "max_abs_diff_vs_ort", "session_ms", "first_ms", "peak_rss_mb",
    "size_mb", "gzip_mb", "emb_mb", "dense_mb", "sparsity", "params",
    "accuracy", "acc_delta_vs_fp32", "task_metric", "task_delta_vs_fp32", "task_delta_lo", "task_delta_hi",
    "gating", "warnings", "reason",
] + paired_figures.EXTRA_COLUMNS  # the paired design's companions: the isolated speedup beside it, pairing cost
# The Markdown table keeps the columns a user decides on (one table per model, profile and scenario);
# the CSV has them all.
MD_COLUMNS = ["variant", "runtime", "p50 ms [95% CI]", "speedup vs fp32 [95% CI]", "task Δ vs fp32 [95% CI]", "size MB", "verdict"]
# Functional checks (e.g. an aarch64 profile under qemu-user): outputs are real, time is not.
FUNCTIONAL_COLUMNS = ["variant", "runtime", "profile", "scenario", "verdict", "parity_vs_fp32", "reason"]


def runtime_label(runtime: str, options: dict) -> str:
    """'onnxruntime' or 'onnxruntime[graph_optimization=basic]'."""
    if not options:
        return runtime
    return f"{runtime}[{','.join(f'{k}={v}' for k, v in sorted(options.items()))}]"


def parity_text(metrics: dict | None) -> str:
    """'cos 0.9879' for embeddings, 'top10 0.80 ρ 0.975' for rankings; '' when not compared."""
    if not metrics:
        return ""
    parts = []
    if "top10_overlap" in metrics:
        parts.append(f"top10 {metrics['top10_overlap']:.2f} ρ {metrics['spearman']:.3f}")
    if "cosine" in metrics:
        parts.append(f"cos {metrics['cosine']:.4f}")
    return " ".join(parts)


def _fmt(v, digits=3):
    if v is None:
        return ""
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _ci(point, lo, hi, digits=3) -> str:
    """'1.23 [1.10, 1.38]'; the point alone when the interval is unknown."""
    if point is None or point != point:
        return ""
    if lo is None or hi is None or lo != lo or hi != hi:
        return _fmt(point, digits)
    return f"{_fmt(point, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def _metric_text(k: str, acc: dict) -> str:
    """'auc=0.6900 [0.6827, 0.6973]' (the interval when recorded)."""
    lo, hi = acc.get(f"{k}_lo"), acc.get(f"{k}_hi")
    return f"{k}={acc[k]:.4f}" + (f" [{lo:.4f}, {hi:.4f}]" if lo is not None and hi is not None else "")


def _delta_text(k: str, acc: dict, base: dict) -> str:
    """The paired delta vs fp32 with its interval where the variant records it, else the bare difference."""
    d, lo, hi = acc.get(f"delta_{k}"), acc.get(f"delta_{k}_lo"), acc.get(f"delta_{k}_hi")
    if d is not None and lo is not None and hi is not None:
        return f"{k}={d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
    if d is not None:
        return f"{k}={d:+.4f}"
    return f"{k}={acc[k] - base[k]:+.4f}"


def options_key(options: dict) -> str:
    return json.dumps(options or {}, sort_keys=True)


def cell_key(variant_id: str, r: Result, runtime: str | None = None, options: dict | None = None) -> tuple:
    """What identifies a cell in a run for comparisons: the runtime's options included (a sweep has
    several cells per runtime)."""
    rt = r.runtime if runtime is None else runtime
    opts = r.runtime_options if options is None else options
    return (variant_id, rt, options_key(opts), r.profile, r.scenario)


def base_cell(r: Result, by_key: dict, variants: dict[str, Variant], against: str = "fp32") -> Result | None:
    """The cell ``r`` is compared with: its lineage's fp32 root on the same runtime, options, profile and
    scenario (``fp32``), or the same variant on default ONNX Runtime (``ort``)."""
    same_fp32, ort_id = comparison_ids(r.variant_id, variants)  # a mobile export: its runtime's fp32 export; its parent on ORT
    if against == "fp32":
        return by_key.get(cell_key(same_fp32, r))
    return by_key.get(cell_key(ort_id, r, REFERENCE_RUNTIME, {}))


@dataclass(frozen=True)
class Speedup:
    """base / cell time with its 95% interval, and the design that measured it."""

    ratio: float
    lo: float
    hi: float
    design: str  # "isolated": two sets of separate processes (Welch); "paired": the two shared processes


# (base variant id, cell) -> (speedup, lo, hi) from processes the two shared, or None: the paired design's figures
# (issue 25) plug in here; a run without them passes None.
PairedLookup = Callable[[str, Result], "tuple[float, float, float] | None"]


def speedup_of(r: Result, by_key: dict, variants: dict[str, Variant], against: str = "fp32",
               paired: PairedLookup | None = None) -> Speedup | None:
    """THE accessor every table, decision and plot reads a speedup through (``against``: "fp32" or "ort"):
    the paired figure where the run measured the pair in shared processes (``paired``), else ``speedup``
    over isolated processes."""
    if r.runtime in HARNESS_RUNTIMES:
        return None
    base = base_cell(r, by_key, variants, against)
    ratio = speedup(base, r)
    if paired is not None and base is not None and base is not r:
        got = paired(base.variant_id, r) if base.runtime == r.runtime else None
        if got is not None and (ratio is None or paired_agrees(tuple(map(float, got)), ratio)):
            return Speedup(*map(float, got), "paired")
        if got is not None:  # sharing a process moved this ratio beyond both intervals: the isolated figure stands
            return Speedup(ratio.ratio, ratio.lo, ratio.hi, ISOLATED_OVER_PAIRED)
    return None if ratio is None else Speedup(ratio.ratio, ratio.lo, ratio.hi, "isolated")


# The design of a speedup whose paired figure disagreed with the isolated one (stats/paired.design_difference):
# measured on the Xeon, MiniLM fp32 paid 5.6% for sharing a process with int8-dyn and int8-dyn 1.9%, which moved
# the paired speedup 3.5% [2.1%, 4.7%] above 30 isolated processes a side (docs/paired.md).
ISOLATED_OVER_PAIRED = "isolated (paired disagreed)"


def paired_agrees(paired_figure: tuple[float, float, float], isolated: intervals.Ratio) -> bool:
    """Whether the paired speedup and the isolated one agree (their ratio's 95% interval holds 1); a figure without
    a finite interval on either side cannot be checked and is taken as it is."""
    figures = (*paired_figure, isolated.ratio, isolated.lo, isolated.hi)
    if not all(math.isfinite(x) and x > 0 for x in figures):
        return True
    _, lo, hi = stats_paired.design_difference(paired_figure, (isolated.ratio, isolated.lo, isolated.hi))
    return lo <= 1 <= hi


def speedup(base: Result | None, r: Result) -> intervals.Ratio | None:
    """base / r of the per-process medians (Welch interval on the logs); None when not comparable."""
    if base is None or base is r or base.verdict in NOT_MEASURED or r.verdict in NOT_MEASURED:
        return None
    if not base.process_medians_ms or not r.process_medians_ms:
        return None
    return intervals.ratio_interval(base.process_medians_ms, r.process_medians_ms)


def accuracy_columns(r: Result, variants: dict[str, Variant], run_acc: dict[tuple, RuntimeAccuracy] | None) -> dict[str, str]:
    """``accuracy`` and ``acc_delta_vs_fp32`` from the row's own runtime (bench/accuracy.row_accuracy): never
    ONNX Runtime's figure on another runtime's row. The delta is against the fp32 baseline on ONNX Runtime
    (paired over the same test examples where the record has the interval)."""
    v = variants.get(r.variant_id)
    if r.runtime in HARNESS_RUNTIMES or v is None:
        return {"accuracy": "", "acc_delta_vs_fp32": ""}
    acc, why = row_accuracy(r, variants, run_acc)
    if acc is None:
        return {"accuracy": why, "acc_delta_vs_fp32": why}
    base_v = variants.get(lineage_root(r.variant_id, variants))
    delta = ""
    trivial = v is base_v and r.runtime == REFERENCE_RUNTIME and not r.runtime_options  # fp32 on ORT vs itself
    if base_v is not None and not trivial:
        delta = " ".join(_delta_text(k, acc, base_v.accuracy) for k in point_metrics(acc)
                         if f"delta_{k}" in acc or k in base_v.accuracy)
    return {"accuracy": " ".join(_metric_text(k, acc) for k in point_metrics(acc)), "acc_delta_vs_fp32": delta}


def comparison_ids(variant_id: str, variants: dict[str, Variant]) -> tuple[str, str]:
    """(the fp32 variant on the same runtime, the variant ONNX Runtime is compared on). A mobile export
    (compressors/mobile.py) has no ONNX Runtime run of its own: its fp32 is the fp32 export of the same
    parent on its runtime, and ONNX Runtime's figure is its parent's (the fp32 ONNX)."""
    root = lineage_root(variant_id, variants)
    v = variants.get(variant_id)
    if not is_export(v):
        return root, variant_id
    fp32 = next((x.id for x in variants.values() if x.parent == v.parent and x.compressor == v.compressor
                 and x.config.get("quant") == "fp32"), root)
    return fp32, v.parent or root
def task_delta(r: Result, variants: dict[str, Variant], run_acc, metric: str | None) -> tuple[Estimate | None, str]:
    """The row's task-metric delta vs fp32 on ONNX Runtime (its own runtime's figure), or (None, why not).
    The fp32 root on default ONNX Runtime is the reference itself: exactly 0."""
    v = variants.get(r.variant_id)
    if r.runtime in HARNESS_RUNTIMES or v is None:
        return None, ""
    if metric is None:
        return None, "no task metric recorded"
    root = lineage_root(r.variant_id, variants)
    if _is_reference(r, variants):
        return Estimate(0.0, 0.0, 0.0), ""
    acc, why = row_accuracy(r, variants, run_acc)
    if acc is None:
        return None, why
    base_v = variants.get(root)
    d = delta_estimate(acc, base_v.accuracy if base_v else None, metric)
    return d, ("" if d is not None else f"no {metric} delta recorded")


def _task_columns(r: Result, variants, run_acc, metric: str | None) -> dict[str, str]:
    d, why = task_delta(r, variants, run_acc, metric)
    return {"task_metric": metric or "", "task_delta_vs_fp32": _fmt(d.value, 4) if d else "",
            "task_delta_lo": _fmt(d.lo, 4) if d and d.has_interval else "", "task_delta_hi": _fmt(d.hi, 4) if d and d.has_interval else "",
            "task Δ vs fp32 [95% CI]": ("0 (reference)" if d == Estimate(0.0, 0.0, 0.0) and _is_reference(r, variants)
                                        else d.text(".4f", signed=True) if d else why)}


def _is_reference(r: Result, variants: dict[str, Variant]) -> bool:
    return r.variant_id == lineage_root(r.variant_id, variants) and r.runtime == REFERENCE_RUNTIME and not r.runtime_options


def row(r: Result, variants: dict[str, Variant], results_by_key: dict | None = None,
        run_acc: dict[tuple, RuntimeAccuracy] | None = None, metric: str | None = None,
        paired: PairedLookup | None = None) -> dict[str, str]:
    """One table row. ``run_acc``: the run's accuracy.json records (None: a run from before them);
    ``metric``: the model's task metric (figures.task_metric)."""
    harness = r.runtime in HARNESS_RUNTIMES
    v = variants.get(r.variant_id) if not harness else None
    by_key = results_by_key or {}
    vs_fp32 = speedup_of(r, by_key, variants, "fp32", paired)
    vs_ort = speedup_of(r, by_key, variants, "ort", paired)
    par = r.parity or {}
    s = r.stats or {}
    p50 = stat_estimate(s, "p50")
    return {
        "model": r.model,
        "variant": r.variant_id.split("/", 1)[-1] + (f" ({v.config['label']})" if v and v.config.get("label") else ""),
        "parent": (v.parent or "").split("/", 1)[-1] if v else "",
        "compressor": (v.compressor or "") if v else "",
        **_ratio_columns("speedup_vs_fp32", vs_fp32),
        **_ratio_columns("speedup_vs_ort", vs_ort),
        "speedup_vs_fp32_design": vs_fp32.design if vs_fp32 else "",
        "parity_vs_fp32": parity_text(par.get("fp32")) or ("not checked" if par.get("error") else ""),
        "parity_vs_ort": parity_text(par.get("runtime")),
        "max_abs_diff_vs_fp32": _fmt((par.get("fp32") or {}).get("max_abs_diff")),
        "max_abs_diff_vs_ort": _fmt((par.get("runtime") or {}).get("max_abs_diff")),
        "gzip_mb": _fmt(v.gzip_bytes / 2**20) if v and v.gzip_bytes else "",
        "emb_mb": _fmt(v.embedding_mb) if v and v.embedding_mb is not None else "",
        "dense_mb": _fmt(v.dense_mb) if v and v.dense_mb is not None else "",
        "sparsity": _fmt(v.sparsity, 2) if v and v.sparsity is not None else "",
        "runtime": runtime_label(r.runtime, r.runtime_options),
        "profile": r.profile,
        "measured_on": r.measured_on,
        "scenario": r.scenario,
        "verdict": str(r.verdict),
        "processes": str(len(r.process_samples)) + ("" if r.processes_known else "?") if r.process_samples else "",
        "n": str(r.n_samples) if r.n_samples else "",
        **_percentile_columns(s),
        "mean_ms": _fmt(s.get("mean")),
        "cv": _fmt(s.get("cv"), 2),
        "between_cv": _fmt(s.get("between_cv"), 2),
        "between_cv_lo": _fmt(s.get("between_cv_lo"), 2),
        "between_cv_hi": _fmt(s.get("between_cv_hi"), 2),
        "items_per_s": _fmt(r.throughput_items_s),
        "items_per_s_lo": _fmt(s.get("throughput_lo")),
        "items_per_s_hi": _fmt(s.get("throughput_hi")),
        "session_ms": _fmt(r.session_create_ms),
        "first_ms": _fmt(r.first_inference_ms),
        "peak_rss_mb": _fmt(r.peak_rss_mb),
        "size_mb": _fmt(v.size_bytes / 2**20) if v else "",
        "params": str(v.params) if v and v.params else "",
        **accuracy_columns(r, variants, run_acc),
        **_task_columns(r, variants, run_acc, metric),
        "p50 ms [95% CI]": p50.text() if p50 else "",
        "speedup vs fp32 [95% CI]": _speedup_text(r, vs_fp32, variants),
        "size MB": _fmt(v.size_bytes / 2**20) if v else "",
        "gating": "yes" if r.gating else "no",
        "warnings": "; ".join(r.warnings).replace("\n", " ").replace("|", "/")[:400],
        "reason": r.reason.replace("\n", " ").replace("|", "/")[:240],
    }


def _speedup_text(r: Result, ratio: Speedup | None, variants: dict[str, Variant]) -> str:
    if ratio is not None:
        e = Estimate.of(ratio.ratio, ratio.lo, ratio.hi)
        tag = {"paired": " paired", ISOLATED_OVER_PAIRED: " isolated (paired disagreed)"}.get(ratio.design, "")
        return (e.text() + tag) if e else ""
    if r.variant_id == lineage_root(r.variant_id, variants) and r.verdict not in NOT_MEASURED and r.runtime not in HARNESS_RUNTIMES:
        return "1 (reference)"
    return ""


def _percentile_columns(s: dict) -> dict[str, str]:
    out = {}
    for q in (50, 90, 95, 99):
        p, lo, hi = s.get(f"p{q}"), s.get(f"p{q}_lo"), s.get(f"p{q}_hi")
        out.update({f"p{q}_ms": _fmt(p), f"p{q}_lo": _fmt(lo), f"p{q}_hi": _fmt(hi), f"p{q} [95% CI]": _ci(p, lo, hi)})
    return out


def _ratio_columns(name: str, ratio: Speedup | None) -> dict[str, str]:
    if ratio is None:
        return {name: "", f"{name}_lo": "", f"{name}_hi": "", f"{name} [95% CI]": ""}
    return {name: _fmt(ratio.ratio), f"{name}_lo": _fmt(ratio.lo), f"{name}_hi": _fmt(ratio.hi),
            f"{name} [95% CI]": _ci(ratio.ratio, ratio.lo, ratio.hi)}


def sorted_results(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (r.runtime in HARNESS_RUNTIMES, r.model, r.scenario, r.profile, r.runtime,
                                          not r.variant_id.endswith("/fp32"), r.variant_id))


def _section(rows: list[dict], results: list[Result], metric: str | None, title: str) -> list[str]:
    """One model's rows on one profile; a scenario column only when the rows span several."""
    scenarios = sorted({r.scenario for r in results})
    cols = [c.replace("task Δ", f"{metric} Δ") if c.startswith("task Δ") and metric else c for c in MD_COLUMNS]
    for row_ in rows:
        row_[cols[4]] = row_["task Δ vs fp32 [95% CI]"]
    if len(scenarios) == 1:
        title += f" · {scenarios[0]}"
    else:
        cols.insert(2, "scenario")
    return [title, "", render_markdown(rows, cols)] + not_ok_notes(results) + [""]


def _sections(rows: list[dict], results: list[Result], metrics: dict[str, str | None]) -> list[str]:
    out = []
    by: dict[tuple, list] = {}
    for row_, r in zip(rows, results):
        if r.runtime not in HARNESS_RUNTIMES:
            by.setdefault((r.model, r.profile), []).append((row_, r))
    for (model, profile), pairs in by.items():
        out += _section([p[0] for p in pairs], [p[1] for p in pairs], metrics.get(model), f"### {model} · {profile}")
    return out


def write_tables(run_dir: str | Path, paired: PairedLookup | None = None) -> tuple[Path, Path]:
    """RUN/table.md (the columns a user decides on, one table per model and profile; functional checks
    apart; warnings once per run) and RUN/table.csv (every column). ``paired``: the run's paired speedups."""
    folder = RunFolder.open(run_dir)
    run_dir = folder.root
    results = sorted_results(folder.results())
    variants = folder.variants()
    by_key = {cell_key(r.variant_id, r): r for r in results}
    run_acc = load_run_accuracy(folder)
    metrics = {m: task_metric(m, [v.accuracy for v in variants.values() if v.model == m]) for m in {r.model for r in results}}
    index = paired_figures.load_index(run_dir)  # RUN/paired/: the comparison groups of bench/paired_plan.py
    paired = paired if paired is not None else paired_figures.lookup(index)
    rows = [{**row(r, variants, by_key, run_acc, metrics.get(r.model), paired),
             **paired_figures.extra_columns(r, variants, index, speedup(base_cell(r, by_key, variants), r))}
            for r in results]
    machine = folder.machine()
    md = [f"# Benchmark results: {run_dir.name}", ""]
    if machine:
        md += [f"Machine: {machine.get('cpu_model')} ({machine.get('arch')}), {machine.get('physical_cores')} physical cores, "
               f"{machine.get('memory_mb')} MB, ISA {', '.join(machine.get('isa', []))}; Python {machine.get('python')}.", ""]
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r.verdict)] = counts.get(str(r.verdict), 0) + 1
    md += [f"{len(results)} cells: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ". " + TABLE_NOTE]
    md += unreadable_lines(results) + ["", overhead_line(results), ""]
    # Device measurements, host emulations and untimed functional checks are never mixed in one table.
    for where, title in (("device", "Measured on the device"),
                         ("emulated", "Emulated on this host (threads, affinity, memory cap, ISA cap where the runtime honours it)")):
        part = [(row_, r) for row_, r in zip(rows, results) if r.measured_on == where]
        if part:
            md += [f"## {title}", ""] + _sections([p[0] for p in part], [p[1] for p in part], metrics)
    functional = [(row_, r) for row_, r in zip(rows, results) if r.measured_on not in ("device", "emulated")]
    if functional:
        md += ["## Functional checks (outputs compared, no timing)", "",
               render_markdown([{**row_, "reason": row_["reason"][:120]} for row_, _ in functional], FUNCTIONAL_COLUMNS), ""]
    md += build_notes(run_dir)
    warns = warnings_summary([r for r in results if r.measured_on in ("device", "emulated")])
    if warns:
        md += ["## Warnings (each cell's own are in its JSON and in `table.csv`)", ""] + [f"- {w}" for w in warns] + [""]
    md.append(ACCURACY_NOTE + ("" if run_acc is not None else
                               " This run has no `accuracy.json` (it predates per-runtime accuracy, or ran with --no-accuracy)."))
    md.append("")
    md.append("Every other column (p90-p99, between-process CV, speedup vs ONNX Runtime, throughput, parity, memory, "
              "lineage, ...) is in `table.csv`; raw samples in `cells/`.")
    md_path = run_dir / "table.md"
    atomic_write_text(md_path, "\n".join(md))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = run_dir / "table.csv"
    atomic_write_text(csv_path, buf.getvalue())
    return md_path, csv_path
