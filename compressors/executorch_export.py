"""Export a zoo model's torch module to an ExecuTorch ``.pte`` on XNNPACK: fp32, int8 dynamic, int8 static.

The main environment traces the module with ``torch.export`` (dynamic dims from the fp32 ONNX's
symbolic dims: batch, seq) and saves the program; the executorch environment (core/envs.py) quantizes
it with PT2E + XNNPACKQuantizer (static: calibrated on the tuning split's feeds, ``task.calibration_feeds``)
and lowers it (compressors/_executorch_worker.py). The variant records lineage (parent: the fp32 ONNX),
size, the host ISA it was exported on, the tuning data, the delegation (ops on XNNPACK / left on the
portable kernels) and the toolchain; its cache key covers every export setting and the environment's lock.

A user's ONNX file has no torch module: no route to ``.pte`` (CompressionError with that reason).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from odbench.compressors.base import CompressionError, config_dict, output
from odbench.core.envs import EnvSpec, process_command
from odbench.core.onnx_tools import onnx_signature
from odbench.core.records import Variant, sha256_file
from odbench.devices.host import detect_host
from odbench.runtimes.executorch import ENVIRONMENT, NO_ROUTE

CODE_VERSION = 2  # 2: a text model's dims bounded by its max_len and offline batch (the .pte's planned memory)
WORKER = "odbench.compressors._executorch_worker"
DIM_MAX = {"seq": 512}  # MiniLM's position table; any other symbolic dim (batch) up to 4096
EXPORT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ExecuTorchExportConfig:
    quant: Literal["fp32", "int8-dynamic", "int8-static"] = "fp32"
    per_channel: bool = True  # XNNPACK's symmetric int8 weights, one scale per output channel
    calibration_samples: int = 32  # int8-static: tuning-split feeds the observers see
    toolchain: str = ""  # the executorch environment's lock hash (filled in: part of the cache key)


def dim_limits(task) -> dict[str, int]:
    """Upper bounds of the dynamic dims. ExecuTorch plans memory for the bounds: MiniLM at batch 4096 x seq 512
    fails to load (std::bad_alloc), so a text model's are its tokenizer's ``max_len`` and its largest batch
    (the offline scenario's; evaluation embeds one text at a time or in batches of 32)."""
    config = getattr(getattr(task, "model", None), "config", None)
    limits = {"seq": int(config.max_len)} if getattr(config, "max_len", None) else {}
    if limits and getattr(config, "offline_batch", None):
        limits["batch"] = int(config.offline_batch)
    return limits


def dynamic_dims(inputs, limits: dict[str, int] | None = None) -> dict[str, dict[str, tuple[str, int]]]:
    """{input: {axis: (dim name, max)}} for every symbolic dim of the ONNX signature."""
    top = {**DIM_MAX, **(limits or {})}
    return {t.name: {str(a): (str(d), top.get(str(d), 4096)) for a, d in enumerate(t.shape) if isinstance(d, str)}
            for t in inputs if any(isinstance(d, str) for d in t.shape)}


def example_feed(feeds: list[dict[str, np.ndarray]], dims: dict) -> dict[str, np.ndarray]:
    """The largest calibration feed, with every dynamic dim of size 1 repeated to 2 (torch.export
    specializes size-1 dims to constants)."""
    feed = dict(max(feeds, key=lambda f: sum(v.size for v in f.values())))
    for name, axes in dims.items():
        for axis in axes:
            if feed[name].shape[int(axis)] == 1:
                feed[name] = np.repeat(feed[name], 2, axis=int(axis))
    return feed


def _save_feeds(path: Path, names: list[str], example: dict, calib: list[dict]) -> None:
    arrays = {f"example/{n}": np.ascontiguousarray(example[n]) for n in names}
    arrays.update({f"calib/{i}/{n}": np.ascontiguousarray(f[n]) for i, f in enumerate(calib) for n in names})
    np.savez(path, **arrays)


def export_program(module, names: list[str], example: dict, dims: dict, path: Path) -> None:
    import torch

    made: dict[str, Any] = {}
    shapes = tuple({int(a): made.setdefault(d, torch.export.Dim(d, max=top)) for a, (d, top) in dims.get(n, {}).items()} or None
                   for n in names)
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in names)
    with torch.no_grad():
        ep = torch.export.export(module.eval(), args, dynamic_shapes=shapes if dims else None)
    torch.export.save(ep, str(path))


