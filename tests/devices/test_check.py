"""Emulation only downward: a profile that asks for more than this host has is SKIPPED, naming what is missing."""
from __future__ import annotations

import os

import yaml

from odbench.bench.executors.local import run_cell
from odbench.bench.skips import skip_reason
from odbench.devices.catalog import get_profile
from odbench.devices.check import emulation_note, emulation_obstacle, missing_isa
from odbench.devices.host import detect_host
from odbench.devices.profile import load_profile_file, parse_profile
from tests.conftest import make_tiny_onnx
from tests.helpers import cell

NO_CPU_HAS = ("avx1024_quantum", "neon_hyperdrive")  # features no CPU has: these tests run on any host


def _small(**change):
    host = detect_host()
    return {"name": "small", "arch": host.arch, "isa": [], "cores": 1, "threads": 1,
            "cpus": [sorted(os.sched_getaffinity(0))[0]], "memory_mb": 1024, "runtimes": ["onnxruntime"], **change}


def _profile_file(tmp_path, **change):
    data = _small(**change)
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_profile_file(path)


def test_a_profile_asking_for_an_isa_feature_this_host_lacks_is_skipped_naming_it(tmp_path):
    host_has = list(detect_host().isa[:1])  # a feature the host has is not named
    profile = _profile_file(tmp_path, name="future-cpu", isa=host_has + list(NO_CPU_HAS))
    why = emulation_obstacle(profile)
    assert why.startswith(f"this host lacks {', '.join(NO_CPU_HAS)}: run it on the device")
    assert not any(f"lacks {f}" in why for f in host_has)
    assert emulation_note(profile) == f"device only: this host lacks {', '.join(NO_CPU_HAS)}"  # `odbench devices`


def test_the_run_skips_it_before_any_timing(tmp_path):
    profile = _profile_file(tmp_path, name="future-cpu", isa=list(NO_CPU_HAS))
    spec = cell(make_tiny_onnx(tmp_path / "m" / "model.onnx"), "tiny", profile=profile)
    assert spec.measured_on == "emulated"
    assert "this host lacks avx1024_quantum, neon_hyperdrive" in skip_reason(spec)
    r = run_cell(spec)
    assert r.verdict == "SKIPPED" and "avx1024_quantum" in r.reason and not r.samples_ms


def test_more_cores_or_memory_than_the_host_is_skipped(tmp_path):
    host = detect_host()
    more_cores = _profile_file(tmp_path, name="big", cores=host.cores + 1)
    assert f"this host lacks cores ({host.cores + 1} wanted, {host.cores} here)" in emulation_obstacle(more_cores)
    more_memory = _profile_file(tmp_path, name="fat", memory_mb=host.memory_mb + 1)
    assert "this host lacks memory" in emulation_obstacle(more_memory)
    assert emulation_obstacle(_profile_file(tmp_path)) is None  # a smaller machine: emulated
    assert emulation_note(_profile_file(tmp_path)) == "emulate"


def test_an_isa_cap_needs_the_features_it_names():
    p = parse_profile(_small(isa=["avx2"], isa_cap="AVX512_CORE_VNNI"))
    avx2_only = {"sse4_1", "sse4_2", "avx", "avx2", "fma"}
    assert missing_isa(p, avx2_only) == ["avx512f", "avx512bw", "avx512vl", "avx512_vnni"]
    assert missing_isa(p, avx2_only | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"}) == []
    assert missing_isa(parse_profile(_small(isa=["neon", "dotprod"])), {"asimd", "asimddp"}) == []  # kernel spellings


def test_the_avx512_server_profile_is_emulated_only_where_avx512_is():
    p = get_profile("x86-server-avx512")
    lacking = missing_isa(p)
    why = emulation_obstacle(p)
    if lacking:
        assert why.startswith(f"this host lacks {', '.join(lacking)}")
    elif why:  # the host has the ISA: only cores or CPUs may stop it
        assert "avx512" not in why
