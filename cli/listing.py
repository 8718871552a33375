"""`odbench models` and `odbench devices`: what the zoo, this machine and the device profiles offer."""
from __future__ import annotations

import sys

import click
from rich.table import Table

from odbench.cli.common import cache_path, out, resolve_profiles
from odbench.core.constants import INFERENCE_RUNTIMES, MOBILE_RUNTIMES
from odbench.core.records import Variant
from odbench.devices.check import emulation_note
from odbench.devices.host import detect_host
from odbench.devices.profile import DeviceProfile, ProfileError, list_profile_files, load_profile_file
from odbench.models import ZOO, get_model
from odbench.runtimes import get_runtime


@click.command("models")
@click.pass_context
def models_cmd(ctx: click.Context) -> int:
    """List the zoo models, their scenarios and the variants built in the cache."""
    cache = cache_path(ctx)
    console = out()
    for name in ZOO:
        m = get_model(name)
        console.print(f"{name}\n  {m.description}\n  scenarios: {', '.join(m.scenarios)}")
        metas = sorted((cache / "models" / name).glob("*/*/variant.json")) + sorted((cache / "variants" / name).glob("*/variant.json"))
        if not metas:
            continue
        table = Table("built variant", "from", "MB", "accuracy", "folder")
        for meta in metas:
            v = Variant.load(meta)
            lineage = f"{v.parent} [{v.compressor}]" if v.parent else ""
            table.add_row(v.id, lineage, f"{v.size_bytes / 2**20:.1f}", ", ".join(f"{k}={x:.4f}" for k, x in v.accuracy.items()),
                          str(meta.parent))
        console.print(table)
    return 0


def here_text() -> str:
    """What this machine really has: ISA, and each runtime with its providers/devices."""
    host = detect_host()
    lines = [f"This machine (profile 'host', measured_on=device): {host.cpu_model}, {host.arch}, {host.cores} physical cores, "
             f"{host.memory_mb} MB", f"  ISA: {' '.join(host.isa) or 'unknown'}", "  runtimes:"]
    for name in INFERENCE_RUNTIMES + MOBILE_RUNTIMES:
        rt = get_runtime(name)
        ok, why = rt.available()
        env = getattr(rt, "environment", None)
        where = f" [environment {env.name}]" if env is not None else " [environment main]"
        if not ok:
            lines.append(f"    {name}: not available: {why}{where}")
            continue
        try:
            caps = rt.capabilities()
        except Exception as exc:  # noqa: BLE001 - a broken install is worth showing, not crashing on
            caps = {"error": f"{type(exc).__name__}: {exc}"}
        detail = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in caps.items())
        lines.append(f"    {name} {rt.version()}: {detail}{where}")
    return "\n".join(lines)


def _emulation_note(profile: DeviceProfile) -> str:
    return emulation_note(profile)


def _profile_row(p: DeviceProfile) -> tuple[str, ...]:
    d = p.datasheet
    price = ""
    if d is not None and d.hourly_price_usd is not None:
        price = f"${d.hourly_price_usd:g}/h"
    elif d is not None and d.unit_price_usd is not None:
        price = f"${d.unit_price_usd:g}"
    num = lambda x: f"{x:g}" if x else ""  # noqa: E731
    return (p.name, p.arch, f"{p.cores}/{p.threads}", str(p.memory_mb), ",".join(p.runtimes),
            num(d and d.peak_gflops), num(d and d.mem_bandwidth_gbs), price, num(d and d.power_w), _emulation_note(p))


def _profiles_table() -> Table:
    table = Table("profile", "arch", "cores/threads", "memory MB", "runtimes", "peak GFLOP/s", "GB/s", "price", "power W", "here",
                  title="Device profiles")
    for path in list_profile_files():
        try:
            table.add_row(*_profile_row(load_profile_file(path)))
        except ProfileError as exc:
            table.add_row(path.stem, "INVALID", str(exc).splitlines()[-1].strip(), *[""] * 7)
    return table


def _validate(paths: tuple[str, ...]) -> int:
    bad = 0
    for path in paths:
        try:
            print(f"ok: {path} ({load_profile_file(path).name})")
        except ProfileError as exc:
            print(str(exc), file=sys.stderr)
            bad += 1
    return 1 if bad else 0


@click.command("devices")
@click.argument("action", type=click.Choice(["list", "show", "validate"]), default="list")
@click.argument("names", nargs=-1)
def devices_cmd(action: str, names: tuple[str, ...]) -> int:
    """List device profiles (and what this machine has), show one, or validate profile files.

    \b
    odbench devices                    this machine's ISA and runtimes, then every profile
    odbench devices show NAME...       a profile as JSON, with its datasheet sources
    odbench devices validate FILE...   exit 1 if any file is invalid (the message names the field)
    """
    if action == "validate":
        return _validate(names)
    if action == "show":
        for profile in resolve_profiles(names):
            print(profile.model_dump_json(indent=2))
        return 0
    console = out()
    console.print(here_text())
    console.print()
    console.print(_profiles_table())
    console.print("`odbench devices show NAME` prints a profile with its datasheet sources; "
                  "`odbench run --profile NAME` emulates it here.")
    return 0
