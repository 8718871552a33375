"""The report's plots, one function each. Every point, bar and box is one cell measured on one machine
(``Cell``: a result and the tag of its machine); nothing is pooled across machines or cells.

The decision plot: task-metric delta vs fp32 (y, paired interval) against speedup vs fp32 (x, interval),
one numbered point per usable cell, with a table that names each number; points dominated beyond their
intervals (decision.dominated) are drawn grey, the rest are the front the data cannot order. Fidelity
has its own plot with the same numbers.

Error bars are 95% intervals with the process as the unit of replication. A missing or non-finite
interval is drawn as a diamond without bars and counted in the caption; axis limits come from finite
values only (report/axes.py), so no interval stretches an axis. Emulated results are drawn hollow or dashed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from odbench.core.records import HARNESS_RUNTIMES, NOT_MEASURED, Result, Variant, Verdict
from odbench.report.axes import AxisInfo, Box, axis_info, clipped, errs, limits, place_labels
from odbench.report.decision import Point, dominated
from odbench.report.figures import Estimate, delta_estimate, finite, stat_estimate
from odbench.report.tables import runtime_label as _runtime_label

OK = tuple(v for v in Verdict if v not in NOT_MEASURED and v != Verdict.FAIL)  # timed, with outputs that match


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
    caption: str = ""
    axes: tuple[AxisInfo, ...] = ()
    labels: tuple[Box, ...] = ()  # the point labels as placed (display pixels): none overlaps another
    table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None = None  # header, rows naming the points


def interval(stats: dict, key: str) -> tuple[float, float] | None:
    """(lo, hi) of a statistic's 95% interval, when the result carries a finite one."""
    lo, hi = stats.get(f"{key}_lo"), stats.get(f"{key}_hi")
    return (lo, hi) if finite(lo) and finite(hi) else None


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


DPI = 90


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _set_limits(ax, xs: list[Estimate], ys: list[Estimate], xlog: bool = False) -> int:
    """Axis limits from finite values (axes.limits); returns how many bars reach beyond them."""
    xl = limits([e.value for e in xs], [v for e in xs if e.has_interval for v in (e.lo, e.hi)], log=xlog)
    yl = limits([e.value for e in ys], [v for e in ys if e.has_interval for v in (e.lo, e.hi)])
    if xl:
        ax.set_xlim(*xl)
    if yl:
        ax.set_ylim(*yl)
    return clipped(xs, xl) + clipped(ys, yl)


