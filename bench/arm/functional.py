"""ARM functional check: an aarch64 profile's cell, on an x86 host, run on the aarch64 build of its runtime
under qemu-user. Outputs are real; time is not (``measured_on="functional-emulation"``, no latency).

Why: int8 kernels differ between ISAs (ONNX Runtime's MLAS has separate x86 and aarch64 quantized GEMM
kernels; its quantization docs warn of u8s8 saturation on AVX2 without VNNI), so fidelity measured on x86
does not transfer to a phone. The cell's parity feeds go through the ARM session and are compared with the
references of bench/parity.py, computed on x86 ONNX Runtime: the fp32 root (floors ``FP32_FLOORS``) and the
same variant (``RUNTIME_FLOORS``, always checked here, the ISA being what changed). Task accuracy of the ARM
outputs is added for zoo models when asked (``accuracy=True``).

The hook: ``functional_cell(spec) -> Result`` for a cell whose profile is aarch64 on a non-aarch64 host.
The environment comes from ``odbench arm setup`` (bench/arm/env.py). Commands:

    odbench arm setup [--refresh]     prepare or reuse ~/.cache/odbench/arm-<hash>
    odbench arm check RUN_DIR [--accuracy MODEL] [--runtime NAME]   rerun RUN_DIR's aarch64 cells
    odbench arm table RUN_DIR         print the ARM functional table of a checked run
"""
from __future__ import annotations

import io
import json
import os
import select
import struct
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from odbench.bench import parity
from odbench.bench.arm.env import ArmEnv, ArmEnvError, find_env, load, setup
from odbench.bench.run_folder import RunFolder
from odbench.core.feeds import load_feeds
from odbench.core.records import CellSpec, Result, atomic_write_text, sha256_file
from odbench.devices.host import detect_host
from odbench.devices.profile import DeviceProfile
from odbench.models import ZOO, get_model
from odbench.models.base import cache_dir
from odbench.runtimes import get_runtime, parse_options

MEASURED_ON = "functional-emulation"
WORKER = Path(__file__).with_name("_worker.py")
ARM_RUNTIMES = ("onnxruntime", "openvino", "litert")  # the runtimes with an aarch64 wheel that the worker drives
# Runtimes whose files this host cannot make without their own environment: probed by importing them.
IMPORT_PROBE = ("litert",)
# Measured on this project's hosts (2026-12-03): why a runtime has no aarch64 build that runs under qemu here.
NO_ARM_BUILD = {
    "executorch": ("ExecuTorch 1.5.1's aarch64 wheel links its Python runtime against libtorch (libtorch_python, "
                   "libtorch_cpu), and PyPI's aarch64 torch 2.13.0 is the CUDA build: importing it needs "
                   "libcudart.so.13, libcupti.so.13, libcudnn.so.9, libnccl.so.2 and more from NVIDIA's wheels, which "
                   "the package registries here do not all carry (no nvidia-cuda-cupti for aarch64), and the CPU "
                   "aarch64 wheel (download.pytorch.org/whl/cpu) is unreachable: run it on the device"),
}
# The profile's core -> qemu's model of it (`qemu-aarch64 -cpu help`, QEMU 7.2); its ISA reaches the guest
# through AT_HWCAP. A core qemu does not model runs on "max" (every feature qemu emulates), with a warning.
QEMU_CPUS = {"cortex-a35": "cortex-a35", "cortex-a53": "cortex-a53", "cortex-a57": "cortex-a57",
             "cortex-a72": "cortex-a72", "cortex-a76": "cortex-a76", "neoverse-n1": "neoverse-n1", "a64fx": "a64fx"}
START_TIMEOUT_S = 300.0  # importing a runtime under qemu takes 10-60 s on a busy 2-core host
# One request: MiniLM on a 32 x 128-token batch took more than 300 s under qemu on a busy 2-core host.
FEED_TIMEOUT_S = 1800.0
LEN = struct.Struct("<Q")


