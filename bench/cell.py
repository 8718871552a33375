"""The cell process: ``python -m odbench.bench.cell SPEC.json OUT.json``.

Runs one cell (variant x runtime x profile x scenario) under pytest-benchmark in a
fresh process. The measurement lives in ``bench/_cell_bench.py``; this entry only
starts pytest on it. The partial result is written by the test itself as soon as
timing ends, never at pytest's session end, so nothing waits on pytest-benchmark's
own JSON. The parent (bench/executors/local.py) adds exit status and peak RSS.

Every import here is paid once per process, i.e. by every sample of the design: keep the
heavy analysis modules (scipy through stats/summary.py) out of this module and of _cell_bench.py.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from odbench.core.envs import CONTRACT_EXIT, ContractError, check_contract

CELL_TEST = Path(__file__).with_name("_cell_bench.py")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m odbench.bench.cell SPEC.json OUT.json", file=sys.stderr)
        return 2
    if "ODBENCH_PARENT_PID" in os.environ:
        die_with_parent(int(os.environ["ODBENCH_PARENT_PID"]))
    try:  # the spec file is the contract between environments (core/envs.py): its version is checked first
        check_contract(json.loads(open(argv[0]).read()).get("contract", 1))
    except ContractError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return CONTRACT_EXIT
    os.environ["ODBENCH_CELL_SPEC"], os.environ["ODBENCH_CELL_OUT"] = argv
    # Only pytest-benchmark is loaded: other installed plugins (and the budgets plugin, which imports
    # scipy) are for users' test suites, and each one would add to every process's start-up.
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import pytest

    return pytest.main(
        [
            str(CELL_TEST),
            "-q",
            "-s",
            "-p", "pytest_benchmark.plugin",
            "-p", "no:cacheprovider",
            "--assert=plain",  # no assertion rewriting of the modules the cell imports
            "-o", "addopts=",
            "-o", "python_files=_cell_bench.py",
            "--rootdir", str(CELL_TEST.parent),
            "--benchmark-timer", "time.perf_counter_ns",
            "--benchmark-disable-gc",
            "--benchmark-columns", "min,median,max,rounds",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
