"""What was true of the machine while a cell ran: CPU, ISA, versions, load, clocks, temperature."""
from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

import psutil

from odbench.devices.host import cpu_model, detect_host


def _cpu_mhz() -> float | None:
    try:
        freq = psutil.cpu_freq()
        if freq and freq.current:
            return round(float(freq.current), 1)
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            vals = [float(l.split(":")[1]) for l in fh if l.startswith("cpu MHz")]
        return round(sum(vals) / len(vals), 1) if vals else None
    except OSError:
        return None


def _temperature_c() -> float | None:
    try:
        temps = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        return None
    values = [t.current for entries in (temps or {}).values() for t in entries if t.current]
    return round(max(values), 1) if values else None


def machine() -> dict[str, Any]:
    host = detect_host()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "arch": host.arch,
        "isa": list(host.isa),
        "physical_cores": host.cores,
        "logical_cpus": psutil.cpu_count(logical=True),
        "memory_mb": host.memory_mb,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def snapshot() -> dict[str, Any]:
    """Cheap, read at the start and end of a cell."""
    load1, load5, _ = os.getloadavg()
    return {"load1": round(load1, 2), "load5": round(load5, 2), "cpu_mhz": _cpu_mhz(), "temp_c": _temperature_c()}


# /proc/stat fields that are time the CPUs spent; guest time is already inside user and nice (proc(5)).
_SPENT = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_window() -> tuple:
    """Start of a window over which ``cpu_share`` tells how much of the machine other work used."""
    return psutil.cpu_times(), psutil.Process().cpu_times(), time.monotonic()


def cpu_share(start: tuple) -> dict[str, float]:
    """Since ``start``: the share of all CPUs' time that other processes used (busy time minus this process's
    own) and the share the hypervisor took (steal, where the kernel reports it), each in [0, 1]."""
    sys0, own0, t0 = start
    sys1, own1 = psutil.cpu_times(), psutil.Process().cpu_times()
    delta = {f: getattr(sys1, f, 0.0) - getattr(sys0, f, 0.0) for f in _SPENT}
    total = sum(delta.values())
    if total <= 0:
        return {"others": 0.0, "steal": 0.0, "window_s": round(time.monotonic() - t0, 3)}
    own = (own1.user - own0.user) + (own1.system - own0.system)
    busy = total - delta["idle"] - delta["iowait"] - delta["steal"]
    return {"others": round(min(1.0, max(0.0, (busy - own) / total)), 4), "steal": round(max(0.0, delta["steal"] / total), 4),
            "window_s": round(time.monotonic() - t0, 3)}
