"""`odbench worker`: a Dask worker on a target device, advertising its profile (checked against the machine)."""
from __future__ import annotations

import os
import socket
import sys

import click

from odbench.bench.executors.dask import MEASURED_ON_ENV, SCHEDULER_ENV, resource_for
from odbench.cli.common import log, resolve_profiles, usage
from odbench.devices.check import mismatches


@click.command("worker")
@click.option("--profile", required=True, help="device profile name or YAML path")
@click.option("--scheduler", help=f"scheduler address (env {SCHEDULER_ENV})")
@click.option("--emulate", is_flag=True, help="allow a profile that is not this machine (results marked emulated)")
@click.option("--no-nanny", is_flag=True, help="no Dask nanny process (a dead worker is not restarted)")
def worker_cmd(profile: str, scheduler: str | None, emulate: bool, no_nanny: bool) -> int:
    """Start a Dask worker for this device (for `odbench run --executor dask`)."""
    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise usage(f"no scheduler address: pass --scheduler or set {SCHEDULER_ENV}")
    (device,) = resolve_profiles((profile,))
    problems = mismatches(device)
    if problems and not emulate:
        raise usage(f"profile {device.name!r} does not describe this machine: {'; '.join(problems)} "
                    "(use --emulate to run it emulated here; results will be marked 'emulated')")
    measured_on = "emulated" if problems or emulate else "device"
    cmd = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--resources", f"{resource_for(device.name)}=1",
           "--nthreads", "1", "--name", f"odbench-{device.name}-{socket.gethostname()}-{os.getpid()}"]
    if no_nanny:
        cmd.append("--no-nanny")
    log(f"[worker] {device.name} ({measured_on}) -> {address}: {' '.join(cmd[3:])}")
    os.execve(sys.executable, cmd, dict(os.environ, **{MEASURED_ON_ENV: measured_on}))
    return 0  # not reached
