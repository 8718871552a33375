"""Apply a DeviceProfile inside the cell process, then check and record what took effect."""
from __future__ import annotations

import os
import resource
from typing import Any

from devices.profile import DeviceProfile


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
    os.sched_setaffinity(0, wanted)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(profile.threads)
    if profile.memory_cap_mb is not None:
        cap = profile.memory_cap_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

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
    }
