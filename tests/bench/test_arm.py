"""The ARM functional check (bench/arm/functional.py): aarch64 runtimes under qemu-user, judged by parity floors.

Tests marked ``emulated`` need the environment of ``make arm-setup`` (``make test`` prepares it
through ``make arm-setup``); where it cannot be had they skip with the reason. The others use a stub
session and run everywhere.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from odbench.bench.arm import functional as arm
from odbench.bench.arm.env import ArmEnv, ArmEnvError, env_key, find_env
from odbench.bench.parity import write_reference
from odbench.compressors.litert_export import LiteRTExport, LiteRTExportConfig
from odbench.core.feeds import save_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Feeds, ParitySpec, Variant, sha256_file
from odbench.devices.catalog import get_profile
from odbench.runtimes.litert import ENVIRONMENT
from tests.conftest import make_tiny_onnx
from tests.helpers import cell
from tests.runtimes.test_executorch import small_onnx, small_task

pytestmark = pytest.mark.slow  # real models, subprocess matrices or long simulations: `pytest -m 'not slow'` skips them

WIDTH = 16


def _env_or_skip() -> ArmEnv:
    try:
        env = find_env()
    except ArmEnvError as exc:
        pytest.skip(f"no emulated aarch64 environment: {exc}")
    if "onnxruntime" not in env.site or "onnxruntime" in env.manifest.get("probe_failed", {}):
        pytest.skip("onnxruntime's aarch64 build is not runnable here: "
                    f"{env.missing.get('onnxruntime') or env.manifest.get('probe_failed')}")
    return env


@pytest.fixture
def arm_cell(tmp_path):
    """An rpi5 cell of a tiny fp32 model, with 4 real feeds and their x86 ONNX Runtime references."""
    model = make_tiny_onnx(tmp_path / "tiny" / "model.onnx", width=WIDTH, seed=3)
    rng = np.random.default_rng(5)
    feeds = [{"x": rng.standard_normal((3, WIDTH)).astype(np.float32)} for _ in range(4)]
    feeds_path = save_feeds(feeds, tmp_path / "feeds.npz")
    x86 = ort_run_fn(model)
    ref = write_reference(tmp_path / "ref.npz", [x86(f) for f in feeds], [x86(f) for f in feeds])
    spec = cell(model, feeds=Feeds(path=str(feeds_path)), profile=get_profile("rpi5"))
    par = ParitySpec(kind="values", reference=str(ref), reference_sha256=sha256_file(ref), n_feeds=4)
    return dataclasses.replace(spec, parity=par), feeds, x86


class Altered:
    """A session whose outputs differ from the real ones (as an ISA-specific kernel bug would): wraps ``inner``."""

    def __init__(self, inner, change):
        self.inner, self.change, self.info = inner, change, {"stub": True}

    def run(self, feed):
        return [self.change(o) for o in (self.inner.run(feed) if hasattr(self.inner, "run") else self.inner(feed))]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if hasattr(self.inner, "close"):
            self.inner.close()


def _fake_env(tmp_path) -> ArmEnv:
    return ArmEnv(path=tmp_path, key="stub", qemu="/nonexistent/qemu", root=tmp_path, site={"numpy": tmp_path, "onnxruntime": tmp_path},
                  missing={"openvino": "no aarch64 wheel installable for openvino==0 (test)"}, manifest={})


# ---------------------------------------------------------------- everywhere (stub sessions)
def test_outputs_that_differ_only_on_arm_fail_parity_in_the_arm_row(arm_cell, tmp_path):
    spec, _, x86 = arm_cell
    flip = lambda o: -o  # noqa: E731 - a sign error, as a wrong kernel gives
    r = arm.functional_cell(spec, env=_fake_env(tmp_path), session_factory=lambda *a, **k: Altered(x86, flip))
    assert r.verdict == "FAIL" and r.measured_on == arm.MEASURED_ON
    assert "on aarch64 onnxruntime" in r.reason and "vs the same variant on onnxruntime" in r.reason
    assert r.stats == {} and r.samples_ms == () and r.n_samples == 0  # no latency figures
    same = arm.functional_cell(spec, env=_fake_env(tmp_path), session_factory=lambda *a, **k: Altered(x86, lambda o: o))
    assert same.verdict == "OK" and same.parity["runtime"]["max_abs_diff"] == 0.0


@pytest.mark.parametrize("change, verdict", [(lambda o: o + 1e-4, "OK"), (lambda o: np.roll(o, 1, axis=-1), "FAIL")])
def test_the_runtime_floor_tolerates_rounding_not_a_shuffle(arm_cell, tmp_path, change, verdict):
    spec, _, x86 = arm_cell
    r = arm.functional_cell(spec, env=_fake_env(tmp_path), session_factory=lambda *a, **k: Altered(x86, change))
    assert r.verdict == verdict, r.reason


def test_skips_name_their_reason(arm_cell, tmp_path, monkeypatch):
    spec, _, _ = arm_cell
    env = _fake_env(tmp_path)
    assert "no aarch64 build of 'torch'" in arm.functional_cell(dataclasses.replace(spec, runtime="torch"), env=env).reason
    ov = arm.functional_cell(dataclasses.replace(spec, runtime="openvino"), env=env)
    assert ov.verdict == "SKIPPED" and "no aarch64 wheel installable for openvino" in ov.reason
    no_par = arm.functional_cell(dataclasses.replace(spec, parity=None), env=env)
    assert no_par.verdict == "SKIPPED" and "--no-parity" in no_par.reason
    x86 = arm.functional_cell(dataclasses.replace(spec, profile=get_profile("x86-laptop-avx2").model_dump(mode="json")), env=env)
    assert x86.verdict == "SKIPPED" and "covers aarch64 profiles" in x86.reason
    monkeypatch.setenv("ODBENCH_ARM_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("ODBENCH_ARM_ENV", raising=False)
    none = arm.functional_cell(spec)
    assert none.verdict == "SKIPPED" and "make arm-setup" in none.reason


def test_a_dead_emulated_session_is_an_error_not_a_crash(arm_cell, tmp_path):
    spec, _, _ = arm_cell

    def broken(*a, **k):
        raise arm.ArmWorkerError("the emulated session ended (exit -11): qemu: uncaught target signal 11")

    r = arm.functional_cell(spec, env=_fake_env(tmp_path), session_factory=broken)
    assert r.verdict == "ERROR" and "signal 11" in r.reason


def test_qemu_cpu_follows_the_profile():
    assert arm.qemu_cpu(get_profile("rpi5")) == ("cortex-a76", None)
    assert arm.qemu_cpu(get_profile("rpi4"))[0] == "cortex-a72"
    cpu, warning = arm.qemu_cpu(get_profile("graviton3"))
    assert cpu == "max" and "qemu models no" in warning


def test_the_environment_key_is_the_exact_versions():
    debs = [("libc6", "2.36-9", "libc6_2.36-9_arm64.deb")]
    wheels = {"onnxruntime": ("onnxruntime==1.32.0",)}
    key = env_key(debs, "qemu 7.2", wheels)
    assert key == env_key(list(debs), "qemu 7.2", dict(wheels))
    assert key != env_key([("libc6", "2.36-10", "libc6_2.36-10_arm64.deb")], "qemu 7.2", wheels)
    assert key != env_key(debs, "qemu 7.2", {"onnxruntime": ("onnxruntime==1.31.0",)})


def test_find_env_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.delenv("ODBENCH_ARM_ENV", raising=False)
    with pytest.raises(ArmEnvError, match="make arm-setup"):
        find_env(tmp_path)


# ---------------------------------------------------------------- under qemu
def test_arm_outputs_of_a_tiny_model_match_x86_fp32(arm_cell):
    env = _env_or_skip()
    spec, _, _ = arm_cell
    r = arm.functional_cell(spec, env=env)  # 4 feeds of 3 rows through the aarch64 build, vs x86 references
    assert (r.verdict, r.measured_on) == ("OK", arm.MEASURED_ON), r.reason
    assert r.parity["fp32"]["max_abs_diff"] <= 1e-5 and r.parity["runtime"]["max_abs_diff"] <= 1e-5
    assert r.runtime_info["machine"] == "aarch64" and r.runtime_info["qemu_cpu"] == "cortex-a76"
    assert r.stats == {} and r.n_samples == 0


def _u8s8_pair(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """An int8 variant (QuantizeLinear -> MatMulInteger, u8 x s8) and its exact fp32 root.

    Half of B's columns are 127 on every k: each adjacent pair of u8 x s8 products exceeds int16, which
    ONNX Runtime's AVX2 kernel (VPMADDUBSW, no VNNI) saturates; the other half have 0 on odd k, so no pair
    overflows. aarch64 (and AVX-512 VNNI) kernels accumulate in int32: exact (ONNX Runtime quantization
    docs, "reduce_range" and the saturation issue of U8S8 on x86-64 without VNNI)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = 64, 16
    b = np.full((k, n), 127, np.int8)
    b[1::2, n // 2:] = 0
    x_in = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])]
    y_out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])]
    scale, zero = numpy_helper.from_array(np.array(1 / 255, np.float32), "s"), numpy_helper.from_array(np.array(0, np.uint8), "z")
    int8 = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                              helper.make_node("MatMulInteger", ["xq", "B", "z"], ["acc"]),
                              helper.make_node("Cast", ["acc"], ["y"], to=TensorProto.FLOAT)],
                             "u8s8", x_in, y_out, initializer=[scale, zero, numpy_helper.from_array(b, "B")])
    fp32 = helper.make_graph([helper.make_node("Mul", ["x", "k255"], ["xs"]), helper.make_node("Round", ["xs"], ["xq"]),
                              helper.make_node("MatMul", ["xq", "B"], ["y"])], "exact", x_in, y_out,
                             initializer=[numpy_helper.from_array(np.array(255, np.float32), "k255"),
                                          numpy_helper.from_array(b.astype(np.float32), "B")])
    paths = []
    for name, graph in (("int8", int8), ("fp32", fp32)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths.append(tmp_path / f"{name}.onnx")
        onnx.save(model, str(paths[-1]))
    return paths[0], paths[1], b


def test_an_int8_kernel_that_differs_by_isa_is_caught_in_the_arm_row(tmp_path):
    env = _env_or_skip()
    int8, fp32, _ = _u8s8_pair(tmp_path)
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.uniform(0.6, 1.0, (3, 64)).astype(np.float32)} for _ in range(2)]
    root, variant = ort_run_fn(fp32), ort_run_fn(int8)
    ref = write_reference(tmp_path / "ref.npz", [root(f) for f in feeds], [variant(f) for f in feeds])
    x86_saturates = not np.array_equal(variant(feeds[0])[0], root(feeds[0])[0])
    spec = cell(int8, feeds=Feeds(path=str(save_feeds(feeds, tmp_path / "feeds.npz"))), profile=get_profile("rpi5"))
    spec = dataclasses.replace(spec, parity=ParitySpec(kind="values", reference=str(ref), reference_sha256=sha256_file(ref), n_feeds=2))
    r = arm.functional_cell(spec, env=env)
    assert r.parity["fp32"]["max_abs_diff"] == 0.0, r.reason  # aarch64 accumulates u8 x s8 exactly
    if x86_saturates:  # this host's ONNX Runtime takes the saturating AVX2 path: ARM outputs differ from x86's
        assert r.verdict == "FAIL" and "vs the same variant on onnxruntime: cosine" in r.reason
        assert "vs fp32" not in r.reason
    else:  # a VNNI (or ARM) host computes it exactly too: the ARM row agrees with it
        assert r.verdict == "OK", r.reason