def _ratio_ticks(ax) -> None:
    """Plain ticks (0.5, 1, 2, ...) on a log ratio axis."""
    from matplotlib.ticker import FixedLocator, NullLocator

    lo, hi = ax.get_xlim()
    fine = (0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6)  # at least 0.08 decades apart: labels never touch
    ticks = [t for t in (fine if hi / lo < 8 else [2.0 ** k for k in range(-8, 9)]) if lo <= t <= hi] or [1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" if t >= 0.1 else f"1/{1 / t:g}" for t in ticks])


def _caption(n: int, no_interval: int, clipped_bars: int, missed: int, extra: str = "") -> str:
    parts = [extra] if extra else []
    if no_interval:
        parts.append(f"{no_interval} of {n} points have no interval (diamonds, no bars: an old result or a point estimate only)")
    if clipped_bars:
        parts.append(f"{clipped_bars} interval(s) reach beyond the axes and are cut at the edge")
    if missed:
        parts.append(f"{missed} label(s) found no free place: see the table")
    return "; ".join(parts) + ("." if parts else "")


def front_text(i: int, dom: dict[int, int], p: Point, y: str) -> str:
    if i in dom:
        return f"dominated by #{dom[i] + 1}"
    if p.speedup is None or getattr(p, y) is None or not (p.speedup.has_interval and getattr(p, y).has_interval):
        return "not judged (no interval)"
    return "front"


def decision_plot(model: str, points: list[Point], metric: str | None, y: str = "delta", ylabel: str = "",
                  plot_id: str = "", title: str = "") -> Plot | None:
    """y (task-metric delta, or fidelity) against speedup vs fp32, both with intervals; numbered points."""
    shown = [(i, p) for i, p in enumerate(points) if p.speedup is not None and getattr(p, y) is not None]
    if not shown:
        return None
    dom = dominated(points, "speedup", y)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.4), dpi=DPI)
    groups = sorted({p.group[:4] for _, p in shown})
    xs, ys = [p.speedup for _, p in shown], [getattr(p, y) for _, p in shown]
    for (i, p), xe, ye in zip(shown, xs, ys):
        color = "#bbb" if i in dom else f"C{groups.index(p.group[:4]) % 10}"
        has = xe.has_interval and ye.has_interval
        ax.errorbar([xe.value], [ye.value], xerr=errs([xe]) if xe.has_interval else None,
                    yerr=errs([ye]) if ye.has_interval else None, fmt="o" if has else "D", ms=6, color=color,
                    mfc="none" if p.r.measured_on == "emulated" or i in dom else color, capsize=2, lw=0.9, zorder=3 if i not in dom else 2)
    for k, g in enumerate(groups):
        ax.plot([], [], "o", color=f"C{k % 10}", label=f"{g[0]}:{g[1]} / {g[3]}" + (" (emulated)" if g[2] == "emulated" else ""))
    if dom:
        ax.plot([], [], "o", color="#bbb", mfc="none", label="dominated beyond the intervals")
    ax.axvline(1.0, color="#888", lw=0.8, ls=":")
    if y == "delta":
        ax.axhline(0.0, color="#888", lw=0.8, ls=":")
    ax.set_xscale("log")  # a ratio: x2 and x0.5 are as far from 1
    cut = _set_limits(ax, xs, ys, xlog=True)
    _ratio_ticks(ax)
    ax.set_xlabel("speedup vs fp32 on the same runtime and profile (log; bars: 95% interval)")
    ax.set_ylabel(ylabel or f"{metric} − fp32's (bars: paired 95% interval)")
    ax.set_title(title or f"{model}: {metric} change vs speedup")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    boxes, missed = place_labels(ax, [(xe.value, ye.value) for xe, ye in zip(xs, ys)], [str(i + 1) for i, _ in shown])
    axes = (axis_info(ax),)
    no_iv = sum(not (xe.has_interval and ye.has_interval) for xe, ye in zip(xs, ys))
    extra = ("grey: dominated beyond the intervals by a point of the same machine, profile and runtime; "
             "coloured points cannot be ordered by the data" if y == "delta" else "")
    rows = tuple((str(i + 1), p.variant, p.runtime, p.where, p.speedup.text(".2f"), getattr(p, y).text(".4f", signed=y == "delta"),
                  front_text(i, dom, p, y)) for i, p in shown)
    header = ("#", "variant", "runtime", "machine:profile", "speedup [95% CI]", f"{metric} {'Δ ' if y == 'delta' else ''}[95% CI]", "front")
    left = len(points) - len(shown)
    if left:
        what = f"{metric} delta" if y == "delta" else "fidelity"
        extra = "; ".join(filter(None, [extra, f"{left} usable cell(s) not drawn: no speedup or no {what} measured on their runtime"]))
    return Plot(plot_id or f"{model}-accuracy-speed", title or f"{metric} change vs speedup (both with 95% intervals)", _png(fig),
                _caption(len(shown), no_iv, cut, missed, extra), axes, tuple(boxes), (header, rows) if y == "delta" else None)


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
    p50s = [e for e in (stat_estimate(c.r.stats, "p50") for c in timed) if e is not None]
    yl = limits([0.0] + [e.value for e in p50s], [e.hi for e in p50s if e.has_interval])
    if yl:
        ax.set_ylim(0.0, yl[1])
    ax.set_ylabel(f"p50 latency at {focus} (ms; bars: 95% interval)")
    ax.set_title(f"{model}: p50 per variant, runtime and machine (hatched 'wrong': parity FAIL, not a usable speed)")
    ax.grid(alpha=0.3, axis="y")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7)
    cut = clipped(p50s, (0.0, yl[1]) if yl else None)
    no_iv = sum(not e.has_interval for e in p50s)
    return Plot(f"{model}-runtimes", "Which runtime is fastest for each variant, per machine", _png(fig),
                _caption(len(p50s), no_iv, cut, 0).replace("points", "bars").replace("diamonds, no bars", "no error bar"),
                (axis_info(ax),))


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
                      fontsize=7 if len(group) <= 30 else 6, rotation=60 if len(group) <= 30 else 90,
                      ha="right" if len(group) <= 30 else "center")  # many boxes: upright labels, one per box width
        ax.set_title(scenario, fontsize=9)
        ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))  # a latency is never negative
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{model}: latency distribution per variant and machine (whiskers p1-p99; * emulated)", fontsize=10)
    infos = tuple(axis_info(ax) for ax in axes[0])
    return Plot(f"{model}-distributions", "Latency distributions per variant and machine", _png(fig), "", infos)


