"""Executors run planned cells and hand each Result to the store as it finishes.

``local`` (default): fresh processes per cell on this machine, with a timeout.
``dask``: the same cells on Dask workers that run on the target devices, routed by profile.
"""
EXECUTORS = {"local": "bench.executors.local:LocalExecutor", "dask": "bench.executors.dask:DaskExecutor"}