def test_only_aarch64_cells_on_another_host_are_functional(arm_cell):
    spec, _, _ = arm_cell
    from odbench.devices.host import detect_host

    assert arm.is_functional(spec) == (detect_host().arch != "aarch64")
    assert not arm.is_functional(dataclasses.replace(spec, profile=get_profile("x86-laptop-avx2").model_dump(mode="json")))


def _host_python_env(tmp_path) -> ArmEnv:
    """The worker protocol without qemu: a 'qemu' that runs the guest command line on this host's Python."""
    import sys

    fake = tmp_path / "fake-qemu"
    fake.write_text(f'#!/bin/sh\nshift 5\nexec {sys.executable} "$@"\n')  # drops: -L ROOT -cpu CPU GUEST_PYTHON
    fake.chmod(0o755)
    import numpy
    import onnxruntime

    site = {"numpy": Path(numpy.__file__).parents[1], "onnxruntime": Path(onnxruntime.__file__).parents[1]}
    return ArmEnv(path=tmp_path, key="host", qemu=str(fake), root=tmp_path, site=site, missing={}, manifest={})


def test_the_worker_protocol_answers_each_feed_and_reports_errors(arm_cell, tmp_path):
    spec, feeds, x86 = arm_cell
    env = _host_python_env(tmp_path)
    with arm.ArmSession(env, "onnxruntime", spec.variant_path, threads=1) as s:
        assert s.info["runtime"] == "onnxruntime"
        np.testing.assert_array_equal(s.run(feeds[0])[0], x86(feeds[0])[0])
        with pytest.raises(arm.ArmWorkerError, match="x"):
            s.run({"x": np.ones((2, 3), np.float32)})  # wrong width: the guest's error, one line
        np.testing.assert_array_equal(s.run(feeds[1])[0], x86(feeds[1])[0])  # and the session goes on
    with pytest.raises(arm.ArmWorkerError, match="NoSuchFile|No such file|doesn't exist|Load model"):
        arm.ArmSession(env, "onnxruntime", str(tmp_path / "missing.onnx"))
    r = arm.functional_cell(spec, env=env)
    assert r.verdict == "OK" and r.parity["runtime"]["max_abs_diff"] == 0.0


