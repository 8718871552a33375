"""The matrix plan: variants x runtimes x device profiles x scenarios -> CellSpecs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from odbench.core.constants import REFERENCE_RUNTIME
from odbench.core.records import CellSpec, Feeds, ParitySpec, Timing, Variant
from odbench.devices.check import is_this_machine
from odbench.devices.profile import DeviceProfile


@dataclass(frozen=True)
class Workload:
    """A variant and, per scenario, where its feeds come from."""

    variant: Variant
    feeds: dict[str, tuple[Feeds, int]]  # scenario -> (feeds, items per inference)
    output_kind: str = "values"  # what the first output means, for parity: embedding | ranking | values


def measured_on(profile: DeviceProfile) -> str:
    """'device' when the profile describes this whole machine (``host``, or e.g. the rpi5 profile run on
    a Raspberry Pi 5); a profile of other hardware, or a slice of this one (host-1t), is 'emulated'."""

    return "device" if is_this_machine(profile) else "emulated"


def default_timeout(timing: Timing) -> float:
    # warm-up + measurement, plus generous room for imports, session creation and a slow first run.
    return timing.warmup_s + timing.max_time_s * 1.5 + 120.0


def plan(
    workloads: Sequence[Workload],
    runtimes: Sequence[tuple[str, dict[str, Any]]],
    profiles: Sequence[DeviceProfile],
    timing: Timing,
    scenarios: Sequence[str] | None = None,
    timeout_s: float | None = None,
    parity: Mapping[tuple[str, str], ParitySpec] | None = None,
) -> list[CellSpec]:
    """Every combination, in a stable order. ``parity``: (variant id, scenario) -> ParitySpec."""
    cells = []
    for w in workloads:
        for scenario, (feeds, items) in w.feeds.items():
            if scenarios and scenario not in scenarios:
                continue
            for runtime, options in runtimes:
                for profile in profiles:
                    cells.append(
                        CellSpec(
                            model=w.variant.model,
                            variant_id=w.variant.id,
                            variant_path=w.variant.path,
                            variant_sha256=w.variant.sha256,
                            runtime=runtime,
                            runtime_options=dict(options),
                            profile=profile.model_dump(mode="json"),
                            measured_on=measured_on(profile),
                            scenario=scenario,
                            items_per_inference=items,
                            feeds=feeds,
                            timing=timing,
                            timeout_s=timeout_s or default_timeout(timing),
                            parity=_parity_for(parity, w.variant.id, scenario, runtime, options),
                            int8_target=w.variant.config.get("target_isa"),
                            int8_weight_bits=w.variant.config.get("weight_bits"),
                        )
                    )
    return cells


def _parity_for(parity, variant_id: str, scenario: str, runtime: str, options: dict) -> ParitySpec | None:
    spec = (parity or {}).get((variant_id, scenario))
    if spec is None:
        return None

    # The reference runtime with its default options has nothing to compare with itself.
    same_as_reference = runtime == REFERENCE_RUNTIME and not options
    return dataclasses.replace(spec, compare_runtime=not same_as_reference)
