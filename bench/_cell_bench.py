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

from bench import provenance, stats
from bench.feeds import FeedError, check_feed, load_feeds, synthetic_feeds
from bench.skips import skip_reason
from bench.records import CellSpec, Result, atomic_write_text, sha256_file, to_json
from devices.apply import apply_profile, thread_cpus
from devices.profile import DeviceProfile
from runtimes import RuntimeUnavailable, get_runtime, parse_options

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


def measure(spec: CellSpec, benchmark) -> dict:
    profile = DeviceProfile.model_validate(spec.profile)
    why = skip_reason(spec)
    if why:
        raise RuntimeSkip(why)
    applied = apply_profile(profile)
    runtime = get_runtime(spec.runtime)
    options = parse_options(runtime, spec.runtime_options)
    out: dict = {"applied": applied, "provenance": {"start": provenance.snapshot()}}

    sha = check_model_file(spec.variant_path, spec.variant_sha256) if spec.runtime != "faulty" else None
    from devices.host import cpu_model, detect_host

    out["provenance"].update(model_sha256=sha, runtime_version=runtime.version(), numpy=np.__version__,
                             cpu_model=cpu_model(), isa=list(detect_host().isa))

    out["rss_before_load_mb"] = round(_rss_mb(), 1)
    t0 = time.perf_counter_ns()
    session = runtime.open(spec.variant_path, profile.threads, options)
    out["session_create_ms"] = (time.perf_counter_ns() - t0) / 1e6
    out["runtime_info"] = session.info()
    cap = out["runtime_info"].get("isa_cap")
    if applied.get("isa_cap") and (not cap or cap.get("enforced") is not True):
        detail = (cap or {}).get("detail") or f"{spec.runtime} does not report it"
        out.setdefault("early_warnings", []).append(f"ISA cap {applied['isa_cap']} not fully enforced by {spec.runtime}: {detail}")
    out["applied"]["os_threads_after_open"] = psutil.Process().num_threads()
    out["applied"]["thread_cpus"] = thread_cpus()

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

    t0 = time.perf_counter_ns()
    first_out = session.run(feeds[0])
    out["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6

    # Warm-up: runs every feed at least once, so per-feed first-use costs (input binding, a new input
    # shape) stay off the timed path; also estimates the per-inference time that sizes the measured run.
    tm = spec.timing
    warm, n, start = [], 0, time.perf_counter_ns()
    while True:
        t0 = time.perf_counter_ns()
        session.run(feeds[n % len(feeds)])
        warm.append(time.perf_counter_ns() - t0)
        n += 1
        elapsed = (time.perf_counter_ns() - start) / 1e9
        if (elapsed >= tm.warmup_s and n >= max(tm.warmup_runs, len(feeds))) or elapsed >= max(tm.max_time_s, tm.warmup_s):
            break
    out["warmup_runs"] = n
    # Mean of the warm-up's second half, +25% for pedantic's untimed per-round work
    # (feed rotation, gc toggling), so the measured run reaches min_time.
    per_run_s = max(float(np.mean(warm[len(warm) // 2 :])) / 1e9 * 1.25, 1e-7)
    wanted = max(tm.min_samples, math.ceil(tm.min_time_s / per_run_s))
    ceiling = max(1, min(int(tm.max_time_s / per_run_s), tm.max_samples))
    rounds = max(1, min(wanted, ceiling))
    warnings = out.pop("early_warnings", [])
    if rounds < tm.min_samples:
        warnings.append(f"only {rounds} samples fit in max_time {tm.max_time_s:g}s (min_samples {tm.min_samples})")

    counter = iter(range(10**12))

    def next_feed():
        return (feeds[next(counter) % len(feeds)],), {}

    t_run = time.perf_counter_ns()
    benchmark.pedantic(session.run, setup=next_feed, rounds=rounds, iterations=1, warmup_rounds=0)
    samples_ns = list(benchmark.stats.stats.data)
    # The warm-up estimate can be off: top up with the same timer until min_time is met too.
    i = len(samples_ns)
    while ((time.perf_counter_ns() - t_run) / 1e9 < tm.min_time_s and len(samples_ns) < tm.max_samples
           and (time.perf_counter_ns() - t_run) / 1e9 < tm.max_time_s):
        feed = feeds[i % len(feeds)]
        i += 1
        t0 = time.perf_counter_ns()
        session.run(feed)
        samples_ns.append(time.perf_counter_ns() - t0)
    out["topped_up"] = len(samples_ns) - rounds
    out["measure_s"] = (time.perf_counter_ns() - t_run) / 1e9
    samples_ms = [v / 1e6 for v in samples_ns]
    if not samples_ms:
        raise RuntimeError("zero samples were recorded")
    if out.pop("topped_up"):
        warnings.append(f"{len(samples_ns) - rounds} samples timed after benchmark.pedantic to reach min_time {tm.min_time_s:g}s")

    # Spot-check outputs: finite, and deterministic on the same feed.
    again = session.run(feeds[0])
    if not _finite(first_out) or not _finite(again):
        raise RuntimeError("the model produced non-finite outputs (NaN/Inf)")
    drift = max(
        (float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))) for a, b in zip(first_out, again) if np.asarray(a).size),
        default=0.0,
    )
    if drift > 1e-4:
        warnings.append(f"outputs differ between two runs of the same feed (max abs diff {drift:.2e})")
    # Peak RSS before the parity pass, which may load the reference file.
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    fail_reasons = check_parity(spec, session, feeds, out, warnings)
    session.close()

    s = stats.summarize(samples_ms)
    warnings += stats.stability_warnings(s)
    out.update(
        samples_ms=tuple(round(v, 6) for v in samples_ms),
        n_samples=len(samples_ms),
        stats=s,
        throughput_items_s=spec.items_per_inference / (s["mean"] / 1e3),
        warnings=tuple(warnings),
    )
    unstable, why = stats.is_unstable(s)
    out["verdict"], out["reason"] = ("UNSTABLE", why) if unstable else ("OK", "")
    if fail_reasons:  # wrong answers outrank everything the timing says
        out["verdict"], out["reason"] = "FAIL", "outputs do not match: " + "; ".join(fail_reasons)
    out["provenance"]["end"] = provenance.snapshot()
    return out


def check_parity(spec: CellSpec, session, feeds, out: dict, warnings: list) -> list[str]:
    """Run the first feeds once more and compare with the references (bench/parity.py)."""
    p = spec.parity
    if p is None:
        return []
    if p.error or not p.reference:
        out["parity"] = {"error": p.error or "no reference outputs"}
        warnings.append(f"parity not checked: {p.error or 'no reference outputs'}")
        return []
    from bench import parity

    if p.reference_sha256 and sha256_file(p.reference) != p.reference_sha256:
        raise ModelFileError(f"parity reference {p.reference} changed since the run was planned")
    refs = parity.load_reference(p.reference)
    n = min(p.n_feeds, len(feeds), len(refs.get("fp32", [])))
    got = [session.run(feeds[i]) for i in range(n)]
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
        fields = {"verdict": "SKIPPED", "reason": str(exc)}
    except MemoryError:
        cap = spec.profile.get("memory_cap_mb")
        fields = {"verdict": "ERROR", "reason": f"MemoryError: out of memory under the profile's memory cap ({cap} MB)"}
    except Exception as exc:  # every failure becomes this cell's ERROR, with its reason
        tb = traceback.format_exc(limit=6)
        fields = {"verdict": "ERROR", "reason": f"{type(exc).__name__}: {exc}".strip(), "exit": {"traceback": tb[-3000:]}}
    result = Result.for_cell(spec, fields.pop("verdict"), fields.pop("reason", ""), started_at=started, finished_at=_now(), **fields)
    atomic_write_text(out_path, to_json(result))
