"""The cell process: ``python -m odbench.bench.cell SPEC.json OUT.json``.

Runs one cell (variant x runtime x profile x scenario) under pytest-benchmark in a
fresh process. The measurement lives in ``bench/_cell_bench.py``; this entry only
starts pytest on it. The partial result is written by the test itself as soon as
timing ends, never at pytest's session end, so nothing waits on pytest-benchmark's
own JSON. The parent (bench/executors/local.py) adds exit status and peak RSS.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from odbench.bench.executors.local import die_with_parent

CELL_TEST = Path(__file__).with_name("_cell_bench.py")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m odbench.bench.cell SPEC.json OUT.json", file=sys.stderr)
        return 2
    if "ODBENCH_PARENT_PID" in os.environ:
        die_with_parent(int(os.environ["ODBENCH_PARENT_PID"]))
    os.environ["ODBENCH_CELL_SPEC"], os.environ["ODBENCH_CELL_OUT"] = argv
    import pytest

    return pytest.main(
        [
            str(CELL_TEST),
            "-q",
            "-s",
            "-p", "no:cacheprovider",
            "-p", "no:odbench_budgets",  # the budgets plugin (scipy) is for users' tests, not the cell
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
