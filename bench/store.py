"""Kept for code written against the old name: the run folder is bench/run_folder.py's ``RunFolder``."""
from __future__ import annotations

from odbench.bench.run_folder import RunFolder, load_not_built, load_variants

ResultStore = RunFolder

__all__ = ["ResultStore", "RunFolder", "load_not_built", "load_variants"]
