"""Detect the machine we run on as a DeviceProfile named 'host'."""
from __future__ import annotations

import os
import platform
from functools import lru_cache

import psutil

from odbench.core.constants import INFERENCE_RUNTIMES, MOBILE_RUNTIMES
from odbench.devices.profile import DeviceProfile

# ISA features that matter for inference kernels; the full flag list is in provenance.
INTERESTING_ISA = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2",
)


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if ":" in line:
                    key, _, value = line.partition(":")
                    info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_flags() -> tuple[str, ...]:
    info = _cpuinfo()
    return tuple(sorted(set((info.get("flags") or info.get("Features") or "").split())))


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or info.get("Hardware") or platform.processor() or "unknown"


@lru_cache(maxsize=1)
def detect_host() -> DeviceProfile:
    flags = set(cpu_flags())
    arch = platform.machine()
    arch = {"arm64": "aarch64"}.get(arch, arch)
    if arch not in ("x86_64", "aarch64", "armv7l"):
        arch = "x86_64"
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    cores = psutil.cpu_count(logical=False) or len(cpus)
    return DeviceProfile(
        name="host",
        description="this machine, detected at run time",
        arch=arch,
        cpu_model=cpu_model(),
        isa=tuple(f for f in INTERESTING_ISA if f in flags),
        cores=cores,
        # ONNX Runtime's own default is one thread per physical core; we make it explicit.
        threads=min(cores, len(cpus)),
        cpus=None,
        memory_mb=int(psutil.virtual_memory().total // 2**20),
        runtimes=INFERENCE_RUNTIMES + MOBILE_RUNTIMES,
    )
