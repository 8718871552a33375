"""The embedded local executor: each cell in a fresh process group, with a timeout.

A crash, hang or OOM costs that cell only. The child's peak RSS comes from the
kernel (``wait4``'s rusage for that child alone), so native allocations count.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from odbench.bench.arm.functional import functional_cell, is_functional
from odbench.bench.envs import environment_of
from odbench.bench.run_folder import RunFolder
from odbench.bench.skips import skip_reason
from odbench.core.envs import CONTRACT_EXIT, process_command
from odbench.core.records import NOT_MEASURED, CellSpec, Result, Verdict, atomic_write_text, to_json
from odbench.stats import summary as stats

STDERR_TAIL = 8000


def _tail(path: Path, n: int = STDERR_TAIL) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")



def cell_command(spec: CellSpec, spec_path: Path, out_path: Path, python: str | None = None) -> tuple[list[str], dict[str, str]]:
    """The cell process's argv and extra environment: ``python`` when given (the ARM check, tests), else the
    interpreter of the environment the runtime declares (core/envs.py), else this one."""
    args = [str(spec_path), str(out_path)]
    if python is not None:
        return [python, "-m", "odbench.bench.cell", *args], {}
    try:
        env = environment_of(spec.runtime)
    except KeyError:
        env = None
    return process_command("odbench.bench.cell", args, env)


def run_cell(spec: CellSpec, python: str | None = None) -> Result:
    """Run one cell's ``spec.timing.processes`` fresh processes one after another, and merge them.

    Never raises for cell faults: the first failing process decides the cell's verdict. The local
    executor interleaves the processes of many cells instead (``LocalExecutor``); Dask and
    ``--decide`` use this.
    """
    pre = pre_skip(spec)
    if pre is not None:
        return pre
    parts = []
    for k in range(max(1, spec.timing.processes)):
        part = run_process(spec, k + 1, python)
        parts.append(part)
        if part.verdict in NOT_MEASURED:
            break
    return merge_processes(spec, parts)


def pre_skip(spec: CellSpec) -> Result | None:
    """A Result decided in the parent before any timed process starts, else None: SKIPPED or ERROR,
    or, for an aarch64 profile on an x86 host, the ARM functional check (outputs on the aarch64
    builds of the runtimes under qemu-user; no timing: bench/arm/functional.py)."""
    if is_functional(spec):
        return functional_cell(spec)
    try:
        why = skip_reason(spec)
    except Exception as exc:  # noqa: BLE001 - e.g. an unknown runtime name: that cell's error
        return Result.for_cell(spec, Verdict.ERROR, f"{type(exc).__name__}: {exc}", started_at=_now(), finished_at=_now())
    if why:
        return Result.for_cell(spec, Verdict.SKIPPED, why, started_at=_now(), finished_at=_now())
    return None


def merge_processes(spec: CellSpec, parts: list[Result], prior: Result | None = None) -> Result:
    """One Result from the processes' Results (and a ``prior`` batch that ``--decide`` extends).

    A process that could not measure (ERROR, TIMEOUT, SKIPPED) decides the cell; wrong outputs in
    any process FAIL it. Statistics come from stats/summary.py, once, from every process's samples.
    """
    bad = next((p for p in parts if p.verdict in NOT_MEASURED), None)
    if bad is not None:
        k = parts.index(bad) + 1
        return bad.replace(reason=f"process {k}/{spec.timing.processes}: {bad.reason}") if spec.timing.processes > 1 else bad
    base = prior or parts[0]
    processes = (prior.processes if prior else ()) + tuple(p for part in parts for p in part.processes)
    everything = ([prior] if prior else []) + parts
    failed = next((p for p in everything if p.verdict == Verdict.FAIL), None)
    s = stats.summarize([p.samples_ms for p in processes], spec.items_per_inference)
    return base.replace(
        verdict=Verdict.FAIL if failed else Verdict.OK,
        reason=failed.reason if failed else "",
        warnings=tuple(dict.fromkeys(w for p in everything for w in p.warnings)),
        processes=processes,
        looks=(prior.looks + 1) if prior else 1,
        n_samples=sum(len(p.samples_ms) for p in processes),
        stats=s,
        measure_s=sum(p.measure_s for p in processes),
        warmup_runs=sum(p.warmup_runs for p in processes),
        throughput_items_s=s["throughput"],
        peak_rss_mb=max((p.peak_rss_mb or 0.0) for p in processes) or None,
        provenance={**base.provenance, "end": everything[-1].provenance.get("end")},
        finished_at=everything[-1].finished_at,
    )


def run_process(spec: CellSpec, index: int = 1, python: str | None = None) -> Result:
    """Run process ``index`` (1-based) of a cell in a fresh process group and return its Result."""
    started, t_start = _now(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="odbench-cell-") as tmp:
        tmpdir = Path(tmp)
        spec_path, out_path = tmpdir / "spec.json", tmpdir / "result.json"
        stdout_path, stderr_path = tmpdir / "stdout.txt", tmpdir / "stderr.txt"
        atomic_write_text(spec_path, to_json(spec))
        argv, extra = cell_command(spec, spec_path, out_path, python)
        env = dict(os.environ, PYTHONFAULTHANDLER="1", HF_HUB_OFFLINE="1", ODBENCH_PARENT_PID=str(os.getpid()),
                   ODBENCH_PROCESS_INDEX=str(index), **extra)
        with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
            proc = subprocess.Popen(
                argv,
                stdout=so, stderr=se, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # in the caller's working folder: the spec's paths are absolute (RunFolder)
            )
            deadline = time.monotonic() + spec.timeout_s
            timed_out, status, rusage = False, None, None
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
            proc.returncode = os.waitstatus_to_exitcode(status)

        # The child reports its own peak RSS since exec (VmHWM). wait4's ru_maxrss is only a
        # fallback for a child that died first: on Linux it also counts the pre-exec fork of
        # this (possibly large) parent, so it is an upper bound, and labelled as such.
        fork_bound_mb = round(rusage.ru_maxrss / 1024, 1) if rusage else None
        rc = proc.returncode
        exit_info = {"returncode": rc, "stderr_tail": _tail(stderr_path), "ru_maxrss_mb_incl_fork": fork_bound_mb}
        if rc < 0:
            exit_info["signal"] = signal.Signals(-rc).name
        if timed_out:
            return Result.for_cell(
                spec, Verdict.TIMEOUT, f"cell exceeded its {spec.timeout_s:g}s timeout; process group killed",
                exit=exit_info, started_at=started, finished_at=_now(),
            )
        if out_path.exists():
            try:
                data = json.loads(out_path.read_text())
                child_exit = data.pop("exit", {}) or {}
                result = Result.from_dict(data)
                wall = round(time.monotonic() - t_start, 3)
                procs = tuple(dataclasses.replace(p, wall_s=wall) for p in result.processes)
                return result.replace(exit={**child_exit, **exit_info}, processes=procs)
            except (ValueError, TypeError) as exc:
                reason = f"cell wrote an unreadable result: {exc}"
        elif rc == CONTRACT_EXIT:  # the cell's environment reads another spec contract version (core/envs.py)
            reason = (_tail(stderr_path).strip().splitlines() or ["cell spec contract version mismatch"])[-1]
        elif rc < 0:
            reason = f"cell process died of {signal.Signals(-rc).name}"
        else:
            reason = f"cell process exited with code {rc} without a result"
        return Result.for_cell(spec, Verdict.ERROR, reason, exit=exit_info, started_at=started, finished_at=_now())


def interleaved_order(processes: dict[str, int], seed: int) -> list[tuple[str, int]]:
    """Every (cell id, process number) in a seeded random order."""
    order = [(cid, k) for cid, n in processes.items() for k in range(1, n + 1)]
    random.Random(seed).shuffle(order)
    return order


class LocalExecutor:
    """Runs the processes of all cells interleaved in a seeded random order, so that drift over a
    run (thermal, a neighbour's load) spreads over every cell instead of posing as a difference
    between them (Kalibera & Jones 2013). Each finished process is stored at once, and a cell is
    merged when its last process ends: a harness killed mid-matrix loses one process at most, and
    a rerun resumes from what is stored."""

    name = "local"

    def __init__(self, seed: int = 0):
        self.seed = seed

    @classmethod
    def from_settings(cls, settings) -> "LocalExecutor":
        return cls(seed=settings.seed)

    def run(
        self,
        cells: Iterable[CellSpec],
        store: RunFolder,
        on_start: Callable[[CellSpec], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
    ) -> list[Result]:
        pending: dict[str, CellSpec] = {}
        results = []
        for spec in cells:
            if store.done(spec.cell_id) or spec.cell_id in pending:
                continue
            store.put_spec(spec)
            pre = pre_skip(spec)
            if pre is not None:
                results.append(self._finish(store, pre, on_result))
            else:
                pending[spec.cell_id] = spec
        order = [(cid, k) for cid, k in interleaved_order({c: max(1, s.timing.processes) for c, s in pending.items()}, self.seed)
                 if store.get_part(cid, k) is None]
        started: set[str] = set()
        for cid, k in order:
            spec = pending.get(cid)
            if spec is None:  # a process of this cell already failed: the cell is done
                continue
            if on_start and cid not in started:
                started.add(cid)
                on_start(spec)
            part = run_process(spec, k)
            store.put_part(part, k)
            parts = [store.get_part(cid, i) for i in range(1, max(1, spec.timing.processes) + 1)]
            if part.verdict in NOT_MEASURED or all(p is not None for p in parts):
                results.append(self._finish(store, merge_processes(spec, [p for p in parts if p is not None]), on_result))
                del pending[cid]
        return results

    @staticmethod
    def _finish(store: RunFolder, result: Result, on_result) -> Result:
        store.put(result)  # atomically; then its process parts are dropped
        store.drop_parts(result.cell_id)
        if on_result:
            on_result(result)
        return result