def test_check_run_replaces_the_skipped_aarch64_rows(arm_cell, tmp_path):
    from odbench.bench.run_folder import RunFolder
    from odbench.devices.host import detect_host

    spec, _, _ = arm_cell
    store = RunFolder(tmp_path / "run")
    store.put_spec(spec)
    x86_spec = dataclasses.replace(spec, profile=get_profile("x86-laptop-avx2").model_dump(mode="json"))
    store.put_spec(x86_spec)
    results = arm.check_run(tmp_path / "run", env=_host_python_env(tmp_path), log=lambda m: None)
    if detect_host().arch == "aarch64":  # an ARM host runs its aarch64 cells for real
        assert results == []
        return
    assert [r.cell_id for r in results] == [spec.cell_id]
    assert store.get(spec.cell_id).measured_on == arm.MEASURED_ON and store.get(spec.cell_id).verdict == "OK"
    assert not store.done(x86_spec.cell_id)
    assert "| functional-emulation | OK |" in arm.arm_table(results)


def test_a_silent_guest_times_out_and_is_killed(tmp_path, monkeypatch):
    fake = tmp_path / "silent-qemu"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(arm, "START_TIMEOUT_S", 0.5)
    env = dataclasses.replace(_host_python_env(tmp_path), qemu=str(fake))
    with pytest.raises(arm.ArmWorkerError, match="no answer within 0.5s"):
        arm.ArmSession(env, "onnxruntime", "model.onnx")