def throughput_plot(model: str, cells: list[Cell]) -> Plot | None:
    """Throughput vs items per inference, for the variants measured at two or more sizes."""
    groups = {k: g for k, g in _group(cells, lambda c: (c.r.variant_id, runtime_label(c.r), c.where, c.r.measured_on)).items()
              if len({c.r.items_per_inference for c in g}) > 1 and all(finite(c.r.throughput_items_s) for c in g)}
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=DPI)
    all_x, all_y = [], []
    for (vid, rt, where, on), group in groups.items():
        rs = sorted((c.r for c in group), key=lambda r: r.items_per_inference)
        xs, ys = [r.items_per_inference for r in rs], [r.throughput_items_s for r in rs]
        ests = [Estimate.of(y, *(interval(r.stats, "throughput") or (None, None))) for y, r in zip(ys, rs)]
        all_x += [Estimate(float(x)) for x in xs]
        all_y += ests
        ax.errorbar(xs, ys, yerr=errs(ests) if any(e.has_interval for e in ests) else None, fmt="o-" if on == "device" else "o--",
                    capsize=2, mfc="none" if on == "emulated" else None, label=f"{short(vid)} {rt} @ {where} ({on})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    xl = limits([e.value for e in all_x], log=True)
    yl = limits([e.value for e in all_y], [v for e in all_y if e.has_interval for v in (e.lo, e.hi)], log=True)
    ax.set_xlim(*xl)
    ax.set_ylim(*yl)
    ax.set_xlabel("items per inference (batch size or N candidates)")
    ax.set_ylabel("throughput (items/s; bars: 95% interval)")
    ax.set_title(f"{model}: throughput vs batch size / N")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    cap = _caption(len(all_y), sum(not e.has_interval for e in all_y), clipped(all_y, yl), 0).replace("diamonds, no bars", "no bars")
    return Plot(f"{model}-throughput", "Throughput vs batch size or N", _png(fig), cap, (axis_info(ax),))


def size_plot(model: str, mvars: list[Variant], metric: str | None) -> Plot | None:
    """Model file size against the task metric's delta vs fp32 (measured on ONNX Runtime at build time)."""
    roots = {v.id: v for v in mvars if v.parent is None}
    pts = []
    for v in mvars:
        base = roots.get(v.id) or next(iter(roots.values()), None)
        d = Estimate(0.0, 0.0, 0.0) if v.parent is None else delta_estimate(v.accuracy, base.accuracy if base else None, metric)
        if d is not None:
            pts.append((Estimate(v.size_bytes / 2**20), d, short(v.id)))
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=DPI)
    for x, y, _ in pts:
        ax.errorbar([x.value], [y.value], yerr=errs([y]) if y.has_interval else None, fmt="o" if y.has_interval else "D",
                    color="C0", capsize=2, ms=6)
    ax.axhline(0.0, color="#888", lw=0.8, ls=":")
    cut = _set_limits(ax, [p[0] for p in pts], [p[1] for p in pts])
    ax.set_xlabel("model file size (MB)")
    ax.set_ylabel(f"{metric} − fp32's (bars: paired 95% interval)")
    ax.set_title(f"{model}: size vs {metric} change")
    ax.grid(alpha=0.3)
    boxes, missed = place_labels(ax, [(x.value, y.value) for x, y, _ in pts], [t for _, _, t in pts])
    cap = _caption(len(pts), sum(not y.has_interval for _, y, _ in pts), cut, missed, "accuracy as built (ONNX Runtime)")
    return Plot(f"{model}-size", "Size vs accuracy", _png(fig), cap, (axis_info(ax),), tuple(boxes))


def scenarios_of(cells: list[Cell]) -> tuple[list[str], str | None]:
    """Scenarios ranking ones first, by items; and the focus scenario the single-scenario plots use."""
    items = {c.r.scenario: c.r.items_per_inference for c in cells}
    scenarios = sorted(items, key=lambda s: (not s.startswith("rank"), items[s], s))
    focus = "rank-200" if "rank-200" in scenarios else ("query" if "query" in scenarios else (scenarios[0] if scenarios else None))
    return scenarios, focus


def model_plots(model: str, cells: list[Cell], variants: list[Variant], points: list[Point], metric: str | None,
                fidelity: str | None) -> list[Plot]:
    """Every plot of one model. ``cells``: all of its results (FAILs too: the runtime plot hatches them);
    ``variants``: every machine's variants (the same id built on two machines may differ); ``points``:
    its usable cells with their figures (decision.points_of), numbered in that order."""
    timed = [c for c in cells if c.r.model == model and c.r.runtime not in HARNESS_RUNTIMES and c.r.stats and "p50" in c.r.stats]
    usable = [c for c in timed if c.r.verdict in OK]
    mvars = list({(v.id, v.sha256): v for v in variants if v.model == model}.values())
    scenarios, focus = scenarios_of(usable)
    plots = [decision_plot(model, points, metric)]
    if fidelity:
        plots.append(decision_plot(model, points, metric, "fidelity", f"{fidelity} vs fp32's outputs (bars: 95% interval)",
                                   f"{model}-fidelity", f"{model}: {fidelity} vs speedup (same numbers as above)"))
    plots += [runtimes_plot(model, timed, focus), distributions_plot(model, usable, scenarios) if usable else None,
              throughput_plot(model, usable), size_plot(model, mvars, metric)]
    return [p for p in plots if p is not None]
