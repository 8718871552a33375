"""The hardware-selection report: a self-contained HTML page with plots, and a Markdown twin.

Per model:
  * latency (p95) against accuracy, with the Pareto frontier, per device profile and runtime;
  * p50 per variant and runtime at the headline scenario, wrong outputs (parity FAIL) hatched;
  * latency distributions per variant and scenario (raw samples);
  * throughput against batch size / number of candidates;
  * size against accuracy;
  * which device profile and variant meet all the budgets at the lowest price (or power,
    or p95 when no datasheet figures exist).
Emulated results are drawn hollow and labelled apart from results measured on a device.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.records import Result, Variant, atomic_write_text

PRIMARY_METRICS = ("auc", "top10_overlap", "cosine")
OK = ("OK", "UNSTABLE")


def primary_metric(variants: list[Variant]) -> str | None:
    keys = {k for v in variants for k in v.accuracy}
    for m in PRIMARY_METRICS:
        if m in keys:
            return m
    return next(iter(sorted(keys)), None)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Frontier of (latency, accuracy): lower latency and higher accuracy are better."""
    front, best = [], -np.inf
    for lat, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc))
            best = acc
    return front


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    png: bytes


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def model_plots(model: str, results: list[Result], variants: dict[str, Variant]) -> list[Plot]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [r for r in results if r.model == model and r.verdict in OK and r.stats and r.runtime not in ("null", "faulty")]
    mvars = [v for v in variants.values() if v.model == model]
    metric = primary_metric(mvars)
    plots = []
    items = {r.scenario: r.items_per_inference for r in rs}
    scenarios = sorted(items, key=lambda s: (not s.startswith("rank"), items[s], s))
    focus = "rank-200" if "rank-200" in scenarios else ("query" if "query" in scenarios else (scenarios[0] if scenarios else None))

    # 1. latency vs accuracy with the Pareto frontier, per profile
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, ((profile, runtime, on), group) in enumerate(_group(rs, lambda r: (r.profile, _rt(r), r.measured_on)).items()):
        pts = [(r.stats["p95"], variants[r.variant_id].accuracy.get(metric)) for r in group
               if r.scenario == focus and r.variant_id in variants and metric in variants[r.variant_id].accuracy]
        if not pts:
            continue
        color = f"C{i % 10}"
        ax.scatter(*zip(*pts), label=f"{profile} / {runtime} ({on})", s=50, edgecolors=color,
                   facecolors="none" if on == "emulated" else color)
        front = pareto(pts)
        ax.plot(*zip(*front), "--", color=color, alpha=0.7)
        for r in group:
            if r.scenario == focus and r.variant_id in variants and metric in variants[r.variant_id].accuracy:
                ax.annotate(r.variant_id.split("/", 1)[1], (r.stats["p95"], variants[r.variant_id].accuracy[metric]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"p95 latency at {focus} (ms)")
    ax.set_ylabel(metric or "accuracy")
    ax.set_title(f"{model}: latency vs {metric} (dashed: Pareto frontier; hollow: emulated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    plots.append(Plot(f"{model}-pareto", "Latency vs accuracy, Pareto frontier per device and runtime", _fig_png(fig)))

    # 1b. which runtime is fastest for each variant (focus scenario); wrong outputs hatched and marked
    runtimes = sorted({_rt(r) for r in results if r.model == model and r.runtime not in ("null", "faulty")})
    timed = [r for r in results if r.model == model and r.scenario == focus and r.stats and r.verdict in OK + ("FAIL",)
             and r.runtime not in ("null", "faulty")]
    if len(runtimes) > 1 and timed:
        vids = sorted({r.variant_id for r in timed}, key=lambda v: (not v.endswith("/fp32"), v))
        profiles_ = sorted({(r.profile, r.measured_on) for r in timed})
        fig, ax = plt.subplots(figsize=(min(16, 3 + 0.9 * len(vids) * max(1, len(profiles_))), 4.4))
        width = 0.8 / max(1, len(runtimes) * len(profiles_))
        for j, ((profile, on), rt) in enumerate((p, rt) for p in profiles_ for rt in runtimes):
            for i, vid in enumerate(vids):
                hit = [r for r in timed if r.variant_id == vid and _rt(r) == rt and (r.profile, r.measured_on) == (profile, on)]
                if not hit:
                    continue
                r = hit[0]
                bad = r.verdict == "FAIL"
                ax.bar(i + (j - (len(runtimes) * len(profiles_) - 1) / 2) * width, r.stats["p50"], width,
                       color=f"C{runtimes.index(rt) % 10}", alpha=0.35 if bad or on == "emulated" else 0.9,
                       hatch="xx" if bad else None, edgecolor="black" if bad else None,
                       label=f"{rt} @{profile}" + (" (emulated)" if on == "emulated" else ""))  # deduplicated below
                if bad:
                    ax.annotate("wrong", (i + (j - (len(runtimes) * len(profiles_) - 1) / 2) * width, r.stats["p50"]),
                                fontsize=6, ha="center", va="bottom", rotation=90, color="#a00")
        ax.set_xticks(range(len(vids)), [v.split("/", 1)[1] for v in vids], fontsize=7, rotation=30, ha="right")
        ax.set_ylabel(f"p50 latency at {focus} (ms)")
        ax.set_title(f"{model}: p50 per variant and runtime (hatched 'wrong': parity FAIL, not a usable speed)")
        ax.grid(alpha=0.3, axis="y")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7)
        plots.append(Plot(f"{model}-runtimes", "Which runtime is fastest for each variant", _fig_png(fig)))

    # 2. latency distributions per variant, one panel per scenario
    counts = [max(1, sum(r.scenario == sc for r in rs)) for sc in scenarios] or [1]
    fig, axes = plt.subplots(1, len(counts), figsize=(min(16, 2.0 + 0.55 * sum(counts) + 1.2 * len(counts)), 4.6),
                             squeeze=False, gridspec_kw={"width_ratios": counts})
    for ax, scenario in zip(axes[0], scenarios):
        group = sorted([r for r in rs if r.scenario == scenario], key=lambda r: r.cell_id)
        ax.boxplot([r.samples_ms for r in group], showfliers=False, whis=(1, 99))
        ax.set_xticks(range(1, len(group) + 1), [f"{r.variant_id.split('/', 1)[1]} {_rt(r)} @{r.profile}" + ("*" if r.measured_on == "emulated" else "") for r in group],
                      fontsize=7, rotation=60, ha="right")
        ax.set_title(scenario, fontsize=9)
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{model}: latency distribution per variant (whiskers p1-p99; * emulated)", fontsize=10)
    plots.append(Plot(f"{model}-distributions", "Latency distributions per variant", _fig_png(fig)))

    # 3. throughput vs batch size / N
    fig, ax = plt.subplots(figsize=(7, 4))
    for (vid, runtime, profile, on), group in _group(rs, lambda r: (r.variant_id, _rt(r), r.profile, r.measured_on)).items():
        pts = sorted((r.items_per_inference, r.throughput_items_s) for r in group)
        ax.plot(*zip(*pts), "o-" if on == "device" else "o--", label=f"{vid.split('/', 1)[1]} {runtime} @ {profile} ({on})",
                mfc="none" if on == "emulated" else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("items per inference (batch size or N candidates)")
    ax.set_ylabel("throughput (items/s)")
    ax.set_title(f"{model}: throughput vs batch size / N")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    plots.append(Plot(f"{model}-throughput", "Throughput vs batch size or N", _fig_png(fig)))

    # 4. size vs accuracy
    fig, ax = plt.subplots(figsize=(7, 4))
    pts = [(v.size_bytes / 2**20, v.accuracy.get(metric), v.id.split("/", 1)[1]) for v in mvars if metric in v.accuracy]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=50)
        for x, y, label in pts:
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto([(p[0], p[1]) for p in pts])
        ax.plot(*zip(*front), "--", alpha=0.6)
    ax.set_xlabel("model file size (MB)")
    ax.set_ylabel(metric or "accuracy")
    ax.set_title(f"{model}: size vs {metric}")
    ax.grid(alpha=0.3)
    plots.append(Plot(f"{model}-size", "Size vs accuracy", _fig_png(fig)))
    return plots


def _rt(r: Result) -> str:
    from bench.tables import runtime_label

    return runtime_label(r.runtime, r.runtime_options)


def wrong_outputs(model: str, results: list[Result]) -> list[str]:
    """Cells left out of every plot and selection because their outputs failed parity."""
    return [f"{r.variant_id.split('/', 1)[1]} on {_rt(r)} @{r.profile}, {r.scenario}: {r.reason}"
            for r in results if r.model == model and r.verdict == "FAIL"]


def _group(items, key):
    out: dict = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


def selection(model: str, results: list[Result], variants: dict[str, Variant], verdicts, profiles: dict) -> list[str]:
    """Which (profile, variant) meets all its budgets at the lowest price, then power, then p95."""
    rs = [r for r in results if r.model == model and r.runtime not in ("null", "faulty")]
    if verdicts is None:
        return ["No budgets given (`--budgets`): no selection made; see the plots."]
    by_cell: dict[str, list[str]] = {}
    for v in verdicts:
        by_cell.setdefault(v.cell_id, []).append(v.verdict)
    cand: dict[tuple[str, str, str], list[Result]] = {}
    for r in rs:
        if r.cell_id in by_cell:
            cand.setdefault((r.profile, r.variant_id, r.measured_on, _rt(r)), []).append(r)
    passing = {k: group for k, group in cand.items() if all(x == "PASS" for r in group for x in by_cell[r.cell_id])}
    if not passing:
        return ["No device profile and variant meets all of this model's budgets."]

    def key(k):
        ds = (profiles.get(k[0]) or {}).get("datasheet") or {}
        price = ds.get("hourly_price_usd") or ds.get("unit_price_usd") or float("inf")
        worst_p95 = max(r.stats.get("p95", float("inf")) for r in passing[k])
        return (price, ds.get("power_w") or float("inf"), worst_p95)

    lines = []
    for k in sorted(passing, key=key):
        price, power, p95 = key(k)
        cost = "no price data" if price == float("inf") else f"${price:g}"
        power_s = "" if power == float("inf") else f", {power:g} W"
        lines.append(f"{k[0]} ({k[2]}) + {k[1]} on {k[3]}: meets all {len(passing[k])} budgeted cell(s); {cost}{power_s}; worst p95 {p95:.3f} ms")
    lines[0] = "**Best:** " + lines[0]
    return lines


def render(run_dir: Path, results: list[Result], variants: dict[str, Variant], machine: dict,
           verdicts=None, profiles: dict | None = None, out_dir: Path | None = None) -> tuple[Path, Path]:
    out_dir = out_dir or run_dir / "report"
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    models = sorted({r.model for r in results if r.runtime not in ("null", "faulty")})
    emulated = sorted({r.profile for r in results if r.measured_on == "emulated"})
    h = [
        "<!doctype html><html><head><meta charset='utf-8'><title>odbench report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}.emu{color:#a60}</style></head><body>",
        f"<h1>odbench hardware-selection report: {html.escape(run_dir.name)}</h1>",
        f"<p>Machine: {html.escape(str(machine.get('cpu_model')))}, {machine.get('physical_cores')} cores, {machine.get('memory_mb')} MB.</p>",
    ]
    md = [f"# odbench hardware-selection report: {run_dir.name}", "", f"Machine: {machine.get('cpu_model')}, {machine.get('physical_cores')} cores.", ""]
    if emulated:
        note = f"Emulated on this host (not measured on the device): {', '.join(emulated)}. Drawn hollow / dashed."
        h.append(f"<p class='emu'>{html.escape(note)}</p>")
        md += [f"> {note}", ""]
    for model in models:
        h.append(f"<h2>{html.escape(model)}</h2>")
        md += [f"## {model}", ""]
        h.append("<h3>Which device and variant?</h3><ul>")
        for line in selection(model, results, variants, verdicts, profiles or {}):
            h.append(f"<li>{html.escape(line).replace('**Best:**', '<b>Best:</b>')}</li>")
            md.append(f"- {line}")
        h.append("</ul>")
        md.append("")
        failed = wrong_outputs(model, results)
        if failed:
            h.append("<h3>Left out: wrong outputs (parity FAIL)</h3><ul>" + "".join(f"<li>{html.escape(x[:300])}</li>" for x in failed) + "</ul>")
            md += ["### Left out: wrong outputs (parity FAIL)", ""] + [f"- {x[:300]}" for x in failed] + [""]
        for plot in model_plots(model, results, variants):
            (out_dir / "plots" / f"{plot.id}.png").write_bytes(plot.png)
            b64 = base64.b64encode(plot.png).decode()
            h.append(f"<h3>{html.escape(plot.title)}</h3><img id='{plot.id}' class='plot' alt='{html.escape(plot.title)}' src='data:image/png;base64,{b64}'>")
            md += [f"### {plot.title}", "", f"![{plot.title}](plots/{plot.id}.png)", ""]
    h.append("</body></html>")
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write_text(html_path, "\n".join(h))
    atomic_write_text(md_path, "\n".join(md))
    return html_path, md_path