# ---------------------------------------------------------------- mobile runtimes (LiteRT under qemu; ExecuTorch refused)
def _fp32_only(spec, feeds, x86, tmp_path):
    """The cell as a .tflite's: references hold the fp32 root only (ONNX Runtime cannot run the file)."""
    ref = write_reference(tmp_path / "ref-fp32.npz", [x86(f) for f in feeds], [])
    par = ParitySpec(kind="values", reference=str(ref), reference_sha256=sha256_file(ref), n_feeds=len(feeds))
    return dataclasses.replace(spec, runtime="litert", parity=par, profile=get_profile("phone-big-little").model_dump(mode="json"))


def _litert_env(tmp_path) -> ArmEnv:
    return dataclasses.replace(_fake_env(tmp_path), site={"numpy": tmp_path, "litert": tmp_path})


@pytest.mark.parametrize("change, verdict", [(lambda o: o, "OK"), (lambda o: -o, "FAIL")])
def test_a_file_onnx_runtime_cannot_run_is_compared_with_its_runtimes_x86_build(arm_cell, tmp_path, monkeypatch, change, verdict):
    spec, feeds, x86 = arm_cell
    spec = _fp32_only(spec, feeds, x86, tmp_path)
    seen = []
    monkeypatch.setattr(arm, "x86_outputs", lambda s, f, threads: seen.append(s.runtime) or [x86(g) for g in f])
    r = arm.functional_cell(spec, env=_litert_env(tmp_path), session_factory=lambda *a, **k: Altered(x86, change))
    assert seen == ["litert"] and "runtime" not in r.parity and r.verdict == verdict, r.reason
    assert r.parity["x86"]["max_abs_diff"] == (0.0 if verdict == "OK" else r.parity["x86"]["max_abs_diff"])
    if verdict == "FAIL":
        assert "vs the same file on the runtime's x86 build" in r.reason


