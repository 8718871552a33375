"""Does a device profile describe the machine we are on? Used before a worker claims a profile."""
from __future__ import annotations

from devices.host import cpu_flags, detect_host
from devices.profile import DeviceProfile

# profile ISA names that the kernel spells differently
ISA_ALIASES = {"neon": ("neon", "asimd"), "dotprod": ("asimddp",), "i8mm": ("i8mm",), "bf16": ("bf16", "avx512_bf16"),
               "fp16": ("fphp", "asimdhp"), "sve": ("sve",)}


def mismatches(profile: DeviceProfile) -> list[str]:
    host = detect_host()
    flags = set(cpu_flags())
    out = []
    if profile.arch != host.arch:
        out.append(f"arch: profile {profile.arch}, machine {host.arch}")
    if profile.cores > host.cores:
        out.append(f"cores: profile {profile.cores}, machine {host.cores}")
    if profile.memory_mb > host.memory_mb * 1.05:
        out.append(f"memory_mb: profile {profile.memory_mb}, machine {host.memory_mb}")
    missing = [f for f in profile.isa if not any(a in flags for a in ISA_ALIASES.get(f, (f,)))]
    if missing:
        out.append(f"isa: machine lacks {missing}")
    return out


def emulation_obstacle(profile: DeviceProfile) -> str | None:
    """Why this profile cannot be emulated on this host (None when it can)."""
    import os

    host = detect_host()
    if profile.arch != host.arch:
        return (f"profile {profile.name!r} is {profile.arch} and this host is {host.arch}: emulation would time "
                f"{host.arch} kernels, so run it on the device (`odbench worker --profile {profile.name}`)")
    cpus = len(os.sched_getaffinity(0))
    need = max(profile.threads, len(profile.cpus or ()))
    if need > cpus:
        return f"profile {profile.name!r} needs {need} CPUs and this host offers {cpus}: oversubscribed threads would not emulate it"
    return None


def is_this_machine(profile: DeviceProfile) -> bool:
    """Does the profile describe this whole machine (not a slice of it)? Then cells run with it are
    measured on the device: same arch, its ISA present, the same core count, memory within 10%."""
    if profile.name == "host":
        return True
    host = detect_host()
    return (not mismatches(profile) and profile.cores == host.cores
            and abs(profile.memory_mb - host.memory_mb) <= 0.10 * host.memory_mb)
