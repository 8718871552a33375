"""odbench: on-device inference benchmarks for compressed search and recommendation models.

The packages, bottom to top (each imports only itself and those below it):
  odbench.core         records, feeds, validation, ONNX helpers, shared constants
  odbench.devices      device profiles, host detection, applying a profile in a cell
  odbench.runtimes     one adapter per inference runtime (registry: RUNTIMES)
  odbench.models       the zoo (registry: ZOO) and bring-your-own ONNX
  odbench.compressors  compressors (registry: COMPRESSORS) and recipes
  odbench.stats        pure statistics: intervals, summaries, early stopping
  odbench.bench        the harness: plan, cell, executors, RunFolder (the run folder), resume, parity, arm/
  odbench.verdicts     budgets, the gate, decide, accuracy judgement, simulation
  odbench.report       tables, HTML report, plots, runs by machine, Pareto, design
  odbench.api          the Python API (plan, run, gate, compare, report, table) the CLI is a thin layer over
  odbench.cli          the `odbench` command
Each is mapped from the top-level folder of the same name (pyproject.toml, package-dir)."""
