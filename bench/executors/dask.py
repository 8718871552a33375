"""The Dask distributed executor: the same cells and the same per-cell harness, run on the
target devices.

A device joins by starting a Dask worker that advertises its profile as a resource
(``device:<profile>=1``, one thread): ``odbench worker --profile rpi5 --scheduler tcp://host:8786``.
Each cell is submitted with the resource of its profile, so it runs only on a matching
device, and only one cell at a time holds a device. On the worker, the cell still runs in
fresh processes with a timeout (bench/executors/local.py: ``run_cell``).

Model and feed files travel from the controller unless ``shared_root`` says the workers see the
controller's paths. The controller puts each file once (per sha256) on the scheduler, as a Dask
``Variable``, and a worker fetches it on demand into its local cache when a cell needs it, so a
worker that joined after the files were sent gets them, and a worker's death loses no file.
(Files scattered to the workers died with the worker that held them: "Removing worker ... caused
the cluster to lose scattered data, which can't be recovered", and every cell that needed them was
cancelled.) Either way the worker checks the sha256 before it runs a cell.

Results stream back as each cell finishes and are stored atomically; a rerun skips finished cells.
A worker that dies mid-cell costs that attempt only: Dask reschedules the cell on another worker of
the same profile, and the controller submits it again (up to ``MAX_ATTEMPTS``) if Dask gave it up
while a worker of its profile is alive. When no worker of its profile is left, the cell is recorded
as ERROR with the reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from odbench.bench.executors.local import run_cell
from odbench.bench.provenance import machine
from odbench.bench.run_folder import RunFolder
from odbench.core.records import CellSpec, Result, sha256_file, to_json

RESOURCE_PREFIX = "device:"
SCHEDULER_ENV = "ODBENCH_SCHEDULER"
MEASURED_ON_ENV = "ODBENCH_MEASURED_ON"  # set by `odbench worker`: "device" or "emulated"
ORPHAN_GRACE_S = 10.0
MAX_ATTEMPTS = 4  # submissions of one cell while workers of its profile die under it
FETCH_TIMEOUT_S = 120.0
# exceptions that say a worker was lost under the cell (not that the cell failed): submit it again
WORKER_LOSS = ("KilledWorker", "CancelledError", "FutureCancelledError", "CommClosedError")


@dataclasses.dataclass(frozen=True)
class FileRef:
    """Where a worker gets one file: a path it shares with the controller, or a scheduler Variable."""

    sha256: str
    name: str
    shared_path: str | None = None
    variable: str | None = None


def resource_for(profile: str) -> str:
    return f"{RESOURCE_PREFIX}{profile}"


def _pull(variable: str) -> bytes:
    """On the worker: the file's bytes from the scheduler, where the controller put them."""
    from distributed import Variable, get_client

    return Variable(variable, client=get_client()).get(timeout=FETCH_TIMEOUT_S)


