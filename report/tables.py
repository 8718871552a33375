"""Comparison tables (Markdown and CSV), one row per cell, regenerated from a run folder."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from odbench.stats import intervals
from odbench.verdicts.accuracy import RuntimeAccuracy, load_run_accuracy, row_accuracy
from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, Variant, atomic_write_text, lineage_root
from odbench.bench.run_folder import RunFolder, is_unreadable
from odbench.models.metrics import point_metrics

COLUMNS = [
    "model", "variant", "parent", "compressor", "runtime", "profile", "measured_on", "scenario", "verdict",
    "processes", "n", "p50_ms", "p50_lo", "p50_hi", "p90_ms", "p90_lo", "p90_hi", "p95_ms", "p95_lo", "p95_hi",
    "p99_ms", "p99_lo", "p99_hi", "mean_ms", "cv", "between_cv", "between_cv_lo", "between_cv_hi",
    "speedup_vs_fp32", "speedup_vs_fp32_lo", "speedup_vs_fp32_hi", "speedup_vs_ort", "speedup_vs_ort_lo", "speedup_vs_ort_hi",
    "items_per_s", "items_per_s_lo", "items_per_s_hi",
    "parity_vs_fp32", "parity_vs_ort", "max_abs_diff_vs_fp32", "max_abs_diff_vs_ort", "session_ms", "first_ms", "peak_rss_mb", "size_mb", "gzip_mb", "emb_mb", "dense_mb", "sparsity", "params",
    "accuracy", "acc_delta_vs_fp32", "gating", "reason",
]
# The Markdown table keeps the columns a reader compares; the CSV has them all.
MD_COLUMNS = [
    "model", "variant", "parent", "scenario", "runtime", "profile", "verdict", "processes", "p50 [95% CI]", "p95 [95% CI]",
    "p99 [95% CI]", "between_cv", "speedup_vs_fp32 [95% CI]", "speedup_vs_ort [95% CI]", "items_per_s", "parity_vs_fp32", "parity_vs_ort", "first_ms", "peak_rss_mb",
    "size_mb", "emb_mb", "accuracy", "acc_delta_vs_fp32", "reason",
]


ACCURACY_NOTE = (
    "Accuracy: `accuracy` is the task metrics [95% CI] (and fidelity) computed from the outputs of the row's own runtime "
    "on the model's test split (`accuracy.json`, verdicts/accuracy.py); `acc_delta_vs_fp32` is that figure minus the fp32 "
    "baseline's on ONNX Runtime, paired over the same test examples [95% CI] (on an fp32 row of another runtime it is "
    "that runtime's own deviation). A default ONNX Runtime row without a record shows the variant's build-time figure, "
    "measured on ONNX Runtime; any other row without one says `not measured on R` (with the reason when evaluation failed).")


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


def row(r: Result, variants: dict[str, Variant], results_by_key: dict | None = None,
        run_acc: dict[tuple, RuntimeAccuracy] | None = None) -> dict[str, str]:
    """One table row. ``run_acc``: the run's accuracy.json records (None: a run from before them)."""
    harness = r.runtime in HARNESS_RUNTIMES
    v = variants.get(r.variant_id) if not harness else None
    root = lineage_root(r.variant_id, variants)  # the fp32 (or as-is) baseline of the lineage
    by_key = results_by_key or {}
    vs_fp32 = speedup(by_key.get(cell_key(root, r)), r) if not harness else None
    ref = by_key.get(cell_key(r.variant_id, r, REFERENCE_RUNTIME, {}))
    vs_ort = speedup(ref, r) if not harness else None
    par = r.parity or {}
    s = r.stats or {}
    reason = r.reason
    if r.warnings and r.verdict not in NOT_MEASURED:
        more = f" (+{len(r.warnings) - 1} more warnings in the cell JSON)" if len(r.warnings) > 1 else ""
        reason = "; ".join(filter(None, [reason, r.warnings[0] + more]))
    return {
        "model": r.model,
        "variant": r.variant_id.split("/", 1)[-1],
        "parent": (v.parent or "").split("/", 1)[-1] if v else "",
        "compressor": (v.compressor or "") if v else "",
        **_ratio_columns("speedup_vs_fp32", vs_fp32),
        **_ratio_columns("speedup_vs_ort", vs_ort),
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
        "gating": "yes" if r.gating else "no",
        "reason": reason.replace("\n", " ").replace("|", "/")[:240],
    }


def _percentile_columns(s: dict) -> dict[str, str]:
    out = {}
    for q in (50, 90, 95, 99):
        p, lo, hi = s.get(f"p{q}"), s.get(f"p{q}_lo"), s.get(f"p{q}_hi")
        out.update({f"p{q}_ms": _fmt(p), f"p{q}_lo": _fmt(lo), f"p{q}_hi": _fmt(hi), f"p{q} [95% CI]": _ci(p, lo, hi)})
    return out


