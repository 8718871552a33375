"""The report's plots, one function each. Every point, bar and box is one cell measured on one machine
(``Cell``: a result and the tag of its machine); nothing is pooled across machines or cells.

Error bars are the 95% intervals that Result.stats carries (``p50_lo``/``p50_hi``, ``p95_lo``/``p95_hi``,
``throughput_lo``/``throughput_hi``, with the process as the unit of replication); results without
them (older schema) are drawn without bars. Emulated results are drawn hollow or dashed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, Variant, Verdict
from odbench.models.metrics import point_metrics
from odbench.report.tables import runtime_label as _runtime_label

OK = tuple(v for v in Verdict if v not in NOT_MEASURED and v != Verdict.FAIL)  # timed, with outputs that match
# The zoo's, then a user's evaluation set's (docs/your-data.md): ranking auc, retrieval ndcg@10, classification macro_f1.
PRIMARY_METRICS = ("auc", "top10_overlap", "cosine", "ndcg@10", "macro_f1")


@dataclass(frozen=True)
class Cell:
    """One result and the short tag (M1, M2, ...) of the machine that measured it."""

    machine: str
    r: Result
    variant: Variant | None = None  # the variant as that machine's run folder built it
    accuracy: dict | None = None  # measured on this row's own runtime (bench/accuracy.row_accuracy), else None

    @property
    def where(self) -> str:
        return f"{self.machine}:{self.r.profile}"


@dataclass(frozen=True)
class Plot:
    id: str
    title: str
    png: bytes


def primary_metric(variants) -> str | None:
    keys = {k for v in variants for k in point_metrics(v.accuracy)}  # never an interval bound or a delta
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


def interval(stats: dict, key: str) -> tuple[float, float] | None:
    """(lo, hi) of a statistic's 95% interval, when the result carries one."""
    lo, hi = stats.get(f"{key}_lo"), stats.get(f"{key}_hi")
    return (lo, hi) if lo is not None and hi is not None else None


def _errs(values: list[float], stats: list[dict], key: str):
    """matplotlib xerr/yerr (2 x n) from intervals; None when no result has one."""
    ivs = [interval(s, key) for s in stats]
    if not any(ivs):
        return None
    return np.array([[v - iv[0] if iv else 0.0 for v, iv in zip(values, ivs)],
                     [iv[1] - v if iv else 0.0 for v, iv in zip(values, ivs)]]).clip(min=0)


def runtime_label(r: Result) -> str:
    return _runtime_label(r.runtime, r.runtime_options)


def short(variant_id: str) -> str:
    return variant_id.split("/", 1)[1]


def _group(items, key) -> dict:
    out: dict = {}
    for it in items:
        out.setdefault(key(it), []).append(it)
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def pareto_plot(model: str, cells: list[Cell], metric: str | None, focus: str) -> Plot:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups = _group(cells, lambda c: (c.where, runtime_label(c.r), c.r.measured_on))
    for i, ((where, rt, on), group) in enumerate(groups.items()):
        hits = [c for c in group if c.r.scenario == focus and c.accuracy and metric in c.accuracy]
        if not hits:
            continue
        xs, ys = [c.r.stats["p95"] for c in hits], [c.accuracy[metric] for c in hits]
        hits = [c.r for c in hits]
        color = f"C{i % 10}"
        ax.errorbar(xs, ys, xerr=_errs(xs, [r.stats for r in hits], "p95"), fmt="o", ms=7, color=color,
                    mfc="none" if on == "emulated" else color, capsize=2, label=f"{where} / {rt} ({on})")
        ax.plot(*zip(*pareto(list(zip(xs, ys)))), "--", color=color, alpha=0.7)
        for x, y, r in zip(xs, ys, hits):
            ax.annotate(short(r.variant_id), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"p95 latency at {focus} (ms; bars: 95% interval)")
    ax.set_ylabel(metric or "accuracy")
    ax.set_title(f"{model}: latency vs {metric} (dashed: Pareto frontier; hollow: emulated)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return Plot(f"{model}-pareto", "Latency vs accuracy, Pareto frontier per machine, device and runtime", _png(fig))


def runtimes_plot(model: str, cells: list[Cell], focus: str) -> Plot | None:
    """p50 per variant, runtime and machine:profile; wrong outputs (parity FAIL) hatched 'wrong'."""
    timed = [c for c in cells if c.r.scenario == focus and c.r.stats and c.r.verdict in OK + ("FAIL",)]
    runtimes = sorted({runtime_label(c.r) for c in timed})
    wheres = sorted({(c.where, c.r.measured_on) for c in timed})
    if not timed or len(runtimes) * len(wheres) < 2:
        return None
    plt = _pyplot()
    vids = sorted({c.r.variant_id for c in timed}, key=lambda v: (not v.endswith("/fp32"), v))
    slots = [(w, rt) for w in wheres for rt in runtimes]
    fig, ax = plt.subplots(figsize=(min(16, 3 + 0.9 * len(vids) * max(1, len(wheres))), 4.4))
    width = 0.8 / len(slots)
    for j, ((where, on), rt) in enumerate(slots):
        hits = {c.r.variant_id: c.r for c in timed if (c.where, c.r.measured_on) == (where, on) and runtime_label(c.r) == rt}
        for i, vid in enumerate(vids):
            r = hits.get(vid)
            if r is None:
                continue
            x, bad = i + (j - (len(slots) - 1) / 2) * width, r.verdict == "FAIL"
            err = _errs([r.stats["p50"]], [r.stats], "p50")
            if err is not None:
                ax.errorbar([x], [r.stats["p50"]], yerr=err, fmt="none", ecolor="black", capsize=2, lw=0.8)
            ax.bar([x], [r.stats["p50"]], width,
                   color=f"C{j % 10}", alpha=0.35 if bad or on == "emulated" else 0.9, hatch="xx" if bad else None,
                   edgecolor="black" if bad else None, label=f"{rt} @{where}" + (" (emulated)" if on == "emulated" else ""))
            if bad:
                ax.annotate("wrong", (x, r.stats["p50"]), fontsize=6, ha="center", va="bottom", rotation=90, color="#a00")
    ax.set_xticks(range(len(vids)), [short(v) for v in vids], fontsize=7, rotation=30, ha="right")
    ax.set_ylabel(f"p50 latency at {focus} (ms; bars: 95% interval)")
    ax.set_title(f"{model}: p50 per variant, runtime and machine (hatched 'wrong': parity FAIL, not a usable speed)")
    ax.grid(alpha=0.3, axis="y")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7)
    return Plot(f"{model}-runtimes", "Which runtime is fastest for each variant, per machine", _png(fig))


