"""The Dask distributed executor: the same cells and the same per-cell harness, run on the
target devices.

A device joins by starting a Dask worker that advertises its profile as a resource
(``device:<profile>=1``, one thread): ``odbench worker --profile rpi5 --scheduler tcp://host:8786``.
Each cell is submitted with the resource of its profile, so it runs only on a matching
device, and only one cell at a time holds a device. On the worker, the cell still runs in
fresh processes with a timeout (bench/executors/local.py: ``run_cell``).

Model and feed files travel from the controller (scattered once per sha256) unless
``shared_root`` says the workers see the controller's paths; either way the worker checks
the sha256 before it runs a cell. Results stream back as each cell finishes and are stored
atomically; a rerun skips finished cells. A worker that dies mid-cell costs that cell only:
Dask reschedules it on another worker of the same profile, and when none is left the cell
is recorded as ERROR with the reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from bench.records import CellSpec, Result, sha256_file, to_json
from bench.store import ResultStore

RESOURCE_PREFIX = "device:"
SCHEDULER_ENV = "ODBENCH_SCHEDULER"
MEASURED_ON_ENV = "ODBENCH_MEASURED_ON"  # set by `odbench worker`: "device" or "emulated"
ORPHAN_GRACE_S = 10.0


def resource_for(profile: str) -> str:
    return f"{RESOURCE_PREFIX}{profile}"


def _fetch(payload, sha: str, name: str) -> str:
    """On the worker: a local path to the file with this sha256 (bytes from the controller, or a shared path)."""
    if isinstance(payload, str):  # a shared path
        if sha256_file(payload) != sha:
            raise RuntimeError(f"shared file {payload} does not match sha256 {sha[:12]}")
        return payload
    root = Path(os.environ.get("ODBENCH_WORKER_CACHE", Path(tempfile.gettempdir()) / "odbench-worker-cache"))
    path = root / sha / name
    if not (path.exists() and sha256_file(path) == sha):
        path.parent.mkdir(parents=True, exist_ok=True)
        if hashlib.sha256(payload).hexdigest() != sha:
            raise RuntimeError(f"received {name} does not match sha256 {sha[:12]}")
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(payload)
        tmp.replace(path)
    return str(path)


def worker_cell(spec_json: str, files: dict) -> str:
    """Runs on a Dask worker: fetch and verify the files, run the cell, return the Result as JSON."""
    from bench.executors.local import run_cell

    spec = CellSpec.from_dict(json.loads(spec_json))
    model_path = _fetch(*files["model"])
    feeds = spec.feeds
    if "feeds" in files:
        feeds = dataclasses.replace(feeds, path=_fetch(*files["feeds"]))
    measured_on = os.environ.get(MEASURED_ON_ENV, "emulated")
    parity = spec.parity
    if "reference" in files:
        parity = dataclasses.replace(parity, reference=_fetch(*files["reference"]))
    spec = dataclasses.replace(spec, variant_path=model_path, feeds=feeds, measured_on=measured_on, parity=parity)
    try:
        from distributed import get_worker

        worker = get_worker().address
    except Exception:
        worker = "?"
    result = run_cell(spec)
    result = result.replace(provenance={**result.provenance, "worker": worker, "worker_host": socket.gethostname()})
    return to_json(result)


def worker_profiles(client) -> dict[str, list[str]]:
    """profile name -> addresses of the workers that advertise it."""
    out: dict[str, list[str]] = {}
    for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
        for res in (w.get("resources") or {}):
            if res.startswith(RESOURCE_PREFIX):
                out.setdefault(res[len(RESOURCE_PREFIX):], []).append(addr)
    return out


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

    def _files(self, client, spec: CellSpec, scattered: dict, hashes: dict) -> dict:
        def payload(path: str):
            sha = hashes.get(path) or hashes.setdefault(path, sha256_file(path))  # hash each file once per run
            if self.shared_root and str(Path(path).resolve()).startswith(str(Path(self.shared_root).resolve())):
                return (str(Path(path).resolve()), sha, Path(path).name)
            if sha not in scattered:
                # broadcast: every worker holds a copy, so the file survives the death of any one worker
                scattered[sha] = client.scatter(Path(path).read_bytes(), hash=False, broadcast=True)
            return (scattered[sha], sha, Path(path).name)

        files = {"model": payload(spec.variant_path)}
        if spec.feeds.path:
            files["feeds"] = payload(spec.feeds.path)
        if spec.parity is not None and spec.parity.reference:
            files["reference"] = payload(spec.parity.reference)
        return files

    def run(
        self,
        cells: Iterable[CellSpec],
        store: ResultStore,
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
            profiles = worker_profiles(client)
            pending, scattered, hashes = {}, {}, {}
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
                fut = client.submit(worker_cell, to_json(spec), self._files(client, spec, scattered, hashes),
                                    resources={resource_for(spec.profile_name): 1}, pure=False, retries=1,
                                    key=f"cell-{spec.cell_id}-{time.time_ns()}")
                pending[fut] = spec
            orphaned_since: dict = {}
            while pending:
                # poll states rather than distributed.wait, which raises for the whole set when one is cancelled
                done = [f for f in pending if f.status in ("finished", "error", "cancelled", "lost")]
                if not done:
                    time.sleep(0.5)
                for fut in done:
                    spec = pending.pop(fut)
                    try:
                        record(Result.from_dict(json.loads(fut.result())))
                    except Exception as exc:  # a worker died on every try, or the task failed
                        record(Result.for_cell(spec, "ERROR", f"cell failed on the Dask workers: {type(exc).__name__}: {exc}"))
                # a cell whose profile has no worker left would wait forever: give up on it after a grace period
                live = worker_profiles(client)
                now = time.monotonic()
                for fut, spec in list(pending.items()):
                    if spec.profile_name in live:
                        orphaned_since.pop(fut, None)
                    elif now - orphaned_since.setdefault(fut, now) > ORPHAN_GRACE_S:
                        fut.cancel()
                        pending.pop(fut)
                        record(Result.for_cell(spec, "ERROR", f"every worker advertising {resource_for(spec.profile_name)} disconnected; "
                                         "the cell was not completed"))
        return results
