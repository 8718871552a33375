"""Does a device profile describe the machine we are on, and can this host stand in for it?

Emulation only goes downward: a host can stand in for a smaller machine (fewer cores, less memory,
a lower ISA, enforced with CPU affinity, an address-space cap and oneDNN's ISA ceiling), never for a
bigger one. Timings of AVX2 kernels labelled as an AVX-512 server, or of 2 cores labelled as 6,
would let a hardware-selection report recommend a machine from another machine's speed.
"""
from __future__ import annotations

import os

from odbench.devices.host import cpu_flags, detect_host
from odbench.devices.profile import ISA_CAPS, DeviceProfile

# profile ISA names that the kernel spells differently
ISA_ALIASES = {"neon": ("neon", "asimd"), "dotprod": ("asimddp",), "i8mm": ("i8mm",), "bf16": ("bf16", "avx512_bf16"),
               "fp16": ("fphp", "asimdhp"), "sve": ("sve",)}

# The /proc/cpuinfo flags that each oneDNN ISA ceiling needs (oneDNN docs, "CPU ISA hints and dispatcher
# control": avx512_core = AVX-512 F/BW/VL/DQ, avx512_core_vnni adds VNNI, avx512_core_bf16 adds BF16,
# avx512_core_amx adds AMX; avx2_vnni = AVX2 with AVX-VNNI).
CAP_FLAGS = {
    "SSE41": ("sse4_1",), "AVX": ("avx",), "AVX2": ("avx2",), "AVX2_VNNI": ("avx2", "avx_vnni"),
    "AVX512_CORE": ("avx512f", "avx512bw", "avx512vl"), "AVX512_CORE_VNNI": ("avx512f", "avx512bw", "avx512vl", "avx512_vnni"),
    "AVX512_CORE_BF16": ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"),
    "AVX512_CORE_AMX": ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"),
}
assert set(CAP_FLAGS) == set(ISA_CAPS)


def missing_isa(profile: DeviceProfile, flags: set[str] | None = None) -> list[str]:
    """The profile's ISA features (and its ISA cap's) that this host's CPU lacks, in the profile's order."""
    flags = set(cpu_flags()) if flags is None else flags
    wanted = list(profile.isa) + [f for f in CAP_FLAGS.get(profile.isa_cap or "", ()) if f not in profile.isa]
    return [f for f in wanted if not any(a in flags for a in ISA_ALIASES.get(f, (f,)))]


def mismatches(profile: DeviceProfile) -> list[str]:
    host = detect_host()
    out = []
    if profile.arch != host.arch:
        out.append(f"arch: profile {profile.arch}, machine {host.arch}")
    if profile.cores > host.cores:
        out.append(f"cores: profile {profile.cores}, machine {host.cores}")
    if profile.memory_mb > host.memory_mb * 1.05:
        out.append(f"memory_mb: profile {profile.memory_mb}, machine {host.memory_mb}")
    missing = missing_isa(profile)
    if missing:
        out.append(f"isa: machine lacks {missing}")
    return out


def emulation_obstacle(profile: DeviceProfile) -> str | None:
    """Why this host cannot stand in for the profile (None when it can): another arch, or any of
    ISA features, cores, CPUs or memory beyond this host's."""
    host = detect_host()
    device = f"run it on the device (`odbench worker --profile {profile.name}`)"
    if profile.arch != host.arch:
        return (f"profile {profile.name!r} is {profile.arch} and this host is {host.arch}: emulation would time "
                f"{host.arch} kernels, so {device}")
    lacks = []
    missing = missing_isa(profile)
    if missing:
        lacks.append(", ".join(missing))
    if profile.cores > host.cores:
        lacks.append(f"cores ({profile.cores} wanted, {host.cores} here)")
    if profile.memory_mb > host.memory_mb:
        lacks.append(f"memory ({profile.memory_mb} MB wanted, {host.memory_mb} MB here)")
    if lacks:
        return f"this host lacks {'; '.join(lacks)}: {device}; a host only emulates a smaller machine"
    cpus = len(os.sched_getaffinity(0))
    need = max(profile.threads, len(profile.cpus or ()))
    if need > cpus:
        return f"profile {profile.name!r} needs {need} CPUs and this host offers {cpus}: oversubscribed threads would not emulate it"
    return None


def emulation_note(profile: DeviceProfile) -> str:
    """One cell of `odbench devices`: how this host runs the profile ('device', 'emulate ...', or why not)."""
    if is_this_machine(profile):
        return "device (this machine)"
    why = emulation_obstacle(profile)
    if why and profile.arch != detect_host().arch:
        return f"device only ({profile.arch})"
    if why and why.startswith("this host lacks"):
        return "device only: " + why.split(": run it on the device")[0]
    if why:
        return "SKIPPED: " + why
    return "emulate" + (f" (ISA cap {profile.isa_cap})" if profile.isa_cap else "")


def is_this_machine(profile: DeviceProfile) -> bool:
    """Does the profile describe this whole machine (not a slice of it)? Then cells run with it are
    measured on the device: same arch, its ISA present, the same core count, memory within 10%."""
    if profile.name == "host":
        return True
    host = detect_host()
    return (not mismatches(profile) and profile.cores == host.cores
            and abs(profile.memory_mb - host.memory_mb) <= 0.10 * host.memory_mb)