def distributions_plot(model: str, cells: list[Cell], scenarios: list[str]) -> Plot:
    """Each box is one cell's own samples on one machine."""
    plt = _pyplot()
    counts = [max(1, sum(c.r.scenario == sc for c in cells)) for sc in scenarios] or [1]
    fig, axes = plt.subplots(1, len(counts), figsize=(min(16, 2.0 + 0.55 * sum(counts) + 1.2 * len(counts)), 4.6),
                             squeeze=False, gridspec_kw={"width_ratios": counts})
    for ax, scenario in zip(axes[0], scenarios):
        group = sorted([c for c in cells if c.r.scenario == scenario], key=lambda c: (c.machine, c.r.cell_id))
        ax.boxplot([c.r.samples_ms for c in group], showfliers=False, whis=(1, 99))
        ax.set_xticks(range(1, len(group) + 1), [f"{short(c.r.variant_id)} {runtime_label(c.r)} @{c.where}"
                                                 + ("*" if c.r.measured_on == "emulated" else "") for c in group],
                      fontsize=7, rotation=60, ha="right")
        ax.set_title(scenario, fontsize=9)
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{model}: latency distribution per variant and machine (whiskers p1-p99; * emulated)", fontsize=10)
    return Plot(f"{model}-distributions", "Latency distributions per variant and machine", _png(fig))


def throughput_plot(model: str, cells: list[Cell]) -> Plot:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for (vid, rt, where, on), group in _group(cells, lambda c: (c.r.variant_id, runtime_label(c.r), c.where, c.r.measured_on)).items():
        rs = sorted((c.r for c in group), key=lambda r: r.items_per_inference)
        xs, ys = [r.items_per_inference for r in rs], [r.throughput_items_s for r in rs]
        ax.errorbar(xs, ys, yerr=_errs(ys, [r.stats for r in rs], "throughput"), fmt="o-" if on == "device" else "o--",
                    capsize=2, mfc="none" if on == "emulated" else None, label=f"{short(vid)} {rt} @ {where} ({on})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("items per inference (batch size or N candidates)")
    ax.set_ylabel("throughput (items/s; bars: 95% interval)")
    ax.set_title(f"{model}: throughput vs batch size / N")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return Plot(f"{model}-throughput", "Throughput vs batch size or N", _png(fig))


def size_plot(model: str, mvars: list[Variant], metric: str | None) -> Plot:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    pts = [(v.size_bytes / 2**20, v.accuracy.get(metric), short(v.id)) for v in mvars if metric in v.accuracy]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=50)
        for x, y, label in pts:
            ax.annotate(label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.plot(*zip(*pareto([(p[0], p[1]) for p in pts])), "--", alpha=0.6)
    ax.set_xlabel("model file size (MB)")
    ax.set_ylabel(metric or "accuracy")
    ax.set_title(f"{model}: size vs {metric}")
    ax.grid(alpha=0.3)
    return Plot(f"{model}-size", "Size vs accuracy", _png(fig))


def scenarios_of(cells: list[Cell]) -> tuple[list[str], str | None]:
    """Scenarios ranking ones first, by items; and the focus scenario the single-scenario plots use."""
    items = {c.r.scenario: c.r.items_per_inference for c in cells}
    scenarios = sorted(items, key=lambda s: (not s.startswith("rank"), items[s], s))
    focus = "rank-200" if "rank-200" in scenarios else ("query" if "query" in scenarios else (scenarios[0] if scenarios else None))
    return scenarios, focus


def model_plots(model: str, cells: list[Cell], variants: list[Variant]) -> list[Plot]:
    """Every plot of one model. ``cells``: all of its results (FAILs too: the runtime plot hatches them);
    ``variants``: every machine's variants (the same id built on two machines may differ)."""
    timed = [c for c in cells if c.r.model == model and c.r.runtime not in HARNESS_RUNTIMES and c.r.stats and "p50" in c.r.stats]
    usable = [c for c in timed if c.r.verdict in OK]
    mvars = list({(v.id, v.sha256): v for v in variants if v.model == model}.values())
    metric = primary_metric(mvars)
    scenarios, focus = scenarios_of(usable)
    plots = [pareto_plot(model, usable, metric, focus)]
    runtimes = runtimes_plot(model, timed, focus)
    if runtimes is not None:
        plots.append(runtimes)
    plots += [distributions_plot(model, usable, scenarios), throughput_plot(model, usable), size_plot(model, mvars, metric)]
    return plots
