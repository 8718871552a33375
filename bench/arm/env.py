"""The emulated aarch64 environment for ARM functional checks (bench/arm/functional.py), built from the registries.

Three parts, none installed system-wide:

- an arm64 CPython 3.11 unpacked from Debian's own arm64 packages (bookworm), resolved and fetched with
  ``apt-get`` against a private state folder (``APT::Architecture=arm64``), then ``dpkg-deb -x``;
- aarch64 wheels of the runtimes from PyPI (``pip install --platform manylinux_*_aarch64
  --only-binary=:all: --target``), one folder per runtime so a missing wheel costs that runtime only;
- qemu-user: the host's ``qemu-aarch64-static`` if there is one (Debian's ``qemu-user-static``),
  else that package's binary unpacked from the host-arch .deb.

The folder is ``~/.cache/odbench/arm-<hash>``, the hash taken over the exact package versions (every
.deb file name, every wheel pin, qemu's version), so a new Debian security update or a new pin makes a
new folder and an unchanged set is reused without touching the network. ``arm.json`` next to it names
the folder in use.

Under qemu-user the guest reads the host's ``/proc/cpuinfo`` (x86 text) and ONNX Runtime's CPU
detection (pytorch/cpuinfo) crashes on it (SIGSEGV at import). qemu's ``-L``/``QEMU_LD_PREFIX``
prefix is searched first for every absolute path the guest opens (QEMU user-mode docs, "-L path"),
so an ARM ``proc/cpuinfo`` inside the unpacked root is what the guest sees, with no mount namespace.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from odbench.core.records import atomic_write_text

DEBIAN_SUITE = "bookworm"  # its python3.11 matches the project's Python
DEBIAN_SOURCES = (("http://deb.debian.org/debian", DEBIAN_SUITE), ("http://deb.debian.org/debian-security", f"{DEBIAN_SUITE}-security"))
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# The interpreter, its stdlib (with the C extension modules' libraries) and the C++ runtime the wheels link.
DEBIAN_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "libgomp1")
# Runtime -> pinned aarch64 wheels (same versions as the x86 lock, requirements.txt).
WHEELS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy==1.26.4",),
    "onnxruntime": ("onnxruntime==1.32.0",),
    "openvino": ("openvino==2026.4.0",),
    # LiteRT's interpreter: no aarch64 wheel of the x86 lock's ai-edge-litert 2.3.0 on PyPI; 1.4.0 is its newest
    # manylinux aarch64 build (it reads the .tflite files litert-torch 0.10 writes: checked under qemu, 2026-12-03).
    "litert": ("ai-edge-litert==1.4.0", "flatbuffers==25.12.19", "tqdm==4.70.1", "typing_extensions==4.15.0",
               "backports.strenum==1.2.8"),
}
# PyPI's aarch64 tags in use: numpy 1.26 and ai-edge-litert 1.4 ship manylinux_2_17, onnxruntime 1.32 manylinux_2_28,
# openvino 2026 manylinux_2_35 (bookworm's glibc is 2.36, so all of them load).
PLATFORMS = ("manylinux_2_35_aarch64", "manylinux_2_34_aarch64", "manylinux_2_31_aarch64",
             "manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")
QEMU_NAMES = ("qemu-aarch64-static", "qemu-aarch64")
LAYOUT_VERSION = 1  # bump when the folder's layout changes


class ArmEnvError(RuntimeError):
    """The environment cannot be prepared or found; the message says why in one line."""


@dataclass(frozen=True)
class ArmEnv:
    """A prepared environment: run ``qemu -L root root/usr/bin/python3.11`` with ``site[runtime]`` on the path."""

    path: Path
    key: str
    qemu: str
    root: Path
    site: dict[str, Path]  # "numpy", "onnxruntime", "openvino" -> folder; a runtime without a wheel is absent
    missing: dict[str, str]  # runtime -> why it has no aarch64 build here
    manifest: dict

    @property
    def python(self) -> Path:
        return self.root / "usr" / "bin" / "python3.11"

    def pythonpath(self, runtime: str) -> str:
        return os.pathsep.join(str(self.site[k]) for k in ("numpy", runtime) if k in self.site)


def cache_root() -> Path:
    return Path(os.environ.get("ODBENCH_ARM_CACHE", Path.home() / ".cache" / "odbench"))


def pointer_path(root: Path | None = None) -> Path:
    return (root or cache_root()) / "arm.json"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ArmEnvError(f"`{' '.join(cmd[:3])} ...` failed ({proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


# ---------------------------------------------------------------- qemu
def host_qemu() -> str | None:
    for name in QEMU_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def qemu_version(qemu: str) -> str:
    return _run([qemu, "--version"]).splitlines()[0].strip()


# ---------------------------------------------------------------- Debian packages
class PrivateApt:
    """apt-get on its own state folder: lists, cache and an empty dpkg status, nothing system-wide."""

    def __init__(self, work: Path, arch: str):
        self.work, self.arch = work, arch
        for d in ("lists/partial", "cache/archives/partial"):
            (work / d).mkdir(parents=True, exist_ok=True)
        (work / "status").touch()
        signed = f" signed-by={DEBIAN_KEYRING}" if Path(DEBIAN_KEYRING).exists() else ""
        (work / "sources.list").write_text("".join(f"deb [arch={arch}{signed}] {url} {suite} main\n" for url, suite in DEBIAN_SOURCES))

    def _opts(self) -> list[str]:
        w = self.work
        return [f"-oAPT::Architecture={self.arch}", f"-oAPT::Architectures::={self.arch}", f"-oDir::State={w}",
                f"-oDir::State::Lists={w}/lists", f"-oDir::State::status={w}/status", f"-oDir::Cache={w}/cache",
                f"-oDir::Etc::SourceList={w}/sources.list", "-oDir::Etc::SourceParts=/dev/null", "-oDebug::NoLocking=1",
                *(["-oAPT::Sandbox::User=root"] if os.geteuid() == 0 else [])]  # files stay in a folder _apt may not read

    def update(self) -> None:
        _run(["apt-get", *self._opts(), "-qq", "update"])

    def resolve(self, packages: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(package, version, .deb file name) of the packages and all their dependencies, no recommends."""
        out = _run(["apt-get", *self._opts(), "-qq", "-y", "--print-uris", "--no-install-recommends", "install", *packages])
        debs = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].endswith(".deb"):
                name, version, _ = parts[1].split("_", 2)
                debs.append((name, version.replace("%3a", ":"), parts[1]))
        if not debs:
            raise ArmEnvError(f"apt resolved no packages for {packages}")
        return sorted(debs)

    def download(self, debs: list[tuple[str, str, str]], dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", *self._opts(), "-qq", "download", *[f"{n}:{self.arch}={v}" if not f.endswith("_all.deb") else f"{n}={v}"
                                                             for n, v, f in debs]], cwd=dest)
        return sorted(dest.glob("*.deb"))


