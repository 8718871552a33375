"""Apply a DeviceProfile inside the cell process, then check and record what took effect."""
from __future__ import annotations

import os
import resource
from typing import Any

from odbench.devices.profile import ISA_CAPS, DeviceProfile

ISA_CAP_ENV = "ONEDNN_MAX_CPU_ISA"  # oneDNN: OpenVINO's CPU plugin, PyTorch's mkldnn ops
ATEN_CAP_ENV = "ATEN_CPU_CAPABILITY"  # PyTorch's own vectorised kernels: default | avx2 | avx512


def isa_cap() -> str | None:
    """The ISA cap in force in this process (set by apply_profile), for runtimes to report on."""
    return os.environ.get(ISA_CAP_ENV) or None


def isa_level(name: str) -> int | None:
    """Rank of an ISA cap or of a kernel name like 'brgemm_avx512_bf16' / 'jit_avx2_f32'; None if generic."""
    upper = name.upper()
    if upper in ISA_CAPS:
        return ISA_CAPS.index(upper)
    low = name.lower()
    if "amx" in low:
        return ISA_CAPS.index("AVX512_CORE_AMX")
    if "avx512" in low:
        return ISA_CAPS.index("AVX512_CORE_BF16" if "bf16" in low else "AVX512_CORE")
    if "avx2" in low:
        return ISA_CAPS.index("AVX2")
    if "avx" in low:
        return ISA_CAPS.index("AVX")
    if "sse41" in low or "sse42" in low:
        return ISA_CAPS.index("SSE41")
    return None


def _thread_ids() -> list[int]:
    return [int(tid) for tid in os.listdir("/proc/self/task")]


def thread_cpus() -> list[int]:
    """The CPUs any thread of this process may run on, read per thread from the kernel (after the
    runtime made its pools): what the emulation really got, not what was asked."""
    cpus: set[int] = set()
    for tid in _thread_ids():
        try:
            cpus |= os.sched_getaffinity(tid)
        except OSError:  # the thread ended meanwhile
            pass
    return sorted(cpus)


class ProfileNotApplied(RuntimeError):
    pass


def apply_profile(profile: DeviceProfile) -> dict[str, Any]:
    """Pin CPUs, cap memory and pin thread env vars for this process. Returns what is in force."""
    available = sorted(os.sched_getaffinity(0))
    wanted = list(profile.cpus) if profile.cpus is not None else available
    bad = [c for c in wanted if c not in available]
    if bad:
        raise ProfileNotApplied(
            f"profile {profile.name!r} asks for CPUs {bad}, this machine offers {available}"
        )
    if profile.threads > len(wanted):
        raise ProfileNotApplied(
            f"profile {profile.name!r} wants {profile.threads} threads on {len(wanted)} CPU(s) {wanted}"
        )
    # Every thread already running (e.g. the BLAS pool numpy started at import), not only this one:
    # sched_setaffinity(0) binds the calling thread alone; threads made later inherit it.
    for tid in _thread_ids():
        try:
            os.sched_setaffinity(tid, wanted)
        except OSError:  # the thread ended meanwhile
            pass
    os.sched_setaffinity(0, wanted)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(profile.threads)
    if profile.memory_cap_mb is not None:
        cap = profile.memory_cap_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if profile.isa_cap is not None:  # before any runtime library loads in this process
        os.environ[ISA_CAP_ENV] = profile.isa_cap
        level = ISA_CAPS.index(profile.isa_cap)
        os.environ[ATEN_CAP_ENV] = ("default" if level < ISA_CAPS.index("AVX2")
                                    else "avx2" if level < ISA_CAPS.index("AVX512_CORE") else "avx512")

    actual_cpus = sorted(os.sched_getaffinity(0))
    if actual_cpus != sorted(wanted):
        raise ProfileNotApplied(f"CPU affinity {wanted} requested, {actual_cpus} in force")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    actual_cap_mb = None if soft == resource.RLIM_INFINITY else soft // 2**20
    if actual_cap_mb != profile.memory_cap_mb:
        raise ProfileNotApplied(f"memory cap {profile.memory_cap_mb} MB requested, {actual_cap_mb} in force")
    return {
        "profile": profile.name,
        "threads": profile.threads,
        "cpus": actual_cpus,
        "memory_cap_mb": actual_cap_mb,
        "isa_cap": isa_cap(),
    }
