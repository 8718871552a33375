"""odbench's Python API: what the `odbench` command is a thin layer over, for a notebook or a CI script.

    from odbench import api
    p = api.plan(onnx=["model.onnx"], runtimes=["onnxruntime", "openvino"], preset="smoke", out="runs/mine")
    outcome = api.run(p)                       # RunOutcome: folder, results, table paths, exit code
    verdict = api.gate("runs/mine", "budgets.yaml")   # GateOutcome: verdicts, exit code, gate.md ...
    html, md = api.report(["runs/mine"])

Bad input raises ``UsageError`` (a ValueError) with one line; docs/api.md has more.
"""
from __future__ import annotations

from odbench.api.matrix import (  # noqa: F401  (the API)
    DEFAULT_MODELS,
    DEFAULT_RUNTIMES,
    Built,
    RunOutcome,
    RunPlan,
    build_workloads,
    plan,
    plan_cells,
    run,
)
from odbench.api.options import UsageError, open_run  # noqa: F401  (the API)
from odbench.api.verdicts import GateOutcome, compare, gate, report, table  # noqa: F401  (the API)
from odbench.bench.run_folder import RunFolder  # noqa: F401  (the API)

__all__ = ["plan", "run", "gate", "compare", "report", "table", "open_run", "RunPlan", "RunOutcome", "GateOutcome",
           "RunFolder", "UsageError", "Built", "build_workloads", "plan_cells", "DEFAULT_MODELS", "DEFAULT_RUNTIMES"]
