"""The Dask executor against a real local scheduler and real worker processes, each tagged
with a device profile: routing, a worker killed mid-run, and a profile with no worker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("distributed")

from odbench.bench.executors.dask import DaskExecutor, worker_profiles  # noqa: E402
from odbench.bench.run_folder import RunFolder  # noqa: E402
from odbench.devices.catalog import get_profile  # noqa: E402
from tests.conftest import make_tiny_onnx  # noqa: E402
from tests.helpers import cell  # noqa: E402

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them

REPO = Path(__file__).resolve().parents[2]


def _spawn(args, log, **env):
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO), **env))


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

    def start_worker(profile, cache=None):
        env = {"ODBENCH_WORKER_CACHE": str(cache)} if cache else {}
        p = _spawn(["odbench", "worker", "--profile", profile, "--scheduler", address, "--emulate", "--no-nanny"], log, **env)
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
    store = RunFolder(tmp_path / "run")
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


def _running_cell(worker) -> bool:
    """Is this worker process running a cell right now (its `bench.cell` child process is alive)?"""
    try:
        return any("odbench.bench.cell" in " ".join(c.cmdline()) for c in psutil.Process(worker.pid).children(recursive=True))
    except psutil.Error:
        return False


def _wait_until(what: str, condition, timeout=90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"never reached: {what}")
        time.sleep(0.02)


def _address_of(address: str, worker) -> str:
    """The Dask address of the worker process (its name ends with the pid of `odbench worker`, which execs the worker)."""
    from distributed import Client

    with Client(address, timeout=20) as client:
        for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
            if str(w.get("name", "")).endswith(f"-{worker.pid}"):
                return addr
    raise LookupError(f"worker pid {worker.pid} is not registered")


@pytest.mark.parametrize("moment", ["mid-first-cell", "mid-cell-after-a-result"])
def test_workers_that_join_late_take_over_from_killed_ones(cluster, tmp_path, moment):
    """A runs the cells. At the moment under test A is frozen mid-cell (SIGSTOP, so nothing moves on
    while the others join: no race), B and C join after the files were sent, and A is killed. Then
    whichever of B and C first runs a cell is killed mid-cell. Every cell completes, OK, and the
    survivor fetched the model it was never sent."""
    address, start_worker = cluster
    a = start_worker("host-1t", tmp_path / "cache-a")
    _wait_for_workers(address, {"host-1t": 1})
    model = make_tiny_onnx(tmp_path / "m.onnx")
    cells = [cell(model, f"m{i}", profile=get_profile("host-1t")) for i in range(3)]
    store = RunFolder(tmp_path / "run")
    out: list = []
    runner = threading.Thread(target=lambda: out.append(DaskExecutor(address).run(cells, store)), daemon=True)
    runner.start()
    wants_result = moment == "mid-cell-after-a-result"
    _wait_until(moment, lambda: _running_cell(a) and (bool(store.all()) == wants_result))
    os.kill(a.pid, signal.SIGSTOP)  # frozen mid-cell: its files were sent before B and C join
    others = {start_worker("host-1t", tmp_path / f"cache-{n}"): n for n in "bc"}
    _wait_for_workers(address, {"host-1t": 3})
    addresses = {_address_of(address, w): w for w in others}
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    _wait_until("B or C runs a cell", lambda: any(_running_cell(w) for w in others))
    victim = next(w for w in others if _running_cell(w))
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = next(w for w in others if w is not victim)
    runner.join(timeout=120)
    assert not runner.is_alive() and out, "the run did not finish"
    results = {r.cell_id: r for r in store.all()}
    assert sorted(results) == sorted(c.cell_id for c in cells)  # no cell lost
    assert all(r.verdict in ("OK", "UNSTABLE") for r in results.values()), [r.reason for r in results.values()]
    ran_on = [addresses.get(r.provenance["worker"]) for r in results.values()]
    assert survivor in ran_on and victim not in ran_on  # the victim's cell was finished by the survivor
    assert list((tmp_path / f"cache-{others[survivor]}").rglob("m.onnx"))  # fetched on demand, never sent to it


def test_a_file_is_fetched_on_demand_and_checked(tmp_path, monkeypatch):
    from odbench.bench.executors.dask import FileRef, _fetch

    monkeypatch.setenv("ODBENCH_WORKER_CACHE", str(tmp_path / "cache"))
    data = b"model bytes"
    import hashlib

    ref = FileRef(hashlib.sha256(data).hexdigest(), "model.onnx", variable="odbench-file-x")
    pulls = []
    path = _fetch(ref, pull=lambda name: pulls.append(name) or data)
    assert Path(path).read_bytes() == data and pulls == ["odbench-file-x"]
    assert _fetch(ref, pull=lambda name: pytest.fail("cached: no second fetch")) == path
    bad = FileRef("0" * 64, "model.onnx", variable="v")
    with pytest.raises(RuntimeError, match="does not match sha256 000000000000"):
        _fetch(bad, pull=lambda name: data)


def test_no_scheduler_address_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ODBENCH_SCHEDULER", raising=False)
    with pytest.raises(ValueError, match="ODBENCH_SCHEDULER"):
        DaskExecutor(None)


class _Future:
    def __init__(self, outcome):
        self.outcome = outcome
        self.status = "error" if isinstance(outcome, Exception) else "finished"

    def result(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class _Client:
    """Just enough of distributed.Client: each submit takes the next scripted outcome."""

    def __init__(self, outcomes):
        self.outcomes, self.submitted = list(outcomes), 0

    def scheduler_info(self, n_workers=-1):
        return {"workers": {"tcp://w:1": {"resources": {"device:host-1t": 1}}}}

    def submit(self, fn, spec_json, files, **kw):
        self.submitted += 1
        return _Future(self.outcomes.pop(0))


def test_a_cell_whose_worker_was_lost_is_submitted_again_and_a_failed_one_is_not(tmp_path):
    import types

    from distributed.scheduler import KilledWorker

    from odbench.bench.executors.dask import FileShelf
    from odbench.core.records import Result, to_json

    model = make_tiny_onnx(tmp_path / "m.onnx")
    spec = cell(model, "m", profile=get_profile("host-1t"))
    ok = to_json(Result.for_cell(spec, "OK", ""))
    run = DaskExecutor("tcp://unused:1", shared_root=str(tmp_path))._run
    client = _Client([KilledWorker("cell", types.SimpleNamespace(address="tcp://w:0"), 3), ok])
    run(client, FileShelf(client, str(tmp_path)), [spec], RunFolder(tmp_path / "a"), record=(got := []).append)
    assert client.submitted == 2 and [r.verdict for r in got] == ["OK"]
    client = _Client([RuntimeError("received m.onnx does not match sha256 0123")])
    run(client, FileShelf(client, str(tmp_path)), [spec], RunFolder(tmp_path / "b"), record=(got := []).append)
    assert client.submitted == 1 and got[0].verdict == "ERROR" and "does not match sha256" in got[0].reason
