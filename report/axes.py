"""Plot mechanics that keep a picture honest whatever the data: axis limits from finite values only,
interval bars that a missing or broken interval cannot stretch, and point labels placed without overlap.

* ``limits``: the span of the points, widened to take in their interval ends, but by at most twice the points'
  own span (or half their magnitude, for one point) on each side; a bar reaching further is clipped,
  and the caller says so in its caption. NaN and inf never reach an axis.
* ``place_labels``: a greedy placement (Imhof's rules in their simplest form: try positions around the
  point, nearest first, and take the first whose box overlaps no label and no marker placed so far;
  E. Imhof, "Positioning names on maps", The American Cartographer 2(2), 1975). A label that finds no
  free place is left out of the picture (the plot's table still lists the point).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from odbench.report.figures import Estimate, finite

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


@dataclass(frozen=True)
class AxisInfo:
    """What one drawn axes shows (for tests and for the caption): limits and scales as rendered."""

    title: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    xscale: str
    yscale: str


def limits(values: Sequence[float], ends: Sequence[float] = (), log: bool = False, pad: float = 0.06) -> tuple[float, float] | None:
    """(lo, hi) for an axis showing ``values`` and, as far as is reasonable, the interval ``ends``."""
    vals = [v for v in values if finite(v) and (v > 0 or not log)]
    if not vals:
        return None
    f = (lambda v: math.log10(v)) if log else (lambda v: v)
    inv = (lambda v: 10 ** v) if log else (lambda v: v)
    lo, hi = min(map(f, vals)), max(map(f, vals))
    reach = 2 * (max(hi - lo, 0.3) if log else ((hi - lo) or max(abs(hi) * 0.5, 1e-9)))
    ends_ = [f(e) for e in ends if finite(e) and (e > 0 or not log)]
    lo2 = max(min([lo] + ends_), lo - reach)
    hi2 = min(max([hi] + ends_), hi + reach)
    if hi2 == lo2:  # one value and no interval: a window around it (x/2..x2 on a log axis)
        w = math.log10(2) if log else max(abs(hi2) * 0.25, 0.01)
        return inv(lo2 - w), inv(hi2 + w)
    span = hi2 - lo2
    return inv(lo2 - pad * span), inv(hi2 + pad * span)


def clipped(estimates: Sequence[Estimate | None], lim: tuple[float, float] | None) -> int:
    """How many intervals reach beyond the axis limits."""
    if lim is None:
        return 0
    return sum(1 for e in estimates if e is not None and e.has_interval and (e.lo < lim[0] or e.hi > lim[1]))


def errs(estimates: Sequence[Estimate]) -> list[list[float]]:
    """matplotlib xerr/yerr (2 x n); 0 where there is no interval (the marker says so)."""
    return [[e.value - e.lo if e.has_interval else 0.0 for e in estimates],
            [e.hi - e.value if e.has_interval else 0.0 for e in estimates]]


def axis_info(ax) -> AxisInfo:
    return AxisInfo(ax.get_title(), tuple(map(float, ax.get_xlim())), tuple(map(float, ax.get_ylim())),
                    ax.get_xscale(), ax.get_yscale())


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


_OFFSETS = [(dx * r, dy * r) for r in (1, 2, 3.2) for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))]


def place_labels(ax, xy: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: float = 7,
                 marker_px: float = 5.0) -> tuple[list[Box], int]:
    """Annotate each point with its text where the box overlaps no other label or marker and stays inside
    the axes. Returns the boxes placed (display pixels) and how many labels found no place."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pts = [tuple(ax.transData.transform(p)) for p in xy]
    taken: list[Box] = [(x - marker_px, y - marker_px, x + marker_px, y + marker_px) for x, y in pts]
    placed, missed = [], 0
    for (px, py), (x, y), text in zip(pts, xy, texts):
        t = ax.annotate(text, (x, y), fontsize=fontsize, xytext=(0, 0), textcoords="offset points")
        w, h = (lambda b: (b.width, b.height))(t.get_window_extent(renderer))
        for dx, dy in _OFFSETS:
            ox = px + dx * (marker_px + 1) + (0 if dx > 0 else -w if dx < 0 else -w / 2)
            oy = py + dy * (marker_px + 1) + (0 if dy > 0 else -h if dy < 0 else -h / 2)
            box = (ox, oy, ox + w, oy + h)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            if inside and not any(_overlaps(box, b) for b in taken):
                pt_per_px = 72.0 / fig.dpi
                t.set_position(((ox - px) * pt_per_px, (oy - py) * pt_per_px))
                t.set_horizontalalignment("left")
                t.set_verticalalignment("bottom")
                taken.append(box)
                placed.append(box)
                break
        else:
            t.remove()
            missed += 1
    return placed, missed
