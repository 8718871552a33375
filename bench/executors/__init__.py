"""Executors run planned cells and hand each Result to the store as it finishes.

``local`` (default): one fresh process per cell on this machine, with a timeout.
"""
EXECUTORS = {"local": "bench.executors.local:LocalExecutor"}
