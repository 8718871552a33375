"""A comparison process: ``python -m odbench.bench.paired_cell SPEC.json OUT.json INDEX``.

Loads every member of one comparison group (core/paired.py), each in its own session and in an order turned
by the process index (so no member always lands first in memory), binds the same feeds to each (outside the
timer, as every cell does), warms them up, then times rounds: in each round every member takes a turn, in a
fresh random order drawn from a seed derived from the spec's seed and the process index: ``turn_warm``
untimed inferences, then ``turn`` timed ones, on the same feed indices for every member.
The timed region is the cell's (bench/_cell_bench.py): ``run_bound`` only, read with ``perf_counter_ns``, GC off
while timing. pytest-benchmark is not used here:
its pedantic loop times one function, and a round interleaves several.

Thread setting: every ONNX Runtime member runs on the process's one global intra-op pool
(core/paired.PAIRED_ORT_OPTIONS): with a pool per session, one member's idle workers (spinning, or parked and
woken late under load) take the cores from the member that runs next, and that differs from process to
process. The process reads the setting back from each session and refuses to time if it did not take.
"""
from __future__ import annotations

import gc
import json
import os
import random
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from odbench.bench import provenance
from odbench.bench._cell_bench import check_model_file, peak_rss_mb
from odbench.bench.cell import die_with_parent
from odbench.bench.stability import neighbour_warnings
from odbench.core.feeds import check_feed, load_feeds, synthetic_feeds
from odbench.core.paired import PAIRED_ORT_OPTIONS, PairedMember, PairedProcess, PairedSpec
from odbench.core.records import atomic_write_text, to_json
from odbench.devices.apply import apply_profile
from odbench.devices.profile import DeviceProfile
from odbench.runtimes import get_runtime, parse_options


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def member_options(member: PairedMember) -> dict:
    """The member's runtime options with the paired thread setting applied (ONNX Runtime)."""
    if member.runtime == "onnxruntime":
        return {**member.runtime_options, **PAIRED_ORT_OPTIONS}
    return dict(member.runtime_options)


def open_members(spec: PairedSpec, threads: int, order: list[int]) -> tuple[list, dict, dict]:
    """Opens the members in ``order`` (indices into ``spec.members``); returns the sessions by member index."""
    sessions, create_ms, info = [None] * len(spec.members), {}, {}
    for i in order:
        m = spec.members[i]
        runtime = get_runtime(m.runtime)
        ok, why = runtime.available()
        if not ok:
            raise RuntimeError(f"{m.key}: {why}")
        check_model_file(m.path, m.sha256)
        t0 = time.perf_counter_ns()
        sessions[i] = runtime.open(m.path, threads, parse_options(runtime, member_options(m)))
        create_ms[m.key] = (time.perf_counter_ns() - t0) / 1e6
        info[m.key] = sessions[i].info()
    return sessions, create_ms, info


def thread_check(spec: PairedSpec, info: dict) -> dict:
    """The paired thread setting as every ORT session reports it; raises when one did not apply it."""
    seen = {m.key: info[m.key].get("thread_pool") for m in spec.members if m.runtime == "onnxruntime"}
    wrong = [k for k, v in seen.items() if not str(v).startswith("global")]
    if wrong:
        raise RuntimeError(f"the paired thread setting (one global ONNX Runtime pool) did not take in {wrong}")
    return {"ort_thread_pool": seen, "setting": dict(PAIRED_ORT_OPTIONS)}


def feeds_for(spec: PairedSpec, session) -> list:
    f = spec.feeds
    feeds = load_feeds(f.path) if f.path else synthetic_feeds(session.inputs, dict(f.dims), f.int_low, f.int_high, f.count, f.seed)
    for feed in feeds:
        check_feed(feed, session.inputs)
    return feeds


def time_rounds(sessions: list, bound: list[list], rounds: int, rng: random.Random, turn: int = 1,
                turn_warm: int = 0, start: int = 0) -> list[list[int]]:
    """Rounds ``start`` .. ``start + rounds - 1``; in each, every member takes a turn in a fresh random order:
    ``turn_warm`` untimed then ``turn`` timed inferences, on the same feed indices for every member (round j
    times feeds j*turn .. j*turn + turn - 1, cycling)."""
    samples: list[list[int]] = [[] for _ in sessions]
    order = list(range(len(sessions)))
    n_feeds = len(bound[0])
    clock = time.perf_counter_ns
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for j in range(start, start + rounds):
            rng.shuffle(order)
            for m in order:
                run, feeds = sessions[m].run_bound, bound[m]
                for i in range(turn_warm):
                    run(feeds[(j * turn + i) % n_feeds])
                for i in range(turn):
                    arg = feeds[(j * turn + i) % n_feeds]
                    t0 = clock()
                    run(arg)
                    samples[m].append(clock() - t0)
    finally:
        if gc_was:
            gc.enable()
    return samples


