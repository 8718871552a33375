"""A device profile by name: 'host' (detected), a profile of devices/profiles, or a YAML path."""
from __future__ import annotations

from pathlib import Path

from odbench.devices.host import detect_host
from odbench.devices.profile import PROFILE_DIR, DeviceProfile, ProfileError, list_profile_files, load_profile_file


def get_profile(name_or_path: str) -> DeviceProfile:
    """'host' (detected), a profile name from devices/profiles, or a path to a YAML file."""
    if name_or_path == "host":
        return detect_host()
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_profile_file(candidate)
    path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = ["host"] + [p.stem for p in list_profile_files()]
        raise ProfileError(f"unknown device profile {name_or_path!r}; known: {', '.join(known)}")
    return load_profile_file(path)
