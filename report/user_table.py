"""The short table of a user's model on the user's evaluation set (`odbench run --onnx M --eval E`):
one row per (variant, runtime): p50 [95% CI], the task's primary metric [95% CI] from that runtime's own
outputs on the test part, and its paired delta vs the user's fp32 file on ONNX Runtime [95% CI].
Written to RUN/your-data.md; every other column stays in table.md / table.csv."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

from odbench.bench.store import ResultStore, load_variants
from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import HARNESS_RUNTIMES, atomic_write_text, lineage_root
from odbench.report.tables import runtime_label, sorted_results
from odbench.verdicts.accuracy import load_run_accuracy, row_accuracy

HEADER = "| variant | runtime | scenario | verdict | p50 ms [95% CI] | {m} [95% CI] | Δ {m} vs fp32 [paired 95% CI] |"


def _ci(acc: Mapping[str, float], key: str, signed: bool = False) -> str:
    if key not in acc:
        return "—"
    f = (lambda x: f"{x:+.4f}") if signed else (lambda x: f"{x:.4f}")
    lo, hi = acc.get(f"{key}_lo"), acc.get(f"{key}_hi")
    return f"{f(acc[key])} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(acc[key])


def _p50(stats: Mapping | None) -> str:
    if not stats or "p50" not in stats:
        return "—"
    lo, hi = stats.get("p50_lo"), stats.get("p50_hi")
    known = lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi)
    ci = f" [{lo:.3g}, {hi:.3g}]" if known else " (one process: no interval)"
    return f"{stats['p50']:.3g}{ci}"


def user_table(run_dir: str | Path, metrics: Mapping[str, str]) -> str:
    """Markdown rows for the models in ``metrics`` (model name -> primary metric)."""
    run_dir = Path(run_dir)
    variants = load_variants(run_dir)
    run_acc = load_run_accuracy(run_dir)
    out = []
    for model, m in metrics.items():
        out += [HEADER.format(m=m), "|---|---|---|---|---|---|---|"]
        for r in sorted_results(ResultStore(run_dir).all()):
            if r.model != model or r.runtime in HARNESS_RUNTIMES:
                continue
            v = variants.get(r.variant_id)
            name = r.variant_id.split("/", 1)[-1] + (f" ({v.config['label']})" if v and v.config.get("label") else "")
            acc, why = row_accuracy(r, variants, run_acc)
            is_ref = lineage_root(r.variant_id, variants) == r.variant_id and r.runtime == REFERENCE_RUNTIME and not r.runtime_options
            metric = _ci(acc, m) if acc else why
            delta = "(the reference)" if is_ref else (_ci(acc, f"delta_{m}", signed=True) if acc else "—")
            out.append(f"| {name} | {runtime_label(r.runtime, r.runtime_options)} | {r.scenario} | {r.verdict} | "
                       f"{_p50(r.stats)} | {metric} | {delta} |")
        out.append("")
    return "\n".join(out)


def write_user_table(run_dir: str | Path, metrics: Mapping[str, str]) -> Path:
    path = Path(run_dir) / "your-data.md"
    atomic_write_text(path, user_table(run_dir, metrics))
    return path
