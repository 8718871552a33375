"""DeviceProfile: a validated, immutable description of a target device.

Profiles live in ``devices/profiles/*.yaml``. ``host`` is not a file: it is detected
from the machine the cell runs on (``devices.host.detect_host``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from odbench.core.validation import format_validation_error, load_yaml_model

PROFILE_DIR = Path(__file__).parent / "profiles"


class ProfileError(ValueError):
    """A profile file is missing, unreadable or invalid; the message names the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cluster(_Frozen):
    name: str
    cores: int = Field(ge=1)
    core: str = ""  # micro-architecture, e.g. "Cortex-A76"
    max_mhz: float | None = Field(default=None, gt=0)
    cpus: tuple[int, ...] | None = None  # logical CPU ids of this cluster on the device


FIGURES = ("peak_gflops", "mem_bandwidth_gbs", "unit_price_usd", "hourly_price_usd", "power_w")


class Datasheet(_Frozen):
    """Vendor figures. Each figure given must name where it comes from: its own entry in
    ``sources``, or the general ``source`` when one document gives them all."""

    peak_gflops: float | None = Field(default=None, gt=0, description="FP32 peak, all cores")
    mem_bandwidth_gbs: float | None = Field(default=None, gt=0, description="peak DRAM bandwidth")
    unit_price_usd: float | None = Field(default=None, ge=0)
    hourly_price_usd: float | None = Field(default=None, ge=0)
    power_w: float | None = Field(default=None, gt=0, description="typical board/package power under load")
    source: str = ""
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sourced(self) -> "Datasheet":
        unknown = sorted(set(self.sources) - set(FIGURES))
        if unknown:
            raise ValueError(f"sources: unknown figure(s) {unknown}; figures are {list(FIGURES)}")
        unsourced = [f for f in FIGURES if getattr(self, f) is not None and not (self.sources.get(f) or self.source).strip()]
        if unsourced:
            raise ValueError(f"figure(s) {unsourced} name no source: add sources.<figure> or source")
        return self


# oneDNN's ISA ceilings (ONEDNN_MAX_CPU_ISA), lowest to highest. OpenVINO's CPU plugin and
# PyTorch's oneDNN ops honour it; ONNX Runtime's MLAS has no such switch.
ISA_CAPS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_AMX")


class DeviceProfile(_Frozen):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    arch: Literal["x86_64", "aarch64", "armv7l"]
    cpu_model: str = ""
    isa: tuple[str, ...] = ()
    cores: int = Field(ge=1, description="physical cores")
    clusters: tuple[Cluster, ...] = ()
    threads: int = Field(ge=1, description="inference threads a cell uses")
    cpus: tuple[int, ...] | None = Field(default=None, description="CPU affinity for the cell; None = all")
    memory_mb: int = Field(ge=1)
    memory_cap_mb: int | None = Field(default=None, ge=64, description="address-space cap applied to the cell")
    memory_type: str = ""  # e.g. "LPDDR4X-4267"
    isa_cap: Literal[ISA_CAPS] | None = Field(default=None, description="when emulated on an x86 host: the oneDNN ISA ceiling")
    runtimes: tuple[str, ...] = ("onnxruntime",)
    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    datasheet: Datasheet | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "DeviceProfile":
        if self.cpus is not None and len(self.cpus) < 1:
            raise ValueError("cpus: must list at least one CPU or be omitted")
        if self.clusters and sum(c.cores for c in self.clusters) != self.cores:
            raise ValueError("clusters: core counts must add up to 'cores'")
        return self


def parse_profile(data: object, source: str = "<mapping>") -> DeviceProfile:
    if not isinstance(data, dict):
        raise ProfileError(f"invalid device profile {source}: expected a mapping, got {type(data).__name__}")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as err:
        raise ProfileError(format_validation_error(err, "device profile", source)) from None


def load_profile_file(path: str | Path) -> DeviceProfile:
    path = Path(path)
    profile = load_yaml_model(DeviceProfile, path, "device profile", ProfileError)
    if profile.name != path.stem:
        raise ProfileError(f"invalid device profile {path}:\n  field 'name': '{profile.name}' must match the file name '{path.stem}'")
    return profile


def list_profile_files() -> list[Path]:
    return sorted(PROFILE_DIR.glob("*.yaml"))
