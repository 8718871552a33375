"""Emulating a profile on this host: the threads, affinity and ISA cap the cell process really ran with."""
from __future__ import annotations

import os

import pytest

from odbench.bench.executors.local import run_cell
from odbench.devices.host import detect_host
from odbench.devices.profile import parse_profile
from odbench.runtimes import get_runtime
from tests.conftest import make_tiny_onnx
from tests.helpers import cell


def _one_cpu_profile(**extra):
    host = detect_host()
    cpu = sorted(os.sched_getaffinity(0))[-1]
    return parse_profile({"name": "one-cpu", "arch": host.arch, "cores": 1, "threads": 1, "cpus": [cpu],
                          "memory_mb": 2048, "memory_cap_mb": 4096, "runtimes": ["onnxruntime", "openvino", "torch"], **extra}), cpu


@pytest.mark.slow  # a cell in fresh processes per runtime: make test runs it, the quick loop does not
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "torch"])
def test_threads_and_affinity_seen_in_the_cell(runtime, tmp_path):
    ok, why = get_runtime(runtime).available()
    if not ok:
        pytest.skip(why)
    profile, cpu = _one_cpu_profile()
    r = run_cell(cell(make_tiny_onnx(tmp_path / "m" / "model.onnx"), "tiny", runtime=runtime, profile=profile))
    assert r.verdict in ("OK", "UNSTABLE"), r.reason
    assert r.measured_on == "emulated" and r.profile == "one-cpu"
    assert r.applied["cpus"] == [cpu] and r.applied["memory_cap_mb"] == 4096
    assert r.applied["thread_cpus"] == [cpu]  # every thread of the cell, read back from the kernel
    assert r.runtime_info["intra_op_threads"] == 1


@pytest.mark.skipif(detect_host().arch != "x86_64", reason="oneDNN ISA caps are x86 ISA names")
def test_isa_cap_reaches_openvino_and_is_reported_as_unenforced_by_onnxruntime(tmp_path):
    profile, _ = _one_cpu_profile(isa_cap="AVX2")
    path = make_tiny_onnx(tmp_path / "m" / "model.onnx")
    ort = run_cell(cell(path, "tiny", profile=profile))
    assert ort.applied["isa_cap"] == "AVX2"
    assert ort.runtime_info["isa_cap"]["enforced"] is False
    assert any("ISA cap AVX2 not fully enforced by onnxruntime" in w for w in ort.warnings)
    if not get_runtime("openvino").available()[0]:
        pytest.skip("openvino is not installed")
    ov = run_cell(cell(path, "tiny", runtime="openvino", profile=profile))
    assert ov.verdict in ("OK", "UNSTABLE"), ov.reason
    assert ov.runtime_info["onednn_max_cpu_isa"] == "AVX2"
    cap = ov.runtime_info["isa_cap"]
    assert cap["requested"] == "AVX2" and isinstance(cap["enforced"], bool) and "kernels" in cap["detail"]
