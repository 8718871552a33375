"""Why do fresh processes differ? A controlled study of the between-process spread on this machine.

    .venv/bin/python scripts/spread_study.py [--processes 10] [--out results/spread-study] [--skip-thp]

One CTR cell (``rank-200``: embedding gathers from 61 MB of tables, memory-bound) and one MiniLM cell
(``query``: compute-bound), each run as N fresh processes, under one setting changed at a time:

* ``baseline``: as ``make run`` measures;
* ``no-aslr``: the whole run under ``setarch -R`` (every process gets the same address-space layout;
  if layout-dependent effects such as cache-set or 4K-aliasing conflicts drive the spread, it shrinks);
* ``thp-always``: transparent huge pages for every anonymous mapping (``/sys/kernel/mm/transparent_hugepage``;
  the kernel's default here is ``madvise``, so whether the embedding tables land on 2 MB pages is up to
  chance; needs root, restored afterwards);
* ``no-spin``: ONNX Runtime's intra-op threads do not spin (``allow_spinning=false``);
* ``1-thread``: one intra-op thread (the ``host-1t`` profile), so no thread waits on the other vCPU.

For each setting and cell it prints the between-process CV of the medians with its 95% chi-square interval,
the within-process sd of log latency, and the geometric-mean median. The folders it writes are ordinary runs
(``odbench table DIR`` reads them). The settings run one after another, not interleaved: drift between them
is part of the comparison, so the script runs ``baseline`` first and last.
"""
from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odbench.bench.run_folder import RunFolder
from odbench.stats import intervals

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
CELLS = (("ctr-ml100k", "rank-200"), ("minilm-l6-query", "query"))


@dataclass(frozen=True)
class Setting:
    name: str
    prefix: tuple[str, ...] = ()
    runtime: str = "onnxruntime"
    profile: str = "host"
    thp: str | None = None


SETTINGS = (
    Setting("baseline"),
    Setting("no-aslr", prefix=("setarch", platform.machine(), "-R")),
    Setting("thp-always", thp="always"),
    Setting("no-spin", runtime="onnxruntime:allow_spinning=false"),
    Setting("1-thread", profile="host-1t"),
    Setting("baseline-again"),
)


def thp_mode() -> str | None:
    try:
        return THP.read_text().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return None


def run_setting(s: Setting, out: Path, processes: int) -> Path:
    odbench = str(Path(sys.executable).with_name("odbench"))
    folder = out / s.name
    for model, scenario in CELLS:
        cmd = [*s.prefix, odbench, "run", "--model", model, "--recipe", "none", "--scenario", scenario,
               "--runtime", s.runtime, "--profile", s.profile, "--processes", str(processes),
               "--no-overhead", "--no-parity", "--out", str(folder), "-q"]
        subprocess.run(cmd, check=False)
    return folder


def report(name: str, folder: Path) -> list[str]:
    rows = []
    for r in RunFolder(folder).all():
        if not r.stats:
            rows.append(f"| {name} | {r.model} | {r.verdict} {r.reason[:80]} | | | |")
            continue
        meds = [float(np.median(p)) for p in r.process_samples]
        cv, lo, hi = intervals.between_cv(meds)
        within = float(np.mean([np.std(np.log(p), ddof=1) for p in r.process_samples]))
        geo = float(np.exp(np.mean(np.log(meds))))
        rows.append(f"| {name} | {r.model} {r.scenario} | {len(meds)} | {cv:.3f} [{lo:.3f}, {hi:.3f}] | {within:.3f} | {geo:.3f} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=10)
    ap.add_argument("--out", default="results/spread-study")
    ap.add_argument("--skip-thp", action="store_true", help="leave transparent huge pages alone")
    args = ap.parse_args()
    out = Path(args.out)
    original = thp_mode()
    lines = ["| setting | cell | processes | between-process CV [95% CI] | within sd(log) | median ms (geo. mean) |",
             "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        if s.thp and (args.skip_thp or original is None):
            continue
        try:
            if s.thp:
                THP.write_text(s.thp)
            lines += report(s.name, run_setting(s, out, args.processes))
        finally:
            if s.thp and original:
                THP.write_text(original)
        print("\n".join(lines[-len(CELLS):]), flush=True)
    text = "\n".join(lines)
    (out / "spread.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
