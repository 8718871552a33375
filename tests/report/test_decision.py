"""The decision: the pick, and the runners-up the data cannot separate from it."""
from __future__ import annotations

import math

from odbench.core.records import Result
from odbench.report.decision import Point, decide, separated
from odbench.report.figures import Estimate as E
from odbench.report.figures import no_detected_loss


def _point(variant: str, runtime: str, speedup: E | None, delta: E | None, p95: E | None, tag: str = "M1") -> Point:
    r = Result(cell_id=variant + runtime, model="m", variant_id=f"m/{variant}", runtime=runtime, profile="host",
               measured_on="device", scenario="query", verdict="OK")
    return Point(tag, r, speedup, delta, None, p95, "isolated")


def test_without_budgets_the_fastest_cell_without_a_detected_loss_is_picked_and_its_peers_named():
    fp32 = _point("fp32", "onnxruntime", E(1.0, 1.0, 1.0), E(0.0, 0.0, 0.0), E(10.0, 9.0, 11.0))
    lossy = _point("int4", "onnxruntime", E(3.0, 2.8, 3.2), E(-0.05, -0.06, -0.04), E(3.0, 2.8, 3.2))  # fastest, loses recall
    int8 = _point("int8", "onnxruntime", E(2.0, 1.8, 2.2), E(-0.001, -0.01, 0.008), E(5.0, 4.5, 5.6))
    emb8 = _point("emb8", "onnxruntime", E(1.9, 1.7, 2.1), E(0.0, -0.002, 0.002), E(5.2, 4.7, 5.8))  # overlaps int8
    ov = _point("int8", "openvino", None, None, E(5.5, 5.3, 5.7))  # another runtime: compared on p95; no accuracy record
    d = decide("m", [fp32, lossy, int8, emb8, ov], "recall@10", None)
    assert d.pick is int8
    assert d.ties == (emb8,)  # speedups vs the same fp32 cell overlap; fp32 is slower beyond the intervals
    assert d.others == 1 and any("recall@10 Δ vs fp32: -0.0010 [-0.0100, +0.0080]" in w for w in d.why)
    assert any("x2.00 [1.80, 2.20] (isolated processes)" in w for w in d.why)


def test_with_budgets_the_callers_order_holds_and_a_cheaper_rank_separates():
    a = _point("a", "onnxruntime", E(2.0, 1.5, 2.5), E(0.0, -0.01, 0.01), E(5.0, 4.0, 6.0))
    b = _point("b", "onnxruntime", E(1.9, 1.4, 2.4), E(0.0, -0.01, 0.01), E(5.2, 4.1, 6.1))
    c = _point("c", "onnxruntime", E(1.8, 1.3, 2.3), E(0.0, -0.01, 0.01), E(5.3, 4.2, 6.2))
    d = decide("m", [a, b, c], "auc", 2, [(1.0, None), (1.0, None), (2.0, None)], "price, then worst p95")
    assert d.pick is a and d.ties == (b,) and d.others == 1  # c costs more: separated by its price
    assert "passes every budget judged on its cells (2 for this model); ranked by price, then worst p95" in d.why[0]
    assert decide("m", [], "auc", 2).pick is None


def test_separation_needs_intervals_that_do_not_overlap():
    x = _point("x", "onnxruntime", E(2.0, 1.9, 2.1), None, E(1.0))  # p95 without an interval
    y = _point("y", "onnxruntime", E(1.5, 1.4, 1.6), None, E(2.0))
    z = _point("z", "openvino", E(1.5, 1.4, 1.6), None, E(2.0))
    assert separated(x, y)  # same fp32 cell: speedups apart
    assert not separated(x, z)  # across runtimes: p95, which has no interval
    assert not no_detected_loss(E(-0.02, -0.03, -0.01), "auc") and no_detected_loss(E(-0.02, -0.03, 0.01), "auc")
    assert not no_detected_loss(E(0.02, 0.01, 0.03), "logloss")  # lower is better: a rise is a loss
    assert E.of(1.0, math.nan, 2.0) == E(1.0) and E.of(math.inf) is None
