"""Cross-check the harness against OpenVINO's own benchmark_app on the same model and shapes.

    .venv/bin/python scripts/crosscheck_benchmark_app.py [--model ctr-ml100k] [--scenario rank-200] [--seconds 10]

Both use OpenVINO's CPU plugin with f32 precision, 2 threads (the host profile), 1 stream and one
synchronous request; benchmark_app feeds random inputs of the scenario's fixed shapes, the harness
feeds the scenario's real samples. The difference of the medians bounds the harness's overhead
(feed rotation, per-call binding, output copy) plus any data dependence of the model.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ctr-ml100k")
    ap.add_argument("--scenario", default="rank-200")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--cache", default="artifacts")
    args = ap.parse_args()

    from bench.executors.local import run_cell
    from bench.feeds import load_feeds
    from bench.matrix import Workload, plan
    from bench.records import TIMING_PRESETS, Feeds
    from devices.host import detect_host
    from models import get_model
    from models.base import cache_dir

    model = get_model(args.model)
    cache = cache_dir(args.cache)
    variant = model.build(cache, log=lambda *_: None)
    fs = model.feeds(args.scenario, cache)
    feeds = load_feeds(fs.path)
    shapes = {k: v.shape for k, v in feeds[0].items()}
    if any({k: v.shape for k, v in f.items()} != shapes for f in feeds):
        print(f"{args.scenario}: feeds differ in shape; benchmark_app needs one shape: pick a fixed-shape scenario")
        return 2
    host = detect_host()
    tool = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    data_shape = ",".join(f"{k}[{','.join(map(str, s))}]" for k, s in shapes.items())
    cmd = [tool, "-m", variant.path, "-d", "CPU", "-hint", "none", "-nthreads", str(host.threads), "-nstreams", "1",
           "-nireq", "1", "-api", "sync", "-infer_precision", "f32", "-t", str(int(args.seconds)), "-data_shape", data_shape]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 120).stdout
    found = re.search(r"Median:\s+([\d.]+) (ms|us)", out)
    if not found:
        print(out[-3000:])
        return 1
    ba_ms = float(found.group(1)) / (1000.0 if found.group(2) == "us" else 1.0)

    timing = dataclasses.replace(TIMING_PRESETS["default"], min_time_s=args.seconds, max_time_s=args.seconds, processes=1)
    (spec,) = plan([Workload(variant, {args.scenario: (Feeds(path=str(fs.path)), fs.items_per_inference)})],
                   [("openvino", {})], [host], timing)
    r = run_cell(spec)
    if not r.stats:
        print(f"harness cell {r.verdict}: {r.reason}")
        return 1
    ours = r.stats["p50"]
    print(f"model {variant.id}, scenario {args.scenario}, shapes {data_shape}, {host.threads} threads, f32, 1 stream, sync")
    print(f"  benchmark_app median  {ba_ms * 1000:9.1f} us   ({' '.join(cmd[1:3])} ... -t {int(args.seconds)})")
    print(f"  odbench p50           {ours * 1000:9.1f} us   (verdict {r.verdict}, n={r.n_samples})")
    print(f"  difference            {(ours - ba_ms) * 1000:+9.1f} us   ({(ours - ba_ms) / ba_ms:+.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