def _host_deb_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


# ---------------------------------------------------------------- wheels
def pip_install(pins: tuple[str, ...], target: Path, python: str) -> None:
    cmd = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-warn-conflicts", "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--target", str(target)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    _run(cmd + list(pins))


def wheel_versions(pins: dict[str, tuple[str, ...]]) -> str:
    return json.dumps({k: list(v) for k, v in sorted(pins.items())}, sort_keys=True)


# ---------------------------------------------------------------- the folder
def env_key(debs: list[tuple[str, str, str]], qemu: str, wheels: dict[str, tuple[str, ...]]) -> str:
    payload = json.dumps({"layout": LAYOUT_VERSION, "debs": [d[2] for d in debs], "qemu": qemu,
                          "wheels": wheel_versions(wheels)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def arm_cpuinfo(n: int = 64) -> str:
    """A /proc/cpuinfo as an arm64 Linux kernel writes it (Cortex-A76 ids, Arm ARM "MIDR_EL1"); the ISA the
    guest really has comes from qemu's -cpu model through AT_HWCAP, not from this text."""
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
             "asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
             "CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n")
    return "".join(block.format(i=i) for i in range(n))


def load(path: Path) -> ArmEnv:
    manifest = json.loads((path / "manifest.json").read_text())
    site = {k: path / "site" / k for k in manifest["wheels_ok"]}
    return ArmEnv(path=path, key=manifest["key"], qemu=manifest["qemu_path"], root=path / "root", site=site,
                  missing=dict(manifest["wheels_missing"]), manifest=manifest)


def find_env(root: Path | None = None) -> ArmEnv:
    """The environment `setup` last prepared (or $ODBENCH_ARM_ENV). Raises ArmEnvError with the reason."""
    explicit = os.environ.get("ODBENCH_ARM_ENV")
    if explicit:
        path = Path(explicit)
    else:
        ptr = pointer_path(root)
        if not ptr.exists():
            raise ArmEnvError(f"no arm64 environment: run `make arm-setup`; {ptr} is absent")
        path = Path(json.loads(ptr.read_text())["path"])
    if not (path / "manifest.json").exists():
        raise ArmEnvError(f"arm64 environment {path} is incomplete: run `make arm-setup` again")
    env = load(path)
    if not Path(env.qemu).exists():
        raise ArmEnvError(f"qemu {env.qemu} of arm64 environment {path} is gone: run `make arm-setup` again")
    return env


def _requested(env: ArmEnv, wheels: dict[str, tuple[str, ...]]) -> bool:
    return env.manifest.get("wheels") == wheel_versions(wheels) and env.manifest.get("layout") == LAYOUT_VERSION


def setup(root: Path | None = None, refresh: bool = False, wheels: dict[str, tuple[str, ...]] = WHEELS,
          python: str | None = None, log: Callable[[str], None] = print) -> ArmEnv:
    """Prepare (or reuse) the environment; returns it. Without ``refresh`` an environment already made for
    the same wheel pins is reused offline; with it, Debian is asked again and new versions give a new folder."""
    import sys

    root = root or cache_root()
    if not refresh:
        try:
            env = find_env(root)
            if _requested(env, wheels):
                log(f"[arm] reusing {env.path}")
                return env
        except ArmEnvError:
            pass
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise ArmEnvError("apt-get and dpkg-deb are needed to fetch Debian's arm64 Python (a Debian/Ubuntu host)")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="arm-apt-", dir=root) as tmp:
        apt = PrivateApt(Path(tmp) / "arm64", "arm64")
        log(f"[arm] resolving Debian {DEBIAN_SUITE} arm64 packages {', '.join(DEBIAN_PACKAGES)}")
        apt.update()
        debs = apt.resolve(DEBIAN_PACKAGES)
        qemu = host_qemu()
        qemu_debs: list[tuple[str, str, str]] = []
        if qemu is None:
            host_apt = PrivateApt(Path(tmp) / "host", _host_deb_arch())
            host_apt.update()
            qemu_debs = [d for d in host_apt.resolve(("qemu-user-static",)) if d[0] == "qemu-user-static"]
            qemu_id = f"deb {qemu_debs[0][2]}"
        else:
            qemu_id = qemu_version(qemu)
        key = env_key(debs, qemu_id, wheels)
        path = root / f"arm-{key}"
        if not (path / "manifest.json").exists():
            _build(path, key, apt, debs, host_apt if qemu is None else None, qemu_debs, qemu, qemu_id, wheels,
                   python or sys.executable, Path(tmp), log)
        else:
            log(f"[arm] {path} already holds these exact versions")
    atomic_write_text(pointer_path(root), json.dumps({"path": str(path), "key": key}))
    return find_env(root)


