"""The plan (bench/matrix.py): variants x scenarios x runtimes x profiles, in a stable order."""
from __future__ import annotations

import dataclasses

from odbench.bench.matrix import Workload, default_timeout, measured_on, plan
from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import Feeds, ParitySpec, Variant
from odbench.devices.catalog import get_profile
from odbench.devices.host import detect_host
from tests.helpers import FAST


def _variant(name: str) -> Variant:
    return Variant(id=f"{name}/fp32", model=name, path=f"/models/{name}.onnx", sha256="ab" * 32, size_bytes=1,
                   scenarios=("a", "b"))


def _workload(name: str) -> Workload:
    return Workload(_variant(name), {"a": (Feeds(dims=(("batch", 1),)), 1), "b": (Feeds(dims=(("batch", 8),)), 8)}, "ranking")


RUNTIMES = [("onnxruntime", {}), ("onnxruntime", {"graph_optimization": "basic"}), ("openvino", {})]


def test_every_combination_once_in_a_stable_order():
    profiles = [detect_host(), get_profile("host-1t")]
    cells = plan([_workload("m1"), _workload("m2")], RUNTIMES, profiles, FAST)
    assert len(cells) == 2 * 2 * 3 * 2
    assert len({c.cell_id for c in cells}) == len(cells)
    order = [(c.variant_id, c.scenario, c.runtime, tuple(sorted(c.runtime_options.items())), c.profile_name) for c in cells]
    assert order[:3] == [("m1/fp32", "a", "onnxruntime", (), "host"), ("m1/fp32", "a", "onnxruntime", (), "host-1t"),
                         ("m1/fp32", "a", "onnxruntime", (("graph_optimization", "basic"),), "host")]
    assert plan([_workload("m1"), _workload("m2")], RUNTIMES, profiles, FAST) == cells  # same input, same plan


def test_each_cell_carries_its_scenario_feeds_items_and_where_it_is_measured():
    cells = plan([_workload("m")], [("onnxruntime", {})], [detect_host(), get_profile("host-1t")], FAST)
    by = {(c.scenario, c.profile_name): c for c in cells}
    assert by[("b", "host")].items_per_inference == 8 and dict(by[("b", "host")].feeds.dims) == {"batch": 8}
    assert by[("a", "host")].measured_on == "device" == measured_on(detect_host())
    assert by[("a", "host-1t")].measured_on == "emulated"  # a one-thread slice of this machine
    assert by[("a", "host")].variant_sha256 == "ab" * 32 and by[("a", "host")].timing == FAST


def test_scenario_filter_and_timeouts():
    only_b = plan([_workload("m")], RUNTIMES[:1], [detect_host()], FAST, scenarios=["b"])
    assert [c.scenario for c in only_b] == ["b"]
    assert only_b[0].timeout_s == default_timeout(FAST) > FAST.max_time_s
    assert plan([_workload("m")], RUNTIMES[:1], [detect_host()], FAST, timeout_s=7.0)[0].timeout_s == 7.0
    assert plan([_workload("m")], RUNTIMES[:1], [detect_host()], FAST, scenarios=["nope"]) == []


def test_runtime_options_are_copied_into_each_cell():
    options = {"graph_optimization": "basic"}
    (cell, *_) = plan([_workload("m")], [("onnxruntime", options)], [detect_host()], FAST)
    options["graph_optimization"] = "disable"
    assert cell.runtime_options == {"graph_optimization": "basic"}


def test_parity_compares_with_the_reference_runtime_except_the_reference_itself():
    spec = ParitySpec(kind="ranking", reference="/refs/m.npz", reference_sha256="cd" * 32)
    cells = plan([_workload("m")], RUNTIMES, [detect_host()], FAST, parity={("m/fp32", "a"): spec})
    with_parity = {(c.runtime, bool(c.runtime_options)): c.parity for c in cells if c.scenario == "a"}
    assert with_parity[(REFERENCE_RUNTIME, False)] == dataclasses.replace(spec, compare_runtime=False)
    assert with_parity[(REFERENCE_RUNTIME, True)].compare_runtime is True  # other options: compare with the default
    assert with_parity[("openvino", False)] == dataclasses.replace(spec, compare_runtime=True)
    assert all(c.parity is None for c in cells if c.scenario == "b")  # no reference for that scenario
