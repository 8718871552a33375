"""Statistics: intervals over processes, per-process summaries, MLPerf early stopping."""
