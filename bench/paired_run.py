"""Run comparison groups (bench/paired_cell.py) in fresh processes, and store them in a run folder.

    <run>/paired/<group_id>.json          the PairedResult, samples left out
    <run>/paired/<group_id>.samples.npz   each process's samples per member (p<k>/<member index>, float32 ms)

``run_group`` runs a fixed number of processes (the run's paired figures); ``compare`` runs the sequential
design of stats/paired.py for two members (``odbench compare``). A process that fails ends its group with
ERROR/TIMEOUT and its reason; the processes already measured are kept.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from odbench.core.paired import PairedProcess, PairedResult, PairedSpec
from odbench.core.records import Verdict, atomic_write_bytes, atomic_write_text, to_json
from odbench.stats import paired


class ProcessFailed(RuntimeError):
    def __init__(self, verdict: Verdict, reason: str):
        super().__init__(reason)
        self.verdict = verdict


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_paired_process(spec: PairedSpec, index: int, python: str = sys.executable) -> PairedProcess:
    """One comparison process in a fresh process group, with the spec's timeout; ProcessFailed on any fault."""
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="odbench-paired-") as tmp:
        spec_path, out_path, err_path = Path(tmp) / "spec.json", Path(tmp) / "out.json", Path(tmp) / "stderr.txt"
        atomic_write_text(spec_path, to_json(spec))
        env = dict(os.environ, PYTHONFAULTHANDLER="1", HF_HUB_OFFLINE="1", ODBENCH_PARENT_PID=str(os.getpid()))
        with open(err_path, "wb") as se:
            proc = subprocess.Popen([python, "-m", "odbench.bench.paired_cell", str(spec_path), str(out_path), str(index)],
                                    stdout=subprocess.DEVNULL, stderr=se, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)  # the caller's cwd: relative paths mean the same
            try:
                proc.wait(timeout=spec.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise ProcessFailed(Verdict.TIMEOUT, f"comparison process {index} exceeded its {spec.timeout_s:g}s timeout") from None
        if not out_path.exists():
            tail = err_path.read_bytes()[-600:].decode("utf-8", "replace").strip().splitlines()
            raise ProcessFailed(Verdict.ERROR, f"comparison process {index} exited with code {proc.returncode} without a result"
                                + (f": {tail[-1]}" if tail else ""))
        data = json.loads(out_path.read_text())
    if "error" in data:
        raise ProcessFailed(Verdict.ERROR, f"comparison process {index}: {data['error']}")
    return dataclasses.replace(PairedProcess.from_dict(data), wall_s=round(time.monotonic() - t_start, 3))


def run_group(spec: PairedSpec, processes: int, on_process: Callable[[PairedProcess], None] | None = None,
              first_index: int = 1) -> PairedResult:
    """``processes`` comparison processes one after another; never raises for a process's fault."""
    started, parts = _now(), []
    for k in range(first_index, first_index + processes):
        try:
            part = run_paired_process(spec, k)
        except ProcessFailed as exc:
            return PairedResult(spec, exc.verdict, str(exc), tuple(parts), started, _now())
        parts.append(part)
        if on_process:
            on_process(part)
    return PairedResult(spec, Verdict.OK, "", tuple(parts), started, _now())


def compare(spec: PairedSpec, base_key: str, cand_key: str, design: paired.Sequential,
            on_process: Callable[[PairedProcess], None] | None = None) -> tuple[paired.Effect | None, PairedResult]:
    """The sequential paired design for ``cand_key`` against ``base_key`` (both members of ``spec``)."""
    parts: list[PairedProcess] = []
    started = _now()

    def draw(n: int) -> list[float]:
        new = run_group(spec, n, on_process, first_index=len(parts) + 1)
        parts.extend(new.processes)
        if new.verdict != Verdict.OK:
            raise ProcessFailed(new.verdict, new.reason)
        return [paired.log_ratio(p.samples_ms[base_key], p.samples_ms[cand_key]) for p in new.processes]

    try:
        effect, _ = paired.sequential(design, draw)
    except ProcessFailed as exc:
        return None, PairedResult(spec, exc.verdict, str(exc), tuple(parts), started, _now())
    return effect, PairedResult(spec, Verdict.OK, "", tuple(parts), started, _now())


def paired_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "paired"


def save(run_dir: Path, result: PairedResult) -> Path:
    """Into the run folder's paired/ (``save_to``)."""
    return save_to(paired_dir(run_dir), result)


def save_to(folder: Path, result: PairedResult) -> Path:
    """``folder``/<group_id>.json and .samples.npz: samples first, then the summary (a summary on disk always has
    its samples)."""
    folder = Path(folder)
    keys = [m.key for m in result.spec.members]
    arrays = {f"p{i}/{j}": np.asarray(p.samples_ms[k], dtype=np.float32)
              for i, p in enumerate(result.processes) for j, k in enumerate(keys) if k in p.samples_ms}
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / f"{result.group_id}.samples.npz", buf.getvalue())
    light = result.replace(processes=tuple(dataclasses.replace(p, samples_ms={}) for p in result.processes))
    path = folder / f"{result.group_id}.json"
    atomic_write_text(path, to_json(light))
    return path


def load(path: Path) -> PairedResult:
    result = PairedResult.from_dict(json.loads(Path(path).read_text()))
    keys = [m.key for m in result.spec.members]
    npz = Path(str(path)[: -len(".json")] + ".samples.npz")
    if not npz.exists():
        return result
    with np.load(npz) as data:
        procs = tuple(dataclasses.replace(p, samples_ms={k: tuple(float(x) for x in data[f"p{i}/{j}"]) for j, k in enumerate(keys)
                                                         if f"p{i}/{j}" in data})
                      for i, p in enumerate(result.processes))
    return result.replace(processes=procs)


def load_all(run_dir: Path) -> list[PairedResult]:
    folder = paired_dir(run_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(load(path))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            # a damaged paired file costs its figures only (the rows fall back to isolated processes), never in silence
            print(f"[paired] unreadable {path}: {type(exc).__name__}: {exc}; its speedups fall back to the isolated design",
                  file=sys.stderr)
    return out
