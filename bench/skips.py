"""Why a cell cannot run here, decided before any timing: a reasoned SKIPPED, never an import error.

Checked in the parent before a cell's processes start (no process is spent on a skip) and
again in the cell process itself (a Dask worker on a device may lack what the controller has).
"""
from __future__ import annotations

from odbench.core.records import HARNESS_RUNTIMES, CellSpec
from odbench.devices.check import emulation_obstacle
from odbench.devices.profile import DeviceProfile
from odbench.runtimes import get_runtime


def skip_reason(spec: CellSpec) -> str | None:
    profile = DeviceProfile.model_validate(spec.profile)
    runtime = get_runtime(spec.runtime)
    ok, why = runtime.available()
    if not ok:
        return why
    if spec.runtime not in profile.runtimes and spec.runtime not in HARNESS_RUNTIMES:
        return f"profile {profile.name!r} does not support runtime {spec.runtime!r} (it lists {list(profile.runtimes)})"
    if spec.measured_on == "emulated":
        why = emulation_obstacle(profile)
        if why:
            return why
    ok, why = runtime.accepts(spec.variant_path)
    return None if ok else why
