"""The one benchmark a cell process runs, under pytest-benchmark.

Order: apply the device profile -> open the session (timed: session creation) ->
first inference (timed apart) -> warm-up for at least ``warmup_s`` and ``warmup_runs``
-> ``benchmark.pedantic`` with one inference per round, feeds rotated by the
``setup`` hook (outside the timer) -> statistics -> spot-check of the outputs (finite, deterministic)
-> output parity against the references of bench/parity.py (FAIL when they do not match).
"""
from __future__ import annotations

import json
import math
import os
import resource
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil

from odbench.bench import parity, provenance, stability
from odbench.bench.skips import skip_reason
from odbench.compressors.isa import host_int8_isa, isa_mismatch_warning
from odbench.core.feeds import FeedError, check_feed, load_feeds, synthetic_feeds
from odbench.core.records import (
    CellSpec,
    ProcessSamples,
    Result,
    Timing,
    Variant,
    Verdict,
    atomic_write_text,
    sha256_file,
    to_json,
)
from odbench.devices.apply import apply_profile, thread_cpus
from odbench.devices.host import cpu_model, detect_host
from odbench.devices.profile import DeviceProfile
from odbench.runtimes import RuntimeUnavailable, get_runtime, parse_options

LFS_MAGIC = b"version https://git-lfs.github.com/spec"


class ModelFileError(RuntimeError):
    pass


class RuntimeSkip(RuntimeError):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS since exec (Linux VmHWM). Not ru_maxrss: on Linux that keeps the
    RSS the process had as a fork of its parent, before exec, so a big parent inflates it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_model_file(path: str, expected_sha: str | None) -> str:
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"model file {path} does not exist")
    size = p.stat().st_size
    if size == 0:
        raise ModelFileError(f"model file {path} is empty")
    with open(p, "rb") as fh:
        head = fh.read(256)
    if head.startswith(LFS_MAGIC):
        raise ModelFileError(
            f"model file {path} is a git LFS pointer ({size} bytes), not a model: run `git lfs pull`"
        )
    sha = sha256_file(p)
    if expected_sha and sha != expected_sha:
        raise ModelFileError(f"model file {path} changed: sha256 {sha[:12]} != expected {expected_sha[:12]}")
    return sha


def _finite(outputs) -> bool:
    for o in outputs:
        arr = np.asarray(o)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            return False
    return True


def open_session(spec: CellSpec, out: dict):
    """Apply the profile, check the file, open the session (timed apart: session creation)."""
    profile = DeviceProfile.model_validate(spec.profile)
    why = skip_reason(spec)
    if why:
        raise RuntimeSkip(why)
    out["applied"] = apply_profile(profile)
    runtime = get_runtime(spec.runtime)
    options = parse_options(runtime, spec.runtime_options)
    out["provenance"] = {"start": provenance.snapshot()}
    sha = check_model_file(spec.variant_path, spec.variant_sha256) if spec.runtime != "faulty" else None
    out["provenance"].update(model_sha256=sha, runtime_version=runtime.version(), numpy=np.__version__,
                             cpu_model=cpu_model(), isa=list(detect_host().isa))
    out["rss_before_load_mb"] = round(_rss_mb(), 1)
    t0 = time.perf_counter_ns()
    session = runtime.open(spec.variant_path, profile.threads, options)
    out["session_create_ms"] = (time.perf_counter_ns() - t0) / 1e6
    out["runtime_info"] = session.info()
    cap = out["runtime_info"].get("isa_cap")
    if out["applied"].get("isa_cap") and (not cap or cap.get("enforced") is not True):
        detail = (cap or {}).get("detail") or f"{spec.runtime} does not report it"
        out["warnings"].append(f"ISA cap {out['applied']['isa_cap']} not fully enforced by {spec.runtime}: {detail}")
    if spec.int8_target:
        built = Variant(id=spec.variant_id, model=spec.model, path=spec.variant_path, sha256=spec.variant_sha256, size_bytes=0,
                        config={"target_isa": spec.int8_target, "weight_bits": spec.int8_weight_bits})
        mismatch = isa_mismatch_warning(built, host_int8_isa())
        if mismatch:
            out["warnings"].append(mismatch)
    out["applied"]["os_threads_after_open"] = psutil.Process().num_threads()
    out["applied"]["thread_cpus"] = thread_cpus()
    return session


