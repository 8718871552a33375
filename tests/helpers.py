"""Helpers shared by tests: cells for tiny models with very short timing."""
from __future__ import annotations

from pathlib import Path

from odbench.bench.matrix import Workload, plan
from odbench.core.records import Feeds, Timing, Variant, sha256_file
from odbench.devices.host import detect_host
from odbench.devices.profile import DeviceProfile

FAST = Timing(warmup_s=0.05, warmup_runs=3, min_time_s=0.2, min_samples=20, max_time_s=1.0, processes=1, gating=False)


def variant_for(path: Path, name: str = "tiny") -> Variant:
    return Variant(id=f"{name}/fp32", model=name, path=str(path), sha256=None if not path.exists() else sha256_file(path),
                   size_bytes=path.stat().st_size if path.exists() else 0, scenarios=("synthetic",))


def cell(path: Path, name: str = "tiny", runtime: str = "onnxruntime", options: dict | None = None,
         feeds: Feeds | None = None, profile: DeviceProfile | None = None, timeout_s: float = 60.0, timing=FAST):
    w = Workload(variant_for(path, name), {"synthetic": (feeds or Feeds(dims=(("batch", 2),)), 2)})
    return plan([w], [(runtime, options or {})], [profile or detect_host()], timing, timeout_s=timeout_s)[0]
