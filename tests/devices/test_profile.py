import os
import subprocess
import sys

import pytest
import yaml

from devices.host import detect_host
from devices.profile import ProfileError, get_profile, list_profile_files, load_profile_file, parse_profile

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
        ({"datasheet": {"peak_gflops": 10}}, "datasheet.source"),
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
    p = parse_profile(GOOD)
    with pytest.raises(Exception):
        p.threads = 2


def test_apply_profile_in_a_child_process():
    code = (
        "from devices.apply import apply_profile; from devices.profile import parse_profile;"
        "import os, resource;"
        "a = apply_profile(parse_profile({'name':'t','arch':'x86_64','cores':1,'threads':1,'cpus':[0],'memory_mb':1024,'memory_cap_mb':1024}));"
        "print(a['cpus'], a['memory_cap_mb'], sorted(os.sched_getaffinity(0)), resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20, os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[0]", "1024", "[0]", "1024", "1"]


def test_apply_profile_refuses_cpus_the_machine_lacks():
    from devices.apply import ProfileNotApplied, apply_profile

    p = parse_profile({**GOOD, "arch": "x86_64", "cpus": [4096], "threads": 1})
    with pytest.raises(ProfileNotApplied, match="4096"):
        apply_profile(p)