def _fetch(ref: FileRef, pull: Callable[[str], bytes] = _pull) -> str:
    """On the worker: a local path to the file with this sha256 (a shared path, or its cached copy,
    fetched from the scheduler when this worker has none yet)."""
    if ref.shared_path is not None:
        if sha256_file(ref.shared_path) != ref.sha256:
            raise RuntimeError(f"shared file {ref.shared_path} does not match sha256 {ref.sha256[:12]}")
        return ref.shared_path
    root = Path(os.environ.get("ODBENCH_WORKER_CACHE", Path(tempfile.gettempdir()) / "odbench-worker-cache"))
    path = root / ref.sha256 / ref.name
    if not (path.exists() and sha256_file(path) == ref.sha256):
        payload = pull(ref.variable)
        if hashlib.sha256(payload).hexdigest() != ref.sha256:
            raise RuntimeError(f"received {ref.name} does not match sha256 {ref.sha256[:12]}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
        tmp.write_bytes(payload)
        tmp.replace(path)
    return str(path)


def worker_cell(spec_json: str, files: dict) -> str:
    """Runs on a Dask worker: fetch and verify the files, run the cell, return the Result as JSON."""

    spec = CellSpec.from_dict(json.loads(spec_json))
    model_path = _fetch(files["model"])
    feeds = spec.feeds
    if "feeds" in files:
        feeds = dataclasses.replace(feeds, path=_fetch(files["feeds"]))
    measured_on = os.environ.get(MEASURED_ON_ENV, "emulated")
    parity = spec.parity
    if "reference" in files:
        parity = dataclasses.replace(parity, reference=_fetch(files["reference"]))
    spec = dataclasses.replace(spec, variant_path=model_path, feeds=feeds, measured_on=measured_on, parity=parity)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except Exception:
        worker = "?"
    result = run_cell(spec)
    # the report groups results by the machine that measured them: the worker's, not the controller's
    result = result.replace(provenance={**result.provenance, "worker": worker, "worker_host": socket.gethostname(),
                                        "worker_machine": machine()})
    return to_json(result)


def worker_profiles(client) -> dict[str, list[str]]:
    """profile name -> addresses of the workers that advertise it."""
    out: dict[str, list[str]] = {}
    for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
        for res in (w.get("resources") or {}):
            if res.startswith(RESOURCE_PREFIX):
                out.setdefault(res[len(RESOURCE_PREFIX):], []).append(addr)
    return out


class FileShelf:
    """The controller's side of file transfer: each file put once on the scheduler (a Variable named
    by run and sha256), where it outlives any worker; removed when the run ends."""

    def __init__(self, client, shared_root: str | None):
        self.client = client
        self.shared_root = Path(shared_root).resolve() if shared_root else None
        self.token = uuid.uuid4().hex[:12]
        self.refs: dict[str, FileRef] = {}
        self.variables: list = []

    def ref(self, path: str) -> FileRef:
        if path in self.refs:  # hash and send each file once per run
            return self.refs[path]
        sha, resolved = sha256_file(path), Path(path).resolve()
        if self.shared_root and resolved.is_relative_to(self.shared_root):
            ref = FileRef(sha, resolved.name, shared_path=str(resolved))
        else:
            same = next((r for r in self.refs.values() if r.sha256 == sha and r.variable), None)
            ref = FileRef(sha, resolved.name, variable=same.variable if same else f"odbench-file-{self.token}-{sha}")
            if same is None:
                from distributed import Variable

                var = Variable(ref.variable, client=self.client)
                var.set(resolved.read_bytes())
                self.variables.append(var)
        self.refs[path] = ref
        return ref

    def files(self, spec: CellSpec) -> dict[str, FileRef]:
        files = {"model": self.ref(spec.variant_path)}
        if spec.feeds.path:
            files["feeds"] = self.ref(spec.feeds.path)
        if spec.parity is not None and spec.parity.reference:
            files["reference"] = self.ref(spec.parity.reference)
        return files

    def clear(self) -> None:
        for var in self.variables:
            try:
                var.delete()
            except Exception:  # noqa: BLE001 - the scheduler may be gone already; nothing to free then
                pass


class DaskExecutor:
    name = "dask"

    def __init__(self, address: str | None = None, shared_root: str | None = None, connect_timeout: float = 20.0):
        self.address = address or os.environ.get(SCHEDULER_ENV)
        if not self.address:
            raise ValueError(f"no Dask scheduler address: pass --scheduler or set {SCHEDULER_ENV}")
        self.shared_root = shared_root
        self.connect_timeout = connect_timeout

    @classmethod
    def from_settings(cls, settings) -> "DaskExecutor":
        return cls(settings.scheduler, shared_root=settings.shared_root)

    def run(
        self,
        cells: Iterable[CellSpec],
        store: RunFolder,
        on_start: Callable[[CellSpec], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
    ) -> list[Result]:
        from distributed import Client

        results: list[Result] = []

        def record(result: Result) -> None:
            store.put(result)
            results.append(result)
            if on_result:
                on_result(result)

        with Client(self.address, timeout=self.connect_timeout) as client:
            shelf = FileShelf(client, self.shared_root)
            try:
                self._run(client, shelf, cells, store, record)
            finally:
                shelf.clear()
        return results

    def _submit(self, client, shelf: FileShelf, spec: CellSpec, attempt: int):
        return client.submit(worker_cell, to_json(spec), shelf.files(spec), resources={resource_for(spec.profile_name): 1},
                             pure=False, retries=1, key=f"cell-{spec.cell_id}-{attempt}-{time.time_ns()}")

    def _run(self, client, shelf: FileShelf, cells: Iterable[CellSpec], store: RunFolder, record) -> None:
        profiles = worker_profiles(client)
        pending: dict = {}  # future -> (spec, attempt)
        for spec in cells:
            if store.done(spec.cell_id):
                continue
            store.put_spec(spec)
            if spec.profile_name not in profiles:
                record(Result.for_cell(spec, "ERROR", f"no Dask worker advertises {resource_for(spec.profile_name)} at {self.address}: "
                                 f"start one on that device with `odbench worker --profile {spec.profile_name} --scheduler {self.address}` "
                                 f"(workers now: {sorted(profiles) or 'none'})"))
                continue
            # on_start is not called: all cells are submitted at once and start when a device is free
            pending[self._submit(client, shelf, spec, 1)] = (spec, 1)
        orphaned_since: dict = {}
        while pending:
            # poll states rather than distributed.wait, which raises for the whole set when one is cancelled;
            # a 'lost' result is being recomputed by the scheduler: not done yet
            done = [f for f in pending if f.status in ("finished", "error", "cancelled")]
            if not done:
                time.sleep(0.5)
            live = worker_profiles(client) if done else None
            for fut in done:
                spec, attempt = pending.pop(fut)
                try:
                    record(Result.from_dict(json.loads(fut.result())))
                    continue
                except Exception as exc:  # its workers died under it (KilledWorker), it was cancelled, or it failed
                    failure, lost = f"{type(exc).__name__}: {exc}", fut.status == "cancelled" or type(exc).__name__ in WORKER_LOSS
                if lost and attempt < MAX_ATTEMPTS and spec.profile_name in live:
                    pending[self._submit(client, shelf, spec, attempt + 1)] = (spec, attempt + 1)
                else:
                    record(Result.for_cell(spec, "ERROR", f"cell failed on the Dask workers after {attempt} attempt(s): {failure}"))
            self._give_up_orphans(client, pending, orphaned_since, record)

    @staticmethod
    def _give_up_orphans(client, pending: dict, orphaned_since: dict, record) -> None:
        """A cell whose profile has no worker left would wait forever: give up on it after a grace period."""
        live = worker_profiles(client)
        now = time.monotonic()
        for fut, (spec, _) in list(pending.items()):
            if spec.profile_name in live:
                orphaned_since.pop(fut, None)
            elif now - orphaned_since.setdefault(fut, now) > ORPHAN_GRACE_S:
                fut.cancel()
                pending.pop(fut)
                record(Result.for_cell(spec, "ERROR", f"every worker advertising {resource_for(spec.profile_name)} disconnected; "
                                 "the cell was not completed"))
