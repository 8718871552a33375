"""The Dask executor against a real local scheduler and real worker processes, each tagged
with a device profile: routing, a worker killed mid-run, and a profile with no worker."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from bench.executors.dask import DaskExecutor, worker_profiles  # noqa: E402
from bench.store import ResultStore  # noqa: E402
from devices.profile import get_profile  # noqa: E402
from tests.conftest import make_tiny_onnx  # noqa: E402
from tests.helpers import FAST, cell  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _spawn(args, log):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.fixture
def cluster(tmp_path):
    """A scheduler plus workers started like `odbench worker --emulate` would; returns (address, start_worker)."""
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "wb")
    procs = [_spawn(["distributed.cli.dask_scheduler", "--scheduler-file", str(sched_file), "--port", "0",
                     "--dashboard-address", ":0", "--no-show"], log)]
    deadline = time.monotonic() + 30
    while not sched_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    import json

    address = json.loads(sched_file.read_text())["address"]

    def start_worker(profile):
        p = _spawn(["bench", "worker", "--profile", profile, "--scheduler", address, "--emulate", "--no-nanny"], log)
        procs.append(p)
        return p

    yield address, start_worker
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    log.close()


def _wait_for_workers(address, want: dict[str, int], timeout=40):
    from distributed import Client

    with Client(address, timeout=20) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = worker_profiles(client)
            if all(len(got.get(p, [])) >= n for p, n in want.items()):
                return got
            time.sleep(0.2)
    raise TimeoutError(f"workers did not join: want {want}")


def test_cells_route_to_their_profile_and_a_missing_profile_is_reported(cluster, tmp_path):
    address, start_worker = cluster
    start_worker("host-1t")
    start_worker("host-2t")
    workers = _wait_for_workers(address, {"host-1t": 1, "host-2t": 1})
    model = make_tiny_onnx(tmp_path / "m.onnx")
    cells = [cell(model, f"m{i}", profile=get_profile(p)) for i in range(2) for p in ("host-1t", "host-2t")]
    cells.append(cell(model, "orphan", profile=get_profile("host-1t").model_copy(update={"name": "rpi5"})))
    store = ResultStore(tmp_path / "run")
    results = {r.cell_id: r for r in DaskExecutor(address).run(cells, store)}
    assert len(results) == len(cells) == len(store.all())
    for c in cells[:-1]:
        r = results[c.cell_id]
        assert r.verdict in ("OK", "UNSTABLE"), r.reason
        assert r.provenance["worker"] in workers[c.profile_name]  # ran on a worker of its own profile
        assert r.measured_on == "emulated" and r.applied["threads"] == c.profile["threads"]
    orphan = results[cells[-1].cell_id]
    assert orphan.verdict == "ERROR" and "no Dask worker advertises device:rpi5" in orphan.reason
    # a rerun resumes: nothing left to do
    assert DaskExecutor(address).run(cells, store) == []


def test_a_worker_killed_mid_run_costs_nothing(cluster, tmp_path):
    address, start_worker = cluster
    victim = start_worker("host-1t")
    start_worker("host-1t")
    _wait_for_workers(address, {"host-1t": 2})
    model = make_tiny_onnx(tmp_path / "m.onnx")
    slow = dataclasses.replace(FAST, min_time_s=1.5, max_time_s=2.0)
    cells = [cell(model, f"m{i}", profile=get_profile("host-1t"), timing=slow) for i in range(4)]
    store = ResultStore(tmp_path / "run")

    def kill_soon():
        time.sleep(4.0)  # cells take ~3 s each: the victim is mid-cell
        os.killpg(victim.pid, signal.SIGKILL)

    threading.Thread(target=kill_soon, daemon=True).start()
    results = DaskExecutor(address).run(cells, store)
    assert victim.poll() is not None  # it really died
    assert len(results) == 4 and len(store.all()) == 4
    assert all(r.verdict in ("OK", "UNSTABLE") for r in results), [r.reason for r in results]


def test_no_scheduler_address_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ODBENCH_SCHEDULER", raising=False)
    with pytest.raises(ValueError, match="ODBENCH_SCHEDULER"):
        DaskExecutor(None)
