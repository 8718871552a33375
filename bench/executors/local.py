"""The embedded local executor: each cell in a fresh process group, with a timeout.

A crash, hang or OOM costs that cell only. The child's peak RSS comes from the
kernel (``wait4``'s rusage for that child alone), so native allocations count.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from bench import stats
from bench.records import CellSpec, Result, atomic_write_text, to_json
from bench.store import ResultStore

STDERR_TAIL = 8000
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Called first thing in the cell process: SIGKILL it when its parent dies (Linux).

    Done in the child, not in a ``preexec_fn``, because the Dask executor starts cells from
    worker threads, where ``preexec_fn`` is unsafe.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _tail(path: Path, n: int = STDERR_TAIL) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-n:].decode("utf-8", "replace")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")



def run_cell(spec: CellSpec, python: str = sys.executable) -> Result:
    """Run one cell in ``spec.timing.processes`` fresh processes, one after another, and merge.

    Never raises for cell faults: the first failing process decides the cell's verdict.
    """
    from bench.skips import skip_reason

    try:
        why = skip_reason(spec)
    except Exception as exc:  # noqa: BLE001 - e.g. an unknown runtime name: that cell's error
        return Result.for_cell(spec, "ERROR", f"{type(exc).__name__}: {exc}", started_at=_now(), finished_at=_now())
    if why:
        return Result.for_cell(spec, "SKIPPED", why, started_at=_now(), finished_at=_now())
    parts = []
    for k in range(max(1, spec.timing.processes)):
        part = run_process(spec, python)
        if part.verdict in ("ERROR", "TIMEOUT", "SKIPPED"):
            if spec.timing.processes > 1:
                part = part.replace(reason=f"process {k + 1}/{spec.timing.processes}: {part.reason}")
            return part
        parts.append(part)
    return merge_processes(parts)


def merge_processes(parts: list[Result]) -> Result:
    """One Result from several processes' Results: samples pooled, one median per process."""
    if len(parts) == 1:
        return parts[0].replace(process_medians_ms=(parts[0].stats["p50"],))
    first = parts[0]
    samples = tuple(x for p in parts for x in p.samples_ms)
    s = stats.summarize(samples)
    medians = tuple(p.stats["p50"] for p in parts)
    s["process_median_cv"] = stats.process_median_cv(medians)
    warnings = list(dict.fromkeys(w for p in parts for w in p.warnings))
    warnings += [f"process {i + 1}: {p.reason}" for i, p in enumerate(parts) if p.verdict == "UNSTABLE"]
    unstable, why = stats.is_unstable(s)
    verdict, reason = ("UNSTABLE" if unstable else "OK"), why
    failed = [(i, p) for i, p in enumerate(parts) if p.verdict == "FAIL"]
    if failed:  # wrong outputs in any process: the cell fails, whatever its timing says
        verdict, reason = "FAIL", f"process {failed[0][0] + 1}: {failed[0][1].reason}"
    return first.replace(
        verdict=verdict,
        reason=reason,
        warnings=tuple(warnings),
        samples_ms=samples,
        n_samples=len(samples),
        stats=s,
        process_medians_ms=medians,
        measure_s=sum(p.measure_s for p in parts),
        warmup_runs=sum(p.warmup_runs for p in parts),
        throughput_items_s=first.items_per_inference / (s["mean"] / 1e3),
        peak_rss_mb=max((p.peak_rss_mb or 0.0) for p in parts) or None,
        provenance={**first.provenance, "end": parts[-1].provenance.get("end"),
                    "session_create_ms_per_process": [p.session_create_ms for p in parts],
                    "first_inference_ms_per_process": [p.first_inference_ms for p in parts]},
        finished_at=parts[-1].finished_at,
    )


def run_process(spec: CellSpec, python: str = sys.executable) -> Result:
    """Run one process of a cell and return its Result."""
    started = _now()
    with tempfile.TemporaryDirectory(prefix="odbench-cell-") as tmp:
        tmpdir = Path(tmp)
        spec_path, out_path = tmpdir / "spec.json", tmpdir / "result.json"
        stdout_path, stderr_path = tmpdir / "stdout.txt", tmpdir / "stderr.txt"
        atomic_write_text(spec_path, to_json(spec))
        env = dict(os.environ, PYTHONFAULTHANDLER="1", HF_HUB_OFFLINE="1", ODBENCH_PARENT_PID=str(os.getpid()))
        with open(stdout_path, "wb") as so, open(stderr_path, "wb") as se:
            proc = subprocess.Popen(
                [python, "-m", "bench.cell", str(spec_path), str(out_path)],
                stdout=so, stderr=se, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
                cwd=str(Path(__file__).resolve().parents[2]),
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
                spec, "TIMEOUT", f"cell exceeded its {spec.timeout_s:g}s timeout; process group killed",
                exit=exit_info, started_at=started, finished_at=_now(),
            )
        if out_path.exists():
            try:
                data = json.loads(out_path.read_text())
                child_exit = data.pop("exit", {}) or {}
                result = Result.from_dict(data)
                return result.replace(exit={**child_exit, **exit_info})
            except (ValueError, TypeError) as exc:
                reason = f"cell wrote an unreadable result: {exc}"
        elif rc < 0:
            reason = f"cell process died of {signal.Signals(-rc).name}"
        else:
            reason = f"cell process exited with code {rc} without a result"
        return Result.for_cell(spec, "ERROR", reason, exit=exit_info, started_at=started, finished_at=_now())


class LocalExecutor:
    name = "local"

    @classmethod
    def from_settings(cls, settings) -> "LocalExecutor":
        return cls()  # nothing to configure: cells run here, one process each

    def run(
        self,
        cells: Iterable[CellSpec],
        store: ResultStore,
        on_start: Callable[[CellSpec], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
    ) -> list[Result]:
        results = []
        for spec in cells:
            if store.done(spec.cell_id):
                continue
            store.put_spec(spec)
            if on_start:
                on_start(spec)
            result = run_cell(spec)
            store.put(result)  # one cell at a time, atomically: a crash loses one cell at most
            results.append(result)
            if on_result:
                on_result(result)
        return results
