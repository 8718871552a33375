"""The locked environment loads: in CI a runtime that the lock installs (or the ARM environment that
`make arm-setup` prepares) failing to load is a failure, not a skip.

Elsewhere the tests that need a runtime skip with the reason, as a user's machine may lack one. CI sets
``ODBENCH_STRICT=1`` (.ci/run); then a locked runtime that does not load fails here, by name, so a broken
OpenVINO install can no longer pass CI as a row of skips.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from odbench.bench.arm.env import ArmEnvError, find_env
from odbench.bench.envs import get_env, known_envs
from odbench.core.constants import INFERENCE_RUNTIMES
from odbench.runtimes import get_runtime

REPO = Path(__file__).resolve().parents[1]
STRICT = os.environ.get("ODBENCH_STRICT") == "1"


def _locked_packages() -> set[str]:
    names = set()
    for line in (REPO / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==", line.strip())
        if m:
            names.add(m.group(1).lower().replace("_", "-"))
    return names


LOCKED = [n for n in INFERENCE_RUNTIMES if get_runtime(n).package.lower().replace("_", "-") in _locked_packages()]


def test_the_lock_names_the_main_runtimes():
    assert {"onnxruntime", "openvino", "torch"} <= set(LOCKED)


@pytest.mark.parametrize("name", LOCKED)
def test_locked_runtime_loads(name):
    ok, why = get_runtime(name).available()
    if ok:
        return
    if STRICT:
        pytest.fail(f"{name} is in requirements.txt but does not load: {why}")
    pytest.skip(f"{name} does not load here: {why}")


def test_arm_environment_loads():
    try:
        find_env()
    except ArmEnvError as exc:
        if STRICT:
            pytest.fail(f"the ARM environment (make arm-setup) does not load: {exc}")
        pytest.skip(f"no emulated aarch64 environment: {exc}")


@pytest.mark.parametrize("name", sorted(known_envs()))
def test_mobile_environment_is_built(name):
    """`make test` runs `make mobile-setup` first: in CI an environment it could not build fails here, by name."""
    ok, why = get_env(name).status()
    if ok:
        return
    if STRICT:
        pytest.fail(f"the {name} environment (make mobile-setup) is not built: {why}")
    pytest.skip(why)
