"""table.md's words around its tables: the notes, the harness overhead, unreadable cells, warnings once
per run (how many cells raised each kind) and why rows are not OK (once per reason)."""
from __future__ import annotations

import io
import re

from odbench.bench.run_folder import is_unreadable
from odbench.core.records import NOT_MEASURED, Result

TABLE_NOTE = (
    "Latency in ms per inference; every interval is 95% with the fresh process as the unit of replication "
    "(stats/intervals.py); speedup = fp32's p50 / the row's, on the same runtime, profile and scenario; \"paired\": "
    "measured with fp32 in the same processes, taking turns (docs/paired.md); \"isolated (paired disagreed)\": "
    "the paired figure and the one from separate processes disagreed beyond both intervals, so the latter stands. "
    "`task Δ`: the row's task metric minus fp32's on ONNX Runtime, from the row's own runtime's outputs, paired over "
    "the same test examples. Verdicts: FAIL = timed, but outputs do not match the fp32 reference (parity); "
    "SKIPPED = could not run here.")

ACCURACY_NOTE = (
    "Accuracy (CSV): `accuracy` is the task metrics [95% CI] (and fidelity) computed from the outputs of the row's own runtime "
    "on the model's test split (`accuracy.json`, verdicts/accuracy.py); `acc_delta_vs_fp32` is that figure minus the fp32 "
    "baseline's on ONNX Runtime, paired over the same test examples [95% CI] (on an fp32 row of another runtime it is "
    "that runtime's own deviation). A default ONNX Runtime row without a record shows the variant's build-time figure, "
    "measured on ONNX Runtime; any other row without one says `not measured on R` (with the reason when evaluation failed).")


def render_markdown(rows: list[dict[str, str]], columns: list[str]) -> str:
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


def warnings_summary(results: list[Result]) -> list[str]:
    """Each kind of warning once, with how many cells raised it (numbers in the text are the first cell's)."""
    kinds: dict[str, list] = {}
    for r in results:
        if r.verdict in NOT_MEASURED:
            continue
        for w in dict.fromkeys(re.sub(r"[0-9][0-9.]*", "#", w) for w in r.warnings):
            kinds.setdefault(w, []).append(r)
    out = []
    for key, rs in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        example = next(w for w in rs[0].warnings if re.sub(r"[0-9][0-9.]*", "#", w) == key)
        out.append(f"{len(rs)} of {len(results)} cells: {example[:160]} (e.g. {rs[0].variant_id} on {rs[0].runtime})")
    return out


def not_ok_notes(results: list[Result]) -> list[str]:
    """Why rows are not OK, once per reason."""
    why: dict[tuple, list[str]] = {}
    for r in results:
        if r.verdict != "OK" and r.reason:
            why.setdefault((str(r.verdict), r.reason[:200]), []).append(f"{r.variant_id.split('/', 1)[-1]} on {r.runtime}")
    return [f"- {v} ({', '.join(cells[:4])}{f' +{len(cells) - 4} more' if len(cells) > 4 else ''}): {reason}"
            for (v, reason), cells in why.items()]
