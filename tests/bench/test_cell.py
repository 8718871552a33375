"""The cell process's entry (bench/cell.py): what every fresh process pays before its first sample."""
from __future__ import annotations

import subprocess
import sys


def test_cell_process_imports_no_analysis_stack():
    """scipy (through stats/summary.py) cost 1.7 s of a 4 s process here: start-up is paid by every
    process of the design, so the cell's modules must not pull the analysis side in."""
    code = ("import sys, odbench.bench.cell, odbench.bench._cell_bench; "
            "print(sorted(m for m in ('scipy', 'odbench.stats.summary', 'odbench.stats.intervals', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