def _ratio_columns(name: str, ratio: intervals.Ratio | None) -> dict[str, str]:
    if ratio is None:
        return {name: "", f"{name}_lo": "", f"{name}_hi": "", f"{name} [95% CI]": ""}
    return {name: _fmt(ratio.ratio), f"{name}_lo": _fmt(ratio.lo), f"{name}_hi": _fmt(ratio.hi),
            f"{name} [95% CI]": _ci(ratio.ratio, ratio.lo, ratio.hi)}


def sorted_results(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (r.runtime in HARNESS_RUNTIMES, r.model, r.scenario, r.profile, r.runtime,
                                          not r.variant_id.endswith("/fp32"), r.variant_id))


def render_markdown(rows: list[dict[str, str]], columns=COLUMNS) -> str:
    out = io.StringIO()
    out.write("| " + " | ".join(columns) + " |\n")
    out.write("|" + "---|" * len(columns) + "\n")
    for r in rows:
        out.write("| " + " | ".join(r[c] for c in columns) + " |\n")
    return out.getvalue()


def overhead_line(results: list[Result]) -> str:
    nulls = [r for r in results if r.runtime == "null" and r.verdict not in NOT_MEASURED and r.stats]
    if not nulls:
        return "Harness overhead: not measured in this run."
    parts = [
        f"{r.profile}/{r.scenario}: p50 {r.stats['p50'] * 1000:.1f} µs, p99 {r.stats['p99'] * 1000:.1f} µs "
        f"({r.stats['p50'] / 1.0:.2%} of a 1 ms inference)"
        for r in nulls
    ]
    return "Harness overhead (null session, per timed sample): " + "; ".join(parts)


def unreadable_lines(results: list[Result]) -> list[str]:
    """The cell files that could not be read (their rows are ERROR), named once above the tables."""
    bad = [r for r in results if is_unreadable(r)]
    if not bad:
        return []
    return ["", f"**{len(bad)} result file(s) could not be read** (ERROR rows; `odbench run --out` this folder "
            "rebuilds each from its parts/ or reruns it):", *(f"- `{r.cell_id}`: {r.reason}" for r in bad)]


def write_tables(run_dir: str | Path) -> tuple[Path, Path]:
    folder = RunFolder.open(run_dir)
    run_dir = folder.root
    results = sorted_results(folder.results())
    variants = folder.variants()
    by_key = {cell_key(r.variant_id, r): r for r in results}
    run_acc = load_run_accuracy(folder)
    rows = [row(r, variants, by_key, run_acc) for r in results]
    machine = folder.machine()
    md = [f"# Benchmark results: {run_dir.name}", ""]
    if machine:
        md.append(
            f"Machine: {machine.get('cpu_model')} ({machine.get('arch')}), {machine.get('physical_cores')} physical cores, "
            f"{machine.get('memory_mb')} MB, ISA {', '.join(machine.get('isa', []))}; Python {machine.get('python')}, "
            f"kernel {machine.get('kernel')}."
        )
        md.append("")
    counts = {}
    for r in results:
        counts[str(r.verdict)] = counts.get(str(r.verdict), 0) + 1
    md.append(f"{len(results)} cells: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    md += unreadable_lines(results)
    md.append("Latencies in ms, one inference per sample. `measured_on` says whether the profile is this machine "
              "(`device`) or emulated on it (`emulated`). `gating: no` marks smoke runs that a release gate must not trust. Every interval is 95% with the fresh process as the unit of replication (stats/intervals.py): percentiles of the population of processes, speedups as ratios of per-process medians (Welch on logs); `between_cv` is the CV of the per-process medians; `processes` ends in `?` for old results whose process boundaries are lost. Verdicts: FAIL = timed, but the outputs do not match the references (parity); SKIPPED = could not run here, with the reason.")
    md.append("")
    md.append(overhead_line(results))
    md.append("")
    # Device measurements and host emulations are never mixed in one table.
    for where, title in (("device", "Measured on the device"), ("emulated", "Emulated on this host (threads, affinity, memory cap, ISA cap where the runtime honours it)")):
        part = [row_ for row_, r in zip(rows, results) if r.measured_on == where]
        if part:
            md += [f"## {title}", "", render_markdown(part, MD_COLUMNS), ""]
    md.append("Parity: outputs of the first feeds against the fp32 root (`parity_vs_fp32`) and against the same variant "
              "on onnxruntime (`parity_vs_ort`), both computed on onnxruntime from the same feeds: cosine for "
              "embeddings, top-10 overlap and Spearman ρ for rankings. A cell below the floors of bench/parity.py is FAIL.")
    md.append("")
    md.append(ACCURACY_NOTE + ("" if run_acc is not None else " This run has no `accuracy.json` (it predates per-runtime accuracy, or ran with --no-accuracy)."))
    md.append("")
    md.append("All columns (lineage, compressor, runtime, sparsity, params, ...) are in `table.csv`; raw samples in `cells/`.")
    md_path = run_dir / "table.md"
    atomic_write_text(md_path, "\n".join(md))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = run_dir / "table.csv"
    atomic_write_text(csv_path, buf.getvalue())
    return md_path, csv_path