def _build(path: Path, key: str, apt: PrivateApt, debs, host_apt, qemu_debs, qemu, qemu_id, wheels, python, tmp: Path, log) -> None:
    shutil.rmtree(path, ignore_errors=True)
    (path / "root").mkdir(parents=True)
    log(f"[arm] downloading {len(debs)} arm64 .debs into {path}")
    for deb in apt.download(debs, tmp / "debs"):
        _run(["dpkg-deb", "-x", str(deb), str(path / "root")])
    (path / "root" / "proc").mkdir(exist_ok=True)
    (path / "root" / "proc" / "cpuinfo").write_text(arm_cpuinfo())
    if qemu is None:
        log(f"[arm] no qemu-aarch64 on this host: unpacking {qemu_debs[0][2]}")
        (deb,) = host_apt.download(qemu_debs, tmp / "qemu")
        _run(["dpkg-deb", "-x", str(deb), str(tmp / "qemu-x")])
        (path / "bin").mkdir()
        qemu = str(shutil.copy2(tmp / "qemu-x" / "usr" / "bin" / "qemu-aarch64-static", path / "bin" / "qemu-aarch64-static"))
    ok, missing = [], {}
    for name, pins in wheels.items():
        log(f"[arm] aarch64 wheels {' '.join(pins)}")
        try:
            pip_install(pins, path / "site" / name, python)
            ok.append(name)
        except ArmEnvError as exc:
            missing[name] = f"no aarch64 wheel installable for {' '.join(pins)}: {exc}"
            log(f"[arm] {missing[name]}")
    if "numpy" not in ok:
        raise ArmEnvError(missing["numpy"])
    manifest = {"key": key, "layout": LAYOUT_VERSION, "debian_suite": DEBIAN_SUITE, "debs": [d[2] for d in debs],
                "qemu": qemu_id, "qemu_path": qemu, "wheels": wheel_versions(wheels), "wheels_ok": ok, "wheels_missing": missing}
    atomic_write_text(path / "manifest.json", json.dumps(manifest, indent=1))
