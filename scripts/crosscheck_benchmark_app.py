"""Cross-check the harness against OpenVINO's own benchmark_app on the same model, shapes and inputs.

    .venv/bin/python scripts/crosscheck_benchmark_app.py [--model ctr-ml100k] [--scenario rank-200] [--seconds 5] [--pairs 5]

Both use OpenVINO's CPU plugin at f32, the host's threads, 1 stream and one synchronous request.
benchmark_app reads the scenario's first real feed from raw binary files (``-i name:file.bin``); the
harness times the same single feed (``same input``) and, apart, all the scenario's real feeds
(``real feeds``: the data dependence). Each pair of runs is two fresh processes back to back, the
pairs interleaved, and the ratio of medians is given with its Welch interval over the pairs
(processes as the replicates, stats/intervals.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from odbench.bench.executors.local import run_cell
from odbench.bench.matrix import Workload, plan
from odbench.core.feeds import load_feeds, save_feeds
from odbench.core.records import TIMING_PRESETS, Feeds
from odbench.devices.host import detect_host
from odbench.models import get_model
from odbench.models.base import cache_dir
from odbench.stats import intervals


def benchmark_app_median(cmd: list[str], seconds: float) -> float:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
    found = re.search(r"Median:\s+([\d.]+) (ms|us)", out)
    if not found:
        raise RuntimeError(out[-3000:])
    return float(found.group(1)) / (1000.0 if found.group(2) == "us" else 1.0)


def harness_median(variant, feeds_path: Path, items: int, scenario: str, seconds: float, threads_profile) -> float:
    timing = dataclasses.replace(TIMING_PRESETS["smoke"], warmup_s=1.0, min_time_s=seconds, max_time_s=seconds, max_samples=10**6)
    (spec,) = plan([Workload(variant, {scenario: (Feeds(path=str(feeds_path)), items)})], [("openvino", {})], [threads_profile], timing)
    r = run_cell(spec)
    if not r.stats:
        raise RuntimeError(f"harness cell {r.verdict}: {r.reason}")
    return r.stats["p50"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ctr-ml100k")
    ap.add_argument("--scenario", default="rank-200")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--cache", default="artifacts")
    args = ap.parse_args()

    model = get_model(args.model)
    cache = cache_dir(args.cache)
    variant = model.build(cache, log=lambda *_: None)
    fs = model.feeds(args.scenario, cache)
    feeds = load_feeds(fs.path)
    host = detect_host()
    tmp = Path(tempfile.mkdtemp(prefix="odbench-crosscheck-"))
    first = feeds[0]
    for name, arr in first.items():
        np.ascontiguousarray(arr).tofile(tmp / f"{name}.bin")
    single = save_feeds([first], tmp / "single.npz")
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    shape = ",".join(f"{k}[{','.join(map(str, v.shape))}]" for k, v in first.items())
    inputs = ",".join(f"{k}:{tmp / f'{k}.bin'}" for k in first)
    cmd = [tool, "-m", variant.path, "-d", "CPU", "-hint", "none", "-nthreads", str(host.threads), "-nstreams", "1",
           "-nireq", "1", "-api", "sync", "-infer_precision", "f32", "-t", str(int(args.seconds)),
           "-data_shape", shape, "-i", inputs]
    ba, same, real = [], [], []
    for i in range(args.pairs):
        ba.append(benchmark_app_median(cmd, args.seconds))
        same.append(harness_median(variant, single, fs.items_per_inference, args.scenario, args.seconds, host))
        real.append(harness_median(variant, Path(fs.path), fs.items_per_inference, args.scenario, args.seconds, host))
        print(f"pair {i + 1}: benchmark_app {ba[-1] * 1e3:.1f} us, harness same input {same[-1] * 1e3:.1f} us, "
              f"harness real feeds {real[-1] * 1e3:.1f} us", flush=True)
    print(f"model {variant.id}, scenario {args.scenario}, shapes {shape}, {host.threads} threads, f32, 1 stream, sync; "
          f"CPU {host.cpu_model} ({', '.join(host.isa)})")
    for label, ours in (("same input", same), ("real feeds", real)):
        r = intervals.ratio_interval(ours, ba)
        print(f"  harness ({label}) / benchmark_app: {r.ratio - 1:+.1%} [{r.lo - 1:+.1%}, {r.hi - 1:+.1%}] "
              f"(geometric means {np.exp(np.mean(np.log(ours))) * 1e3:.1f} vs {np.exp(np.mean(np.log(ba))) * 1e3:.1f} us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