def test_without_the_x86_build_the_arm_row_says_so_and_is_judged_against_fp32(arm_cell, tmp_path, monkeypatch):
    spec, feeds, x86 = arm_cell
    spec = _fp32_only(spec, feeds, x86, tmp_path)

    def missing(*a):
        raise RuntimeError("the litert environment is not built: run odbench env setup litert")

    monkeypatch.setattr(arm, "x86_outputs", missing)
    r = arm.functional_cell(spec, env=_litert_env(tmp_path), session_factory=lambda *a, **k: Altered(x86, lambda o: o))
    assert r.verdict == "OK" and "x86" not in r.parity and r.parity["fp32"]["max_abs_diff"] == 0.0
    assert any("odbench env setup litert" in w for w in r.warnings)


def test_executorch_has_no_arm_build_here_and_the_row_says_why(arm_cell, tmp_path):
    spec, feeds, x86 = arm_cell
    spec = dataclasses.replace(_fp32_only(spec, feeds, x86, tmp_path), runtime="executorch")
    r = arm.functional_cell(spec, env=_litert_env(tmp_path))
    assert r.verdict == "SKIPPED" and "CUDA build" in r.reason and "run it on the device" in r.reason


def test_litert_under_qemu_matches_its_x86_build(tmp_path):
    """A .tflite converted in the litert environment, run by the aarch64 interpreter under qemu: the same outputs
    as the x86 interpreter's (fp32: to float rounding) and the fp32 ONNX's."""
    env = _env_or_skip()
    if "litert" not in env.site or "litert" in env.manifest.get("probe_failed", {}):
        pytest.skip(f"LiteRT's aarch64 build is not runnable here: {env.missing.get('litert') or env.manifest.get('probe_failed')}")
    ready, why = ENVIRONMENT.status()
    if not ready:
        pytest.skip(why)
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.standard_normal((4, 16)).astype(np.float32)} for _ in range(4)]
    onnx_path = small_onnx(tmp_path / "fp32" / "model.onnx")
    root = Variant(id="small/fp32", model="small", path=str(onnx_path), sha256=sha256_file(onnx_path),
                   size_bytes=onnx_path.stat().st_size, scenarios=("synthetic",))
    v = LiteRTExport().compress(root, small_task(feeds), LiteRTExportConfig(quant="fp32", calibration_samples=4), tmp_path / "variants")
    x86 = ort_run_fn(onnx_path)
    ref = write_reference(tmp_path / "ref.npz", [x86(f) for f in feeds], [])
    spec = cell(onnx_path, feeds=Feeds(path=str(save_feeds(feeds, tmp_path / "feeds.npz"))), profile=get_profile("phone-big-little"))
    spec = dataclasses.replace(spec, runtime="litert", variant_path=v.path,
                               parity=ParitySpec(kind="values", reference=str(ref), reference_sha256=sha256_file(ref), n_feeds=4))
    r = arm.functional_cell(spec, env=env)
    assert r.verdict == "OK", r.reason
    assert r.runtime_info["machine"] == "aarch64" and "XNNPACK" in r.runtime_info["providers"]
    assert r.parity["x86"]["max_abs_diff"] < 1e-5 and r.parity["fp32"]["max_abs_diff"] < 1e-4
