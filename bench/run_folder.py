"""One typed reader/writer for a run folder; every other module reads and writes a run through it.

Layout (docs/results-layout.md has the full description)::

    <run>/cells/<cell_id>.json          one Result each (schema-versioned), samples left out
    <run>/cells/<cell_id>.samples.npz   each process's samples, in order (p0, p1, ...; float32 ms)
    <run>/parts/<cell_id>/<k>.json      process k of a cell not merged yet (interleaved runs)
    <run>/specs/<cell_id>.json          the CellSpec that produced it (lets the gate add processes)
    <run>/variants.json                 the variants its cells measured, and each recipe step that built nothing (built: false)
    <run>/machine.json                  the host the run was made on
    <run>/run.json                      how it was made: preset, timing, argv, odbench version and git commit
    <run>/accuracy.json                 each timed (variant, runtime)'s own accuracy (verdicts/accuracy.py)
    <run>/table.md, table.csv, gate.*   outputs, regenerated from the above

Paths inside specs are stored relative to the run folder and absolute (``_paths``), so a run folder
reads the same wherever the checkout, the cache or the folder itself is moved. Specs written before
that (relative to the checkout they were made in) are found by looking in the run folder's ancestors.

A cell file that cannot be read is never dropped: ``results()`` returns it as an ERROR Result whose
reason names the file and the parse error (``is_unreadable``), with its identity from its spec.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from odbench.core.not_built import NotBuilt, split_variants_json
from odbench.core.records import CellSpec, Result, Variant, Verdict, atomic_write_bytes, atomic_write_text, to_json

CELLS, PARTS, SPECS = "cells", "parts", "specs"
VARIANTS_FILE, MACHINE_FILE, RUN_FILE, ACCURACY_FILE = "variants.json", "machine.json", "run.json", "accuracy.json"
UNREADABLE = "unreadable_file"  # key in an ERROR entry's ``exit``: the file that could not be read
READ_ERRORS = (ValueError, TypeError, KeyError, OSError, AttributeError, EOFError)  # JSONDecodeError is a ValueError


class RunFolderError(ValueError):
    """A path is not a usable run folder; the message says which and what is missing."""


def odbench_build() -> dict[str, Any]:
    """The odbench version and, for a git checkout, its commit and whether it had local changes
    (what pyperf's metadata and pytest-benchmark's ``commit_info`` record)."""
    try:
        ver = version("odbench")
    except PackageNotFoundError:
        ver = "unknown"
    info: dict[str, Any] = {"version": ver, "git_commit": None, "git_dirty": None}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            info["git_commit"] = commit.stdout.strip()
            dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10)
            info["git_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def is_unreadable(r: Result) -> bool:
    """An ERROR entry that stands for a cell file that could not be read."""
    return bool(r.exit.get(UNREADABLE))


def _with_paths(spec: CellSpec, fix) -> CellSpec:
    feeds = dataclasses.replace(spec.feeds, path=fix(spec.feeds.path) if spec.feeds.path else None)
    parity = spec.parity
    if parity and parity.reference:
        parity = dataclasses.replace(parity, reference=fix(parity.reference))
    return dataclasses.replace(spec, variant_path=fix(spec.variant_path), feeds=feeds, parity=parity)


class RunFolder:
    """A run folder: its cells (+ samples), parts, specs, variants, machine, run record and accuracy."""

    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        self.cells = self.root / CELLS
        if create:
            if self.root.exists() and not self.root.is_dir():
                raise RunFolderError(f"{self.root} is a file, not a run folder")
            self.cells.mkdir(parents=True, exist_ok=True)

    @classmethod
    def open(cls, root: str | Path) -> "RunFolder":
        """An existing run folder (read it; nothing is created); RunFolderError says what is missing."""
        root = Path(root)
        if not root.is_dir():
            raise RunFolderError(f"{root} is not a run folder (no such folder); run `odbench run --out {root}` first")
        if not (root / CELLS).is_dir():
            raise RunFolderError(f"{root} is not a run folder (no cells/); run `odbench run --out {root}` first")
        return cls(root, create=False)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # ------------------------------------------------------------------ cells
    def path_for(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.json"

    def samples_path(self, cell_id: str) -> Path:
        return self.cells / f"{cell_id}.samples.npz"

    def cell_ids(self) -> list[str]:
        return sorted(p.name[: -len(".json")] for p in self.cells.glob("*.json"))

    def done(self, cell_id: str) -> bool:
        """The cell has a result that reads; an unreadable one is not done (resume redoes it)."""
        path = self.path_for(cell_id)
        if not path.exists():
            return False
        try:
            self._read(path)
        except READ_ERRORS:
            return False
        return True

    def unreadable_error(self, cell_id: str) -> str | None:
        """Why the cell's stored result cannot be read, None when it reads or is absent."""
        path = self.path_for(cell_id)
        if not path.exists():
            return None
        try:
            self._read(path)
        except READ_ERRORS as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def put(self, result: Result) -> Path:
        """Samples first, then the summary: a summary on disk always has its samples."""
        if result.processes:
            buf = io.BytesIO()
            np.savez_compressed(buf, **{f"p{i}": np.asarray(p.samples_ms, dtype=np.float32) for i, p in enumerate(result.processes)})
            atomic_write_bytes(self.samples_path(result.cell_id), buf.getvalue())
        summary = result.replace(processes=tuple(dataclasses.replace(p, samples_ms=()) for p in result.processes))
        path = self.path_for(result.cell_id)
        atomic_write_text(path, to_json(summary))
        return path

    def get(self, cell_id: str) -> Result:
        """The cell's Result; raises (FileNotFoundError, ValueError, ...) when it is absent or unreadable."""
        return self._read(self.path_for(cell_id))

    def read(self, cell_id: str) -> Result:
        """The cell's Result, or an ERROR entry naming the file and the parse error."""
        path = self.path_for(cell_id)
        try:
            return self._read(path)
        except READ_ERRORS as exc:
            return self._unreadable_entry(cell_id, path, exc)

    def _read(self, path: Path) -> Result:
        result = Result.from_dict(json.loads(path.read_text()))
        samples = path.with_name(path.name[: -len(".json")] + ".samples.npz")
        if result.processes and samples.exists():
            with np.load(samples) as z:
                procs = tuple(dataclasses.replace(p, samples_ms=tuple(float(v) for v in z[f"p{i}"].astype(np.float64).round(6)))
                              for i, p in enumerate(result.processes))
            result = result.replace(processes=procs)
        return result

    def _unreadable_entry(self, cell_id: str, path: Path, exc: BaseException) -> Result:
        where = os.path.relpath(path, self.root.parent) if self.root.parent != Path("") else str(path)
        reason = f"unreadable result {where}: {type(exc).__name__}: {str(exc)[:300]}"
        mark = {UNREADABLE: str(path), "error": f"{type(exc).__name__}: {exc}"}
        try:
            return Result.for_cell(self.get_spec(cell_id), Verdict.ERROR, reason, exit=mark)
        except READ_ERRORS:  # no spec either: the identity the cell id carries
            parts = cell_id.split("__")
            variant, runtime, profile, scenario = (parts + ["?"] * 4)[:4] if len(parts) >= 4 else (cell_id, "?", "?", "?")
            return Result(cell_id=cell_id, model=variant.split(".")[0] if "/" not in variant else variant.split("/")[0],
                          variant_id=variant, runtime=runtime.split("-")[0], profile=profile, measured_on="device",
                          scenario=scenario, verdict=Verdict.ERROR, reason=reason + " (no readable spec either)", exit=mark)

    def results(self) -> list[Result]:
        """Every cell, in cell-id order; an unreadable file is an ERROR entry (``is_unreadable``)."""
        return [self.read(cid) for cid in self.cell_ids()]

    def all(self) -> list[Result]:  # the name the executors and older callers use
        return self.results()

    def unreadable(self) -> list[Result]:
        return [r for r in self.results() if is_unreadable(r)]

    def set_aside(self, cell_id: str) -> Path | None:
        """Move an unreadable cell file out of the way (kept as ``<id>.json.unreadable`` for a look), so the
        cell can be redone; returns where it went."""
        path = self.path_for(cell_id)
        if not path.exists():
            return None
        dest = path.with_name(path.name + ".unreadable")
        os.replace(path, dest)
        return dest

    # ------------------------------------------------------------------ parts
    def part_path(self, cell_id: str, k: int) -> Path:
        return self.root / PARTS / cell_id / f"{k}.json"

    def put_part(self, result: Result, k: int) -> None:
        atomic_write_text(self.part_path(result.cell_id, k), to_json(result))

    def read_part(self, cell_id: str, k: int) -> tuple[Result | None, str]:
        """(process k's Result, "") or (None, why not: absent, or the parse error)."""
        path = self.part_path(cell_id, k)
        if not path.exists():
            return None, "absent"
        try:
            return Result.from_dict(json.loads(path.read_text())), ""
        except READ_ERRORS as exc:
            return None, f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"

    def get_part(self, cell_id: str, k: int) -> Result | None:
        return self.read_part(cell_id, k)[0]

    def drop_parts(self, cell_id: str) -> None:
        shutil.rmtree(self.root / PARTS / cell_id, ignore_errors=True)

    # ------------------------------------------------------------------ specs
    def _relative(self, path: str) -> str:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))

    def _resolve(self, path: str, absolute: str | None, legacy: bool) -> str:
        if not path or Path(path).is_absolute():
            return path
        if not legacy:
            here = os.path.normpath(os.path.join(os.path.abspath(self.root), path))
            if os.path.exists(here) or not absolute or not os.path.exists(absolute):
                return here
            return absolute
        # A spec from before run-relative paths: relative to the checkout it was made in, an ancestor.
        for base in [self.root.resolve(), *self.root.resolve().parents]:
            if (base / path).exists():
                return str(base / path)
        return os.path.abspath(path)

    def put_spec(self, spec: CellSpec) -> None:
        data = json.loads(to_json(_with_paths(spec, self._relative)))
        absolute = _with_paths(spec, os.path.abspath)
        data["_paths"] = {"relative_to": "run folder",
                          "variant_path": absolute.variant_path, "feeds": absolute.feeds.path,
                          "parity_reference": absolute.parity.reference if absolute.parity else None}
        atomic_write_text(self.root / SPECS / f"{spec.cell_id}.json", json.dumps(data, indent=1))

    def get_spec(self, cell_id: str) -> CellSpec:
        path = self.root / SPECS / f"{cell_id}.json"
        if not path.exists():
            raise FileNotFoundError(f"no cell spec stored for {cell_id} in {self.root}")
        return self._spec_from(json.loads(path.read_text()))

    def _spec_from(self, data: dict) -> CellSpec:
        paths = data.pop("_paths", None) or {}
        legacy = not paths
        spec = CellSpec.from_dict(data)
        absolute = {"variant": paths.get("variant_path"), "feeds": paths.get("feeds"), "ref": paths.get("parity_reference")}
        feeds = dataclasses.replace(spec.feeds, path=self._resolve(spec.feeds.path, absolute["feeds"], legacy)
                                    if spec.feeds.path else None)
        parity = spec.parity
        if parity and parity.reference:
            parity = dataclasses.replace(parity, reference=self._resolve(parity.reference, absolute["ref"], legacy))
        return dataclasses.replace(spec, variant_path=self._resolve(spec.variant_path, absolute["variant"], legacy),
                                   feeds=feeds, parity=parity)

    def specs(self) -> dict[str, CellSpec]:
        """Every readable spec by cell id (an unreadable one is left out: its cell still reads, or is an ERROR entry)."""
        out = {}
        for path in sorted((self.root / SPECS).glob("*.json")):
            try:
                out[path.stem] = self._spec_from(json.loads(path.read_text()))
            except READ_ERRORS:
                continue
        return out

    def profiles(self) -> dict[str, dict]:
        """Profile name -> the profile its cells ran with (from the specs)."""
        out: dict[str, dict] = {}
        for path in sorted((self.root / SPECS).glob("*.json")):
            try:
                profile = json.loads(path.read_text()).get("profile") or {}
            except (ValueError, AttributeError, OSError):
                continue
            if profile.get("name"):
                out.setdefault(profile["name"], profile)
        return out

    # ------------------------------------------------------------------ the run's records
    def _json(self, name: str, default: Any) -> Any:
        path = self.root / name
        if not path.exists():
            return default
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise RunFolderError(f"{path}: not valid JSON ({exc})") from None

    def variants(self) -> dict[str, Variant]:
        """The built variants (variants.json's ``built: false`` entries are left out, unparsed: ``not_built``)."""
        return {d["id"]: Variant.from_dict(d) for d in split_variants_json(self._json(VARIANTS_FILE, []))[0]}

    def not_built(self) -> dict[str, NotBuilt]:
        """The recipe steps that built nothing, each with its reason (core/not_built.py)."""
        return {nb.id: nb for nb in map(NotBuilt.from_dict, split_variants_json(self._json(VARIANTS_FILE, []))[1])}

    def put_variants(self, variants: dict[str, Variant], not_built: dict[str, NotBuilt] | None = None) -> None:
        """The variants, and the not-built records (kept as they are when ``not_built`` is None)."""
        keep = self.not_built() if not_built is None else not_built
        self.write_json(VARIANTS_FILE, [json.loads(to_json(v)) for v in [*variants.values(), *keep.values()]])

    def machine(self) -> dict:
        """machine.json ({} when there is none)."""
        return self._json(MACHINE_FILE, {})

    def has_machine(self) -> bool:
        return (self.root / MACHINE_FILE).exists()

    def put_machine(self, machine: dict) -> None:
        self.write_json(MACHINE_FILE, machine)

    def run_info(self) -> dict:
        """run.json ({} when there is none): how the run was made, with the odbench build that made it."""
        return self._json(RUN_FILE, {})

    def put_run_info(self, info: dict) -> None:
        """Merged into run.json; the odbench version and git commit are recorded with it."""
        self.write_json(RUN_FILE, {**self.run_info(), **info, "odbench": odbench_build()})

    def accuracy_body(self) -> dict | None:
        """accuracy.json as stored (verdicts/accuracy.py parses it), None when the run has none."""
        return self._json(ACCURACY_FILE, None)

    def put_accuracy_body(self, body: dict) -> None:
        self.write_json(ACCURACY_FILE, body)

    def write_json(self, name: str, data: object) -> Path:
        path = self.root / name
        atomic_write_text(path, json.dumps(data, indent=1, default=str))
        return path

    def write_text(self, name: str, text: str) -> Path:
        path = self.root / name
        atomic_write_text(path, text)
        return path


def load_variants(run_dir: str | Path) -> dict[str, Variant]:
    """A run folder's variants ({} for a folder without variants.json)."""
    return RunFolder(run_dir, create=False).variants()


def load_not_built(run_dir: str | Path) -> dict[str, NotBuilt]:
    """A run folder's recipe steps that built nothing ({} when every step built)."""
    return RunFolder(run_dir, create=False).not_built()