def run_worker(env: EnvSpec, job: dict, work: Path, worker: str = WORKER) -> dict:
    job_path = work / "job.json"
    job_path.write_text(json.dumps(job))
    argv, extra = process_command(worker, [str(job_path)], env)
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **extra}, timeout=EXPORT_TIMEOUT_S)
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-3:]
        raise CompressionError(f"export failed in environment {env.name!r}: {' | '.join(tail)}"[:800])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_module(task):
    model, cache = getattr(task, "model", None), getattr(task, "cache", None)
    if model is None or not hasattr(model, "load_torch"):
        raise CompressionError(NO_ROUTE + ": a user's ONNX file has no torch module to export")
    return model.load_torch(cache)


class ExecuTorchExport:
    name = "executorch-export"
    Config = ExecuTorchExportConfig
    environment = ENVIRONMENT
    suffix = "et"
    worker = WORKER
    fmt, filename, runtime = "pte", "model.pte", "executorch"
    describe = "ExecuTorch .pte ({quant}) lowered with the XNNPACK partitioner"
    code_version = CODE_VERSION
    dynamic = True  # the converter keeps the ONNX's symbolic dims dynamic

    def compress(self, variant: Variant, task, config: ExecuTorchExportConfig, out_dir: Path) -> Variant:
        env = self.environment
        ok, why = env.status()
        if not ok:
            raise CompressionError(why)
        config = replace(config, toolchain=env.lock_hash())
        name, folder, hit = output(variant, f"{self.suffix}-{config.quant}", self.name, config, self.code_version, out_dir)
        if hit is not None:
            return hit
        module = torch_module(task)
        inputs, outputs = onnx_signature(variant.path)
        names, dims = [t.name for t in inputs], dynamic_dims(inputs, dim_limits(task))
        example, calib, fixed = self.prepare_feeds(task, inputs, dims, task.calibration_feeds(config.calibration_samples))
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="et-export-") as tmp:
            work = Path(tmp)
            export_program(module, names, example, dims if self.dynamic else {}, work / "program.pt2")
            _save_feeds(work / "feeds.npz", names, example, calib)
            job = {"program": str(work / "program.pt2"), "feeds": str(work / "feeds.npz"), "out": str(folder),
                   "quant": config.quant, "per_channel": config.per_channel, "dynamic": dims if self.dynamic else {}, **fixed,
                   "inputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in inputs],
                   "outputs": [{"name": t.name, "dtype": t.dtype, "shape": list(t.shape)} for t in outputs]}
            try:
                record = run_worker(env, job, work, self.worker)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return self._variant(variant, task, config, folder, name, record)

    def prepare_feeds(self, task, inputs, dims: dict, calib: list[dict]) -> tuple[dict, list[dict], dict]:
        """The example the program is traced with, the calibration feeds and what the job adds (nothing here:
        the dims stay dynamic)."""
        return example_feed(calib, dims), calib, {}

    def pad_note(self, signature: dict) -> str:
        return ""

    def _variant(self, parent: Variant, task, config, folder: Path, name: str, record: dict) -> Variant:
        path = folder / self.filename
        signature = json.loads((folder / "signature.json").read_text())
        tuned_on = task.tuned_on() if hasattr(task, "tuned_on") else None
        notes = [self.describe.format(quant=config.quant)]
        if signature.get("static_shapes"):
            notes.append(f"fixed input shapes {signature['static_shapes']} (the headline scenario's slate); the session "
                         f"runs other batches in slates of that size, padded{self.pad_note(signature)}")
        if record.get("non_delegated"):
            notes.append(f"ops left on portable kernels (not XNNPACK): {record['non_delegated']}")
        v = Variant(id=f"{parent.model}/{name}", model=parent.model, path=str(path.resolve()), sha256=sha256_file(path),
                    size_bytes=path.stat().st_size, parent=parent.id, compressor=self.name,
                    config={**config_dict(config), "format": self.fmt, "runtime": self.runtime, "delegation": record,
                            "export_isa": list(detect_host().isa), "versions": signature.get("versions", {}),
                            "weight_bits": 8 if config.quant != "fp32" else None,
                            **({"tuned_on": tuned_on} if tuned_on and config.quant in ("int8-static", "int8-full") else {})},
                    scenarios=parent.scenarios, notes=tuple(notes))
        v.save(folder / "variant.json")
        return v
