import os
import subprocess
import sys

import pytest
import yaml

from odbench.devices.catalog import get_profile
from odbench.devices.host import detect_host
from odbench.devices.profile import ProfileError, list_profile_files, load_profile_file, parse_profile

GOOD = {
    "name": "pi5", "arch": "aarch64", "isa": ["neon", "asimddp"], "cores": 4, "threads": 4,
    "memory_mb": 8192, "runtimes": ["onnxruntime"],
}


@pytest.mark.parametrize("path", list_profile_files(), ids=lambda p: p.stem)
def test_shipped_profiles_validate(path):
    assert load_profile_file(path).name == path.stem


def test_host_is_detected():
    host = detect_host()
    assert host.name == "host" and host.cores >= 1 and host.memory_mb > 0
    assert 1 <= host.threads <= len(os.sched_getaffinity(0))
    assert get_profile("host") == host


@pytest.mark.parametrize(
    "change, field",
    [
        ({"threads": 0}, "threads"),
        ({"arch": "sparc"}, "arch"),
        ({"memory_mb": "lots"}, "memory_mb"),
        ({"turbo": True}, "turbo"),
        ({"datasheet": {"peak_gflops": 10}}, "datasheet"),
        ({"datasheet": {"peak_gflops": 10, "sources": {"peak_flops": "typo"}}}, "datasheet"),
        ({"isa_cap": "AVX9000"}, "isa_cap"),
        ({"clusters": [{"name": "big", "cores": 1}]}, "clusters"),
    ],
)
def test_bad_profile_names_the_field(change, field, tmp_path):
    path = tmp_path / "pi5.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    with pytest.raises(ProfileError) as err:
        load_profile_file(path)
    assert f"field '{field}'" in str(err.value) or (field == "clusters" and "clusters" in str(err.value))
    assert str(path) in str(err.value)


def test_profile_name_must_match_file(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ProfileError, match="field 'name'"):
        load_profile_file(path)


def test_not_a_mapping_and_unknown_name():
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_profile(["x"])
    with pytest.raises(ProfileError, match="unknown device profile 'nope'"):
        get_profile("nope")


def test_profiles_are_immutable():
    from pydantic import ValidationError

    p = parse_profile(GOOD)
    with pytest.raises(ValidationError, match="Instance is frozen"):
        p.threads = 2
    assert p.threads == 4


def test_apply_profile_in_a_child_process():
    code = (
        "from odbench.devices.apply import apply_profile; from odbench.devices.profile import parse_profile;"
        "import os, resource;"
        "a = apply_profile(parse_profile({'name':'t','arch':'x86_64','cores':1,'threads':1,'cpus':[0],"
        "'memory_mb':1024,'memory_cap_mb':1024}));"
        "print(a['cpus'], a['memory_cap_mb'], sorted(os.sched_getaffinity(0)), "
        "resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20, os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[0]", "1024", "[0]", "1024", "1"]


def test_apply_profile_refuses_cpus_the_machine_lacks():
    from odbench.devices.apply import ProfileNotApplied, apply_profile

    p = parse_profile({**GOOD, "arch": "x86_64", "cpus": [4096], "threads": 1})
    with pytest.raises(ProfileNotApplied, match="4096"):
        apply_profile(p)


REQUIRED_KINDS = ["x86-server-avx512", "x86-laptop-avx2", "rpi4", "rpi5", "graviton3", "jetson-orin-nano", "phone-big-little"]


@pytest.mark.parametrize("name", REQUIRED_KINDS)
def test_shipped_device_profiles_are_complete_and_sourced(name):
    p = get_profile(name)
    assert p.isa and p.clusters and all(c.max_mhz for c in p.clusters) and p.memory_mb
    assert p.runtimes and p.execution_providers
    d = p.datasheet
    assert d.peak_gflops and d.mem_bandwidth_gbs and d.power_w
    assert d.unit_price_usd is not None or d.hourly_price_usd is not None
    for figure in ("peak_gflops", "mem_bandwidth_gbs", "power_w"):
        assert d.sources.get(figure) or d.source


def test_datasheet_error_names_the_unsourced_figure(tmp_path):
    path = tmp_path / "pi5.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "datasheet": {"peak_gflops": 10, "power_w": 5, "sources": {"power_w": "spec sheet"}}}))
    with pytest.raises(ProfileError, match="peak_gflops"):
        load_profile_file(path)


def _spec_for(profile, runtime="onnxruntime", measured_on="emulated", path="/nonexistent.onnx"):
    from odbench.core.records import CellSpec, Feeds
    from tests.helpers import FAST

    return CellSpec(model="m", variant_id="m/fp32", variant_path=path, variant_sha256=None, runtime=runtime,
                    runtime_options={}, profile=profile.model_dump(mode="json"), measured_on=measured_on,
                    scenario="s", items_per_inference=1, feeds=Feeds(), timing=FAST, timeout_s=30)


def test_skip_reasons_are_given_before_any_timing():
    from odbench.bench.skips import skip_reason

    host = detect_host()
    other_arch = "aarch64" if host.arch == "x86_64" else "x86_64"
    assert "run it on the device" in skip_reason(_spec_for(parse_profile({**GOOD, "arch": other_arch})))
    too_many = parse_profile({**GOOD, "arch": host.arch, "isa": [], "cores": 1, "threads": 64})
    assert "needs 64 CPUs" in skip_reason(_spec_for(too_many))
    bigger = parse_profile({**GOOD, "arch": host.arch, "isa": [], "cores": host.cores + 1, "threads": 1})
    assert "this host lacks cores" in skip_reason(_spec_for(bigger))
    ort_only = parse_profile({**GOOD, "arch": host.arch, "isa": [], "cores": 1, "threads": 1, "memory_mb": 1024})
    assert "does not support runtime 'openvino'" in skip_reason(_spec_for(ort_only, runtime="openvino"))
    assert skip_reason(_spec_for(ort_only)) is None


def test_isa_cap_is_applied_in_the_child_and_ranked():
    from odbench.devices.apply import isa_level

    assert isa_level("jit_avx512_f32") > isa_level("AVX2") >= isa_level("jit_avx2_i32")
    assert isa_level("ref_any_f32") is None and isa_level("brgemm_avx512_amx") == isa_level("AVX512_CORE_AMX")
    code = (
        "from odbench.devices.apply import apply_profile; from odbench.devices.profile import parse_profile; import os;"
        "a = apply_profile(parse_profile({'name':'t','arch':'x86_64','cores':1,'threads':1,'cpus':[0],'memory_mb':1024,'isa_cap':'AVX2'}));"
        "print(a['isa_cap'], os.environ['ONEDNN_MAX_CPU_ISA'], os.environ['ATEN_CPU_CAPABILITY'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["AVX2", "AVX2", "avx2"]


def test_a_profile_of_this_whole_machine_is_measured_on_the_device():
    from odbench.bench.matrix import measured_on

    host = detect_host()
    same = host.model_copy(update={"name": "this-box", "description": "this machine, as a named profile"})
    assert measured_on(host) == "device" and measured_on(same) == "device"
    assert measured_on(get_profile("host-1t")) == "emulated"  # a slice of it
    assert measured_on(host.model_copy(update={"name": "small", "memory_mb": host.memory_mb // 4})) == "emulated"
    other = "aarch64" if host.arch == "x86_64" else "x86_64"
    assert measured_on(host.model_copy(update={"name": "other", "arch": other})) == "emulated"
