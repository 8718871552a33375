"""ARM functional check: an emulated aarch64 environment (qemu-user) that runs cells' outputs."""
