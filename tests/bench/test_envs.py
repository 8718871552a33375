"""Cells of a runtime with an environment of its own: SKIPPED (with the setup command) when it is absent,
run with its Python when present, the spec file's contract version checked on the other side."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from odbench.bench import envs as bench_envs
from odbench.bench.executors import local
from odbench.bench.executors.local import LocalExecutor, run_process
from odbench.bench.store import ResultStore
from odbench.core.envs import READY, EnvSpec
from tests.conftest import make_tiny_onnx
from tests.helpers import cell


@pytest.fixture()
def tiny(tmp_path):
    return make_tiny_onnx(tmp_path / "m" / "model.onnx")


def fake_env(tmp_path: Path, monkeypatch) -> tuple[EnvSpec, Path]:
    """An 'environment' whose Python is this one behind a wrapper that logs how it was started."""
    monkeypatch.setenv("ODBENCH_ENV_CACHE", str(tmp_path / "envs"))
    lock = tmp_path / "fake.txt"
    lock.write_text("# nothing: the wrapper runs this interpreter\n")
    env = EnvSpec("fake", str(lock))
    marker = tmp_path / "started.txt"
    (env.path / "bin").mkdir(parents=True)
    env.python.write_text(f'#!/bin/sh\necho "$ODBENCH_ENV $*" >> {marker}\nexec {sys.executable} "$@"\n')
    env.python.chmod(0o755)
    (env.path / READY).write_text(json.dumps({"name": "fake", "versions": {}}))
    return env, marker


def test_an_absent_environment_is_skipped_with_its_setup_command_and_the_matrix_goes_on(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("ODBENCH_ENV_CACHE", str(tmp_path / "none"))
    pte = tmp_path / "v" / "model.pte"
    pte.parent.mkdir()
    pte.write_bytes(b"not built")
    cells = [cell(pte, name="mob", runtime="executorch"), cell(tiny)]
    results = {r.runtime: r for r in LocalExecutor().run(cells, ResultStore(tmp_path / "run"))}
    assert results["executorch"].verdict == "SKIPPED"
    assert "odbench env setup executorch" in results["executorch"].reason
    assert results["onnxruntime"].verdict == "OK"


def test_a_spec_written_here_is_read_by_the_other_environment(tiny, tmp_path, monkeypatch):
    env, marker = fake_env(tmp_path, monkeypatch)
    monkeypatch.setattr(local, "environment_of", lambda runtime: env)
    r = run_process(cell(tiny))
    assert r.verdict == "OK", (r.reason, r.exit.get("stderr_tail", "")[-600:])
    started = marker.read_text()
    assert started.startswith("fake -c ") and "odbench.bench.cell" in started  # through the boot, not `-m`


def test_a_contract_mismatch_is_a_clear_error(tiny, tmp_path, monkeypatch):
    env, _ = fake_env(tmp_path, monkeypatch)
    monkeypatch.setattr(local, "environment_of", lambda runtime: env)
    r = run_process(dataclasses.replace(cell(tiny), contract=99))
    assert r.verdict == "ERROR"
    assert "contract version 99" in r.reason and "environment fake" in r.reason


def test_every_declared_environment_has_its_lock():
    found = bench_envs.known_envs()
    assert "executorch" in found and found["executorch"][1] == ["executorch"]
    for env, _ in found.values():
        assert env.lock_path.exists(), env.lock
        assert "torch==2.13.0" in env.lock_path.read_text().splitlines()  # never a CUDA build
