"""Device profiles: schema, loader, host detection and in-cell application."""
from devices.profile import (  # noqa: F401
    DeviceProfile,
    ProfileError,
    get_profile,
    list_profile_files,
    load_profile_file,
    parse_profile,
)
