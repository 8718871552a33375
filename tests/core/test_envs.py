"""core/envs.py: an environment is keyed by its lock, says how to build it, and the cell contract is versioned."""
from __future__ import annotations

import sys

import pytest

from odbench.core.envs import BOOT, CELL_CONTRACT_VERSION, ENV_VAR, SOURCE_VAR, ContractError, EnvSpec, check_contract, process_command


def test_an_absent_environment_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ODBENCH_ENV_CACHE", str(tmp_path))
    lock = tmp_path / "x.txt"
    lock.write_text("numpy==2.4.6\n")
    env = EnvSpec("x", str(lock))
    ok, why = env.status()
    assert not ok and "odbench env setup x" in why and str(env.path) in why
    assert env.path.parent == tmp_path and env.path.name.startswith("env-x-")


def test_the_folder_follows_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("ODBENCH_ENV_CACHE", str(tmp_path))
    lock = tmp_path / "x.txt"
    lock.write_text("numpy==2.4.6\n")
    env = EnvSpec("x", str(lock))
    before = env.path
    lock.write_text("numpy==2.4.5\n")
    assert env.path != before
    assert not EnvSpec("y", str(tmp_path / "missing.txt")).status()[0]


def test_contract_versions_must_match():
    check_contract(CELL_CONTRACT_VERSION)
    with pytest.raises(ContractError, match="contract version 7"):
        check_contract(7)


def test_a_cell_in_another_environment_boots_this_checkout(tmp_path, monkeypatch):
    lock = tmp_path / "x.txt"
    lock.write_text("")
    env = EnvSpec("x", str(lock))
    argv, extra = process_command("odbench.bench.cell", ["a", "b"], env)
    assert argv[:3] == [str(env.python), "-c", BOOT] and argv[3:] == ["odbench.bench.cell", "a", "b"]
    assert extra[ENV_VAR] == "x" and extra[SOURCE_VAR]
    monkeypatch.setenv(ENV_VAR, "x")  # already inside it: this interpreter
    assert process_command("m", [], env) == ([sys.executable, "-m", "m"], {})
    assert process_command("m", [], None) == ([sys.executable, "-m", "m"], {})