class ArmWorkerError(RuntimeError):
    """The emulated session failed: to start, or on a feed. The message is the guest's one-line error."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def qemu_cpu(profile: DeviceProfile) -> tuple[str, str | None]:
    """(qemu -cpu value, warning or None) for a profile: its big core when it has clusters."""
    cores = [c.core for c in sorted(profile.clusters, key=lambda c: -(c.max_mhz or 0)) if c.core] or [profile.cpu_model]
    for core in cores:
        key = core.strip().lower().replace(" ", "-")
        if key in QEMU_CPUS:
            return QEMU_CPUS[key], None
    return "max", f"qemu models no {cores[0] or 'named core'}: run on qemu's 'max' CPU (every feature it emulates)"


class ArmSession:
    """One runtime session in the aarch64 guest; ``run(feed) -> outputs`` like a RunFn."""

    def __init__(self, env: ArmEnv, runtime: str, model: str, threads: int = 1, options: Mapping | None = None,
                 cpu: str = "max", timeout_s: float = FEED_TIMEOUT_S):
        cmd = [env.qemu, "-L", str(env.root), "-cpu", cpu, str(env.python), "-I", "-c", _BOOT, runtime, str(model), str(threads),
               json.dumps(dict(options or {}))]
        guest_env = {"PATH": "/usr/bin:/bin", "ARM_SITE": env.pythonpath(runtime), "ARM_WORKER": str(WORKER),
                     "OMP_NUM_THREADS": str(threads), "LANG": "C.UTF-8"}
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty guest never blocks on it
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=guest_env)
        self.timeout_s = timeout_s
        try:
            self.info = json.loads(self._expect(b"J", START_TIMEOUT_S))
        except BaseException:
            self.close()
            raise

    def _read(self, n: int, deadline: float) -> bytes:
        fd, buf = self._proc.stdout.fileno(), b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._proc.kill()  # hung: no point waiting for it to read the end of its input
                self.close()
                raise ArmWorkerError(f"the emulated session gave no answer within {self._limit:g}s")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise ArmWorkerError(self._died())
            buf += chunk
        return buf

    def _died(self) -> str:
        self._proc.wait(timeout=30)
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]
        return f"the emulated session ended (exit {self._proc.returncode}): {' | '.join(tail) or 'no message'}"

    def _expect(self, kind: bytes, timeout_s: float) -> bytes:
        self._limit, deadline = timeout_s, time.monotonic() + timeout_s
        got = self._read(1, deadline)
        (n,) = LEN.unpack(self._read(LEN.size, deadline))
        payload = self._read(n, deadline)
        if got == b"E":
            raise ArmWorkerError(payload.decode("utf-8", "replace"))
        if got != kind:
            raise ArmWorkerError(f"protocol: expected a {kind!r} frame, got {got!r}")
        return payload

    def run(self, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in feed.items()})
        data = buf.getvalue()
        try:
            self._proc.stdin.write(LEN.pack(len(data)) + data)
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise ArmWorkerError(self._died()) from None
        with np.load(io.BytesIO(self._expect(b"O", self.timeout_s))) as z:
            return [z[str(i)] for i in range(len(z.files))]

    __call__ = run

    def close(self) -> None:
        try:
            self._proc.stdin.close()  # the worker's end of input: it returns
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> "ArmSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The guest's entry: isolated mode (-I) ignores PYTHONPATH, so the runtime's folder is put on sys.path here.
_BOOT = ("import os,sys,runpy; sys.path[:0]=[p for p in os.environ['ARM_SITE'].split(os.pathsep) if p]; "
         "sys.argv=[os.environ['ARM_WORKER']]+sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")

SessionFactory = Callable[..., ArmSession]


def why_not(spec: CellSpec, profile: DeviceProfile, env: ArmEnv | None) -> str | None:
    """The reason this cell cannot be checked under emulation, or None."""
    if profile.arch != "aarch64":
        return f"profile {profile.name!r} is {profile.arch}: the ARM functional check covers aarch64 profiles"
    if spec.runtime not in profile.runtimes:
        return f"profile {profile.name!r} does not support runtime {spec.runtime!r} (it lists {list(profile.runtimes)})"
    if spec.runtime in NO_ARM_BUILD:
        return NO_ARM_BUILD[spec.runtime]
    if spec.runtime not in ARM_RUNTIMES:
        return f"no aarch64 build of {spec.runtime!r} in the ARM functional check (it runs {', '.join(ARM_RUNTIMES)}): run it on the device"
    if env is not None and spec.runtime not in env.site:
        return env.missing.get(spec.runtime, f"the arm64 environment {env.path} has no {spec.runtime} wheel")
    if env is not None and spec.runtime in env.manifest.get("probe_failed", {}):
        return f"{spec.runtime}'s aarch64 wheel does not run under qemu here: {env.manifest['probe_failed'][spec.runtime]}"
    if spec.parity is None or not spec.parity.reference:
        why = spec.parity.error if spec.parity else "the run was planned without parity references (--no-parity)"
        return f"nothing to compare the ARM outputs with: {why}"
    if not spec.feeds.path:
        return "the cell's feeds were not materialised to a file, so its parity references do not exist"
    return None


def is_functional(spec: CellSpec) -> bool:
    """Is this a cell for the functional check: an aarch64 profile on a host of another architecture?"""

    return spec.profile.get("arch") == "aarch64" and detect_host().arch != "aarch64"


def _threads(profile: DeviceProfile) -> int:
    return max(1, min(profile.threads, len(os.sched_getaffinity(0))))


def functional_cell(spec: CellSpec, env: ArmEnv | None = None, accuracy: bool = False,
                    session_factory: SessionFactory = ArmSession) -> Result:
    """Run ``spec``'s parity feeds (and, with ``accuracy``, the zoo model's task evaluation) on the aarch64
    runtime under qemu. OK or FAIL by bench/parity.py's floors; SKIPPED with the reason when it cannot run;
    ERROR when the emulated session fails. Never raises for a cell fault."""
    started, t0 = _now(), time.perf_counter()

    def result(verdict: str, reason: str = "", **fields) -> Result:
        return Result.for_cell(spec, verdict, reason, started_at=started, finished_at=_now(),  # no timing: never gating
                               measure_s=round(time.perf_counter() - t0, 3), **fields).replace(measured_on=MEASURED_ON, gating=False)

    profile = DeviceProfile.model_validate(spec.profile)
    why = why_not(spec, profile, None)
    if why:
        return result("SKIPPED", why)
    try:
        env = env or find_env()
    except ArmEnvError as exc:
        return result("SKIPPED", str(exc))
    why = why_not(spec, profile, env)
    if why:
        return result("SKIPPED", why)
    cpu, warning = qemu_cpu(profile)
    warnings = (warning,) if warning else ()
    provenance = {"qemu": env.manifest.get("qemu"), "qemu_cpu": cpu, "arm_env": str(env.path),
                  "arm_wheels": env.manifest.get("wheels"), "arm_debian": env.manifest.get("debian_suite")}
    p = spec.parity
    try:
        if sha256_file(p.reference) != p.reference_sha256:
            return result("ERROR", f"parity reference {p.reference} changed since the run was planned", warnings=warnings)
        refs = parity.load_reference(p.reference)
        feeds = load_feeds(spec.feeds.path)[: p.n_feeds]
        with session_factory(env, spec.runtime, spec.variant_path, threads=_threads(profile),
                             options=spec.runtime_options, cpu=cpu) as session:
            got = [session.run(f) for f in feeds]
            metrics = {key: parity.compare(p.kind, got, refs[key][: len(got)]) for key in ("fp32", "runtime") if key in refs}
            if "runtime" not in refs:  # no ONNX Runtime run of this file (a .tflite): its own runtime's x86 build
                try:
                    metrics["x86"] = parity.compare(p.kind, got, x86_outputs(spec, feeds, _threads(profile)))
                except (RuntimeError, OSError, ValueError) as exc:
                    warnings += (f"not compared with {spec.runtime}'s x86 build: {type(exc).__name__}: {exc}"[:300],)
            if accuracy:
                metrics["accuracy"] = task_accuracy(spec.model, session.run)
            info = dict(session.info)
    except (ArmWorkerError, OSError, ValueError, KeyError) as exc:
        return result("ERROR", f"ARM functional check: {type(exc).__name__}: {exc}"[:800], warnings=warnings, provenance=provenance)
    reasons = parity.judge(p.kind, metrics)
    return result("FAIL" if reasons else "OK", "; ".join(f"on aarch64 {spec.runtime}: {r}" for r in reasons),
                  warnings=warnings, parity=metrics, runtime_info={**info, "qemu_cpu": cpu}, provenance=provenance)


def x86_outputs(spec: CellSpec, feeds: Sequence[Mapping[str, np.ndarray]], threads: int) -> list:
    """The same file's outputs on this host's build of the cell's runtime (its environment's, for a mobile runtime)."""
    runtime = get_runtime(spec.runtime)
    session = runtime.open(spec.variant_path, threads, parse_options(runtime, spec.runtime_options))
    try:
        return [session.run(f) for f in feeds]
    finally:
        session.close()


def task_accuracy(model: str, run: Callable) -> dict[str, float]:
    """The zoo model's own task metrics, computed from the ARM outputs (models/*.evaluate)."""

    if model not in ZOO:
        return {}
    return get_model(model).evaluate(run, cache_dir())


