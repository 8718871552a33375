"""Device profiles: schema, loader, host detection and in-cell application."""
from odbench.devices.catalog import get_profile  # noqa: F401
from odbench.devices.profile import DeviceProfile, ProfileError, list_profile_files, load_profile_file, parse_profile  # noqa: F401