def cell_feeds(spec: CellSpec, session) -> list:
    f = spec.feeds
    if f.path:
        feeds = load_feeds(f.path)
    else:
        feeds = synthetic_feeds(session.inputs, dict(f.dims), f.int_low, f.int_high, f.count, f.seed)
    for i, feed in enumerate(feeds):
        try:
            check_feed(feed, session.inputs)
        except FeedError as exc:
            raise FeedError(f"feed {i} of {f.path or 'synthetic feeds'}: {exc}") from None
    return feeds


def warm_up(session, bound: list, tm: Timing, keep: int = 0) -> tuple[int, float, list]:
    """Run every bound feed at least once (per-feed first-use costs stay off the timed path) for at
    least ``warmup_s`` and ``warmup_runs``; returns (runs, seconds per run from the second half, the
    outputs of the first pass over the first ``keep`` feeds: the parity check reads these, so it costs
    no extra inference and checks the very path that is timed)."""
    warm, kept, n, start = [], [], 0, time.perf_counter_ns()
    while True:
        t0 = time.perf_counter_ns()
        outputs = session.run_bound(bound[n % len(bound)])
        warm.append(time.perf_counter_ns() - t0)
        if n < keep:
            kept.append(outputs)
        n += 1
        elapsed = (time.perf_counter_ns() - start) / 1e9
        if (elapsed >= tm.warmup_s and n >= max(tm.warmup_runs, len(bound))) or elapsed >= max(tm.max_time_s, tm.warmup_s):
            return n, max(float(np.mean(warm[len(warm) // 2 :])) / 1e9, 1e-7), kept


def rounds_for(tm: Timing, per_run_s: float) -> int:
    """Samples to take: min_samples and min_time, capped by max_time and max_samples."""
    wanted = max(tm.min_samples, math.ceil(tm.min_time_s / per_run_s))
    ceiling = max(1, min(int(tm.max_time_s / per_run_s), tm.max_samples))
    return max(1, min(wanted, ceiling))


def time_samples(benchmark, session, bound: list, rounds: int) -> list[int]:
    """The one timed loop: pytest-benchmark's pedantic mode, one inference per round, GC off while
    timing (--benchmark-disable-gc), the next bound feed handed over by the untimed ``setup``."""
    counter = iter(range(10**12))

    def next_feed():
        return (bound[next(counter) % len(bound)],), {}

    benchmark.pedantic(session.run_bound, setup=next_feed, rounds=rounds, iterations=1, warmup_rounds=0)
    return list(benchmark.stats.stats.data)


def spot_check(session, feeds: list, first_out, warnings: list) -> None:
    """Finite outputs, and deterministic on the same feed."""
    again = session.run(feeds[0])
    if not _finite(first_out) or not _finite(again):
        raise RuntimeError("the model produced non-finite outputs (NaN/Inf)")
    drift = max(
        (float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))
         for a, b in zip(first_out, again) if np.asarray(a).size),
        default=0.0,
    )
    if drift > 1e-4:
        warnings.append(f"outputs differ between two runs of the same feed (max abs diff {drift:.2e})")


def measure(spec: CellSpec, benchmark) -> dict:
    """One process of a cell: its samples and what it saw. Statistics are the parent's (stats/summary.py)."""
    out: dict = {"warnings": []}
    session = open_session(spec, out)
    feeds = cell_feeds(spec, session)
    bound = [session.bind(feed) for feed in feeds]  # outside the timer, for every runtime

    t0 = time.perf_counter_ns()
    first_out = session.run_bound(bound[0])
    out["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6
    tm = spec.timing
    warmup_runs, per_run_s, warm_outputs = warm_up(session, bound, tm, keep=spec.parity.n_feeds if spec.parity else 0)
    rounds = rounds_for(tm, per_run_s)
    if rounds < tm.min_samples:
        out["warnings"].append(f"only {rounds} samples fit in max_time {tm.max_time_s:g}s (min_samples {tm.min_samples})")
    started = _now()
    window = provenance.cpu_window()
    t_run = time.perf_counter_ns()
    samples_ns = time_samples(benchmark, session, bound, rounds)
    measure_s = (time.perf_counter_ns() - t_run) / 1e9
    out["provenance"]["cpu_share"] = share = provenance.cpu_share(window)
    out["warnings"].extend(stability.neighbour_warnings(share))
    if not samples_ns:
        raise RuntimeError("zero samples were recorded")
    samples_ms = tuple(round(v / 1e6, 6) for v in samples_ns)

    spot_check(session, feeds, first_out, out["warnings"])
    peak = round(peak_rss_mb(), 1)  # before the parity pass, which may load the reference file
    fail_reasons = check_parity(spec, session, feeds, warm_outputs, out, out["warnings"])
    session.close()
    out["warnings"] = tuple(out["warnings"] + stability.stability_warnings(samples_ms))
    out.update(
        processes=(ProcessSamples(samples_ms, warmup_runs, started, measure_s, out["session_create_ms"], out["first_inference_ms"], peak),),
        n_samples=len(samples_ms), measure_s=measure_s, warmup_runs=warmup_runs, peak_rss_mb=peak,
        verdict=Verdict.OK, reason="",
    )
    if fail_reasons:  # wrong answers outrank everything the timing says
        out["verdict"], out["reason"] = Verdict.FAIL, "outputs do not match: " + "; ".join(fail_reasons)
    out["provenance"]["end"] = provenance.snapshot()
    return out


def check_parity(spec: CellSpec, session, feeds, outputs: list, out: dict, warnings: list) -> list[str]:
    """Compare the outputs of the first feeds (from the warm-up; any feed it did not reach is run now)
    with the references (bench/parity.py)."""
    p = spec.parity
    if p is None:
        return []
    if p.error or not p.reference:
        out["parity"] = {"error": p.error or "no reference outputs"}
        warnings.append(f"parity not checked: {p.error or 'no reference outputs'}")
        return []

    if p.reference_sha256 and sha256_file(p.reference) != p.reference_sha256:
        raise ModelFileError(f"parity reference {p.reference} changed since the run was planned")
    refs = parity.load_reference(p.reference)
    n = min(p.n_feeds, len(feeds), len(refs.get("fp32", [])))
    got = [outputs[i] if i < len(outputs) else session.run(feeds[i]) for i in range(n)]
    result: dict = {"kind": p.kind}
    result["fp32"] = parity.compare(p.kind, got, refs["fp32"][:n])
    if p.compare_runtime and "runtime" in refs:
        result["runtime"] = parity.compare(p.kind, got, refs["runtime"][:n])
    out["parity"] = result
    return parity.judge(p.kind, result)


def test_cell(benchmark):
    spec = CellSpec.from_dict(json.loads(Path(os.environ["ODBENCH_CELL_SPEC"]).read_text()))
    out_path = Path(os.environ["ODBENCH_CELL_OUT"])
    started = _now()
    try:
        fields = measure(spec, benchmark)
    except (RuntimeSkip, RuntimeUnavailable) as exc:
        fields = {"verdict": Verdict.SKIPPED, "reason": str(exc)}
    except MemoryError:
        cap = spec.profile.get("memory_cap_mb")
        fields = {"verdict": Verdict.ERROR, "reason": f"MemoryError: out of memory under the profile's memory cap ({cap} MB)"}
    except Exception as exc:  # every failure becomes this cell's ERROR, with its reason
        tb = traceback.format_exc(limit=6)
        fields = {"verdict": Verdict.ERROR, "reason": f"{type(exc).__name__}: {exc}".strip(), "exit": {"traceback": tb[-3000:]}}
    result = Result.for_cell(spec, fields.pop("verdict"), fields.pop("reason", ""), started_at=started, finished_at=_now(), **fields)
    atomic_write_text(out_path, to_json(result))