def tiny_model(path: Path, seed: int = 0) -> Path:
    """A small fp32 ONNX model (MatMul + Add + Tanh, 16 -> 8) for probing the environment and for tests."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["z"]),
         helper.make_node("Tanh", ["z"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def probe(env: ArmEnv, log: Callable[[str], None] = print) -> ArmEnv:
    """Start each runtime of the environment once on a tiny model under qemu; record which ones run."""

    model = tiny_model(env.path / "probe" / "tiny.onnx")
    ok, failed = {}, {}
    for runtime in (r for r in ARM_RUNTIMES if r in env.site):
        t0 = time.perf_counter()
        try:
            with ArmSession(env, runtime, "" if runtime in IMPORT_PROBE else str(model), cpu="cortex-a76") as s:
                if runtime not in IMPORT_PROBE:
                    s.run({"x": np.ones((2, 16), np.float32)})
                ok[runtime] = s.info
            log(f"[arm] {runtime} runs under qemu ({time.perf_counter() - t0:.1f}s): {s.info}")
        except ArmWorkerError as exc:
            failed[runtime] = str(exc)[:500]
            log(f"[arm] {runtime} does not run under qemu: {failed[runtime]}")
    manifest = {**env.manifest, "probe_ok": ok, "probe_failed": failed}
    atomic_write_text(env.path / "manifest.json", json.dumps(manifest, indent=1))
    return load(env.path)


def prepare_env(refresh: bool = False, log: Callable[[str], None] = print) -> ArmEnv:
    """``setup`` then, once per environment, ``probe``: the environment the checks will use."""

    env = setup(refresh=refresh, log=log)
    if "probe_ok" not in env.manifest:
        env = probe(env, log=log)
    return env


def check_run(run_dir: Path, accuracy: Sequence[str] = (), env: ArmEnv | None = None, runtimes: Sequence[str] = (),
              log: Callable[[str], None] = print) -> list[Result]:
    """Rerun every aarch64 cell of a run folder as a functional check; its results replace the SKIPPED ones.
    ``accuracy``: the zoo models whose task accuracy is also computed on the ARM outputs ("all" = every one)."""

    store = RunFolder.open(run_dir)
    results, evaluated = [], set()
    for spec in store.specs().values():
        if not is_functional(spec) or spec.runtime in ("null", "faulty") or (runtimes and spec.runtime not in runtimes):
            continue
        once = (spec.variant_id, spec.runtime, json.dumps(spec.runtime_options, sort_keys=True), spec.profile_name)
        wanted = ("all" in accuracy or spec.model in accuracy) and once not in evaluated  # once per variant, not per scenario
        r = functional_cell(spec, env=env, accuracy=wanted)
        if wanted and r.verdict in ("OK", "FAIL"):
            evaluated.add(once)
        store.put(r)
        results.append(r)
        log(f"[arm] {r.cell_id}: {r.verdict} ({r.measure_s:.1f}s) {r.reason}")
    return results


def setup_text(env: ArmEnv) -> str:
    """`odbench arm setup`: where the environment is, its runtimes, and what is missing and why."""
    return (f"{env.path}\truntimes: {', '.join(k for k in env.site if k != 'numpy') or 'none'}"
            + "".join(f"\n  {k}: {v}" for k, v in {**env.missing, **env.manifest.get("probe_failed", {})}.items()))


def table_text(run_dir: Path, results: Sequence[Result] | None = None) -> str:
    """`odbench arm table RUN`: the functional rows of a run folder (or ``results``) as Markdown."""
    folder = RunFolder.open(run_dir)
    if results is None:
        results = sorted((r for r in folder.results() if r.measured_on == MEASURED_ON),
                         key=lambda r: (r.model, r.runtime, r.scenario, r.variant_id))
    return arm_table(results, folder.variants())


def _metric_text(m: Mapping | None) -> str:
    if not m:
        return ""
    keys = ("cosine", "cosine_min", f"top{parity.TOP_K}_overlap", "spearman", "max_abs_diff")
    return " ".join(f"{k}={m[k]:.4g}" for k in keys if k in m)


def arm_table(results: Sequence[Result], variants: Mapping | None = None) -> str:
    """Markdown: one row per functional cell, parity vs x86 fp32 and vs x86 same variant, accuracy on ARM and
    (from ``variants``, measured when the variant was built) on x86."""
    rows = ["| variant | runtime | profile | scenario | measured_on | verdict | vs x86 fp32 | vs x86 same variant | "
            "accuracy on ARM | accuracy on x86 | check s | reason |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        acc = " ".join(f"{k}={v:.4f}" for k, v in (r.parity.get("accuracy") or {}).items())
        v = (variants or {}).get(r.variant_id)
        x86 = " ".join(f"{k}={val:.4f}" for k, val in v.accuracy.items()) if v is not None and acc else ""
        same = r.parity.get("runtime") or r.parity.get("x86")  # on x86 ONNX Runtime, or (a .tflite) its own runtime
        rows.append(f"| {r.variant_id} | {r.runtime} | {r.profile} | {r.scenario} | {r.measured_on} | {r.verdict} | "
                    f"{_metric_text(r.parity.get('fp32'))} | {_metric_text(same)} | {acc} | {x86} | "
                    f"{r.measure_s:.1f} | {r.reason[:200]} |")
    return "\n".join(rows)