def rounds_for(spec: PairedSpec, per_round_s: float) -> int:
    """Rounds for min_rounds timed samples per member (and min_time), capped by max_time and max_rounds."""
    wanted = max(-(-spec.min_rounds // spec.turn), int(spec.min_time_s / per_round_s) + 1)
    ceiling = max(1, min(int(spec.max_time_s / per_round_s), spec.max_rounds))
    return max(1, min(wanted, ceiling))


def measure(spec: PairedSpec, index: int) -> PairedProcess:
    profile = DeviceProfile.model_validate(spec.profile)
    applied = apply_profile(profile)
    start = provenance.snapshot()
    seed = spec.seed * 100_003 + index
    rng = random.Random(seed)
    # The load order turns with the process index (counterbalanced: with two members, half the processes load
    # each one first). Which member is opened and bound first decides where its weights and buffers land; a fixed
    # order would put the same member in the same place in every process, a bias the interval across processes
    # cannot see. Turned, it becomes spread between processes, which the interval does see.
    n = len(spec.members)
    load_order = [(index + k) % n for k in range(n)]
    sessions, create_ms, info = open_members(spec, profile.threads, load_order)
    applied["paired_threads"] = thread_check(spec, info)
    feeds = feeds_for(spec, sessions[0])
    bound: list[list] = [[] for _ in sessions]
    for i in load_order:  # outside the timer
        bound[i] = [sessions[i].bind(feed) for feed in feeds]
    # Warm-up: every feed once through every member (a new input shape costs its first run), then rounds for
    # at least warmup_s and 2 rounds; the time per round is read from those rounds.
    for session, feeds_bound in zip(sessions, bound):
        for b in feeds_bound:
            session.run_bound(b)
    t0, warm = time.perf_counter(), 0
    while time.perf_counter() - t0 < spec.warmup_s or warm < 2:
        time_rounds(sessions, bound, 1, rng, spec.turn, spec.turn_warm, start=warm)
        warm += 1
    per_round = (time.perf_counter() - t0) / warm
    rounds = rounds_for(spec, per_round)
    started = _now()
    window = provenance.cpu_window()
    t1 = time.perf_counter()
    raw = time_rounds(sessions, bound, rounds, rng, spec.turn, spec.turn_warm)
    measure_s = time.perf_counter() - t1
    share = provenance.cpu_share(window)
    warnings = [] if rounds * spec.turn >= spec.min_rounds else [f"only {rounds} rounds fit in max_time {spec.max_time_s:g}s"]
    warnings += neighbour_warnings(share)
    for s in sessions:
        s.close()
    samples = {m.key: tuple(round(v / 1e6, 6) for v in raw[i]) for i, m in enumerate(spec.members)}
    return PairedProcess(index=index, order_seed=seed, samples_ms=samples, rounds=rounds, warmup_rounds=warm,
                         measure_s=round(measure_s, 3), session_create_ms=create_ms, runtime_info=info, applied=applied,
                         provenance={"start": start, "end": provenance.snapshot(), "peak_rss_mb": round(peak_rss_mb(), 1),
                                     "cpu_share": share},
                         warnings=tuple(warnings), started_at=started,
                         load_order=tuple(spec.members[i].key for i in load_order))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m odbench.bench.paired_cell SPEC.json OUT.json INDEX", file=sys.stderr)
        return 2

    if "ODBENCH_PARENT_PID" in os.environ:
        die_with_parent(int(os.environ["ODBENCH_PARENT_PID"]))
    spec = PairedSpec.from_dict(json.loads(Path(argv[0]).read_text()))
    try:
        part = measure(spec, int(argv[2]))
    except Exception as exc:  # noqa: BLE001 - the parent turns this into the group's ERROR, with the reason
        atomic_write_text(Path(argv[1]), json.dumps({"error": f"{type(exc).__name__}: {exc}".strip(),
                                                     "traceback": traceback.format_exc(limit=6)[-3000:]}))
        return 1
    atomic_write_text(Path(argv[1]), to_json(part))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
