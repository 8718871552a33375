"""Several run folders, each measured on its own machine: load them and group their results by machine.

A run folder holds ``cells/`` (one Result per cell), ``variants.json`` and ``machine.json`` (the
host it ran on, bench/provenance.py: ``machine``). Results are grouped by the machine they were
measured on -- CPU model, arch, ISA features, cores, memory -- and statistics are never pooled
across machines: the same cell measured on two machines is two rows. Folders from the same machine
are merged (a cell measured in both keeps the later result). A cell that a Dask worker ran belongs
to the worker's machine (its ``provenance.worker_machine``), not to the controller's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from odbench.bench.run_folder import RunFolder, RunFolderError
from odbench.core.records import Result, Variant
from odbench.devices.check import missing_isa
from odbench.devices.profile import DeviceProfile

# ISA features that name a machine's class in its label, best first
_ISA_LABELS = (("amx_int8", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512_vnni", "AVX-512 VNNI"), ("avx512f", "AVX-512"),
               ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"), ("sve", "SVE"), ("i8mm", "i8mm"), ("asimddp", "dotprod"), ("asimd", "NEON"))


RunError = RunFolderError  # a path is not a readable run folder; the message says which and why


@dataclass(frozen=True)
class Machine:
    """The hardware a result was measured on, as its machine.json tells (identity: all but hostname)."""

    cpu_model: str
    arch: str
    isa: tuple[str, ...]
    cores: int
    memory_mb: int
    hostname: str = ""
    unknown_from: str = ""  # no machine.json: the folder stands for its own unknown machine

    @classmethod
    def from_json(cls, data: dict, where: str = "") -> "Machine":
        if not data:
            return cls("unknown", "", (), 0, 0, unknown_from=where)
        return cls(cpu_model=str(data.get("cpu_model") or "unknown"), arch=str(data.get("arch") or ""),
                   isa=tuple(sorted(data.get("isa") or ())), cores=int(data.get("physical_cores") or data.get("cores") or 0),
                   memory_mb=int(data.get("memory_mb") or 0), hostname=str(data.get("hostname") or ""))

    @property
    def key(self) -> tuple:
        # memory in whole GiB: the same machine type reports a few MB more or less from boot to boot
        return (self.cpu_model, self.arch, self.isa, self.cores, round(self.memory_mb / 1024), self.unknown_from)

    @property
    def isa_class(self) -> str:
        return next((label for flag, label in _ISA_LABELS if flag in self.isa), self.arch or "?")

    @property
    def label(self) -> str:
        if self.unknown_from:
            return f"unknown machine ({self.unknown_from}: no machine.json)"
        return f"{self.cpu_model} ({self.isa_class}, {self.cores} cores, {round(self.memory_mb / 1024)} GiB)"

    def lacks(self, profile: dict) -> list[str]:
        """What a profile asks for beyond this machine (ISA features, cores, memory): a result emulating
        it here is above the machine's capability and never used for selection."""
        if not profile or self.unknown_from:
            return []
        p = DeviceProfile.model_validate(profile)
        out = []
        if p.arch != self.arch:
            out.append(f"arch {p.arch}")
        elif self.isa:  # machine.json lists the inference-relevant flags (devices.host.INTERESTING_ISA)
            out += [f for f in missing_isa(p, set(self.isa) | {"sse4_1"}) if f != "sse4_1"]
        if self.cores and p.cores > self.cores:
            out.append(f"cores ({p.cores} > {self.cores})")
        if self.memory_mb and p.memory_mb > self.memory_mb:
            out.append(f"memory ({p.memory_mb} > {self.memory_mb} MB)")
        return out


@dataclass(frozen=True)
class Run:
    path: Path
    machine: Machine
    results: tuple[Result, ...]
    variants: dict[str, Variant]
    profiles: dict[str, dict]  # profile name -> the profile its cells ran with (specs/)


@dataclass(frozen=True)
class MachineRuns:
    """Everything measured on one machine: the results of its folders, merged by cell, and their variants."""

    machine: Machine
    paths: tuple[Path, ...]
    results: tuple[Result, ...]
    variants: dict[str, Variant]
    profiles: dict[str, dict]


def load_run(path: str | Path) -> Run:
    folder = RunFolder.open(path)
    return Run(folder.root, Machine.from_json(folder.machine(), folder.root.name), tuple(folder.results()), folder.variants(),
               folder.profiles())


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Each folder's results, variants and machine.json, in the order given."""
    if not paths:
        raise RunError("no run folder given")
    return [load_run(p) for p in paths]


def machine_of(result: Result, run: Run) -> Machine:
    """The machine a result was measured on: a Dask worker's own, else the run folder's."""
    worker = (result.provenance or {}).get("worker_machine")
    return Machine.from_json(worker) if worker else run.machine


def by_machine(runs: Sequence[Run]) -> list[MachineRuns]:
    """Results grouped by machine, in the order machines first appear; never pooled across machines."""
    groups: dict[tuple, dict] = {}
    for run in runs:
        for r in run.results:
            m = machine_of(r, run)
            g = groups.setdefault(m.key, {"machine": m, "paths": [], "results": {}, "variants": {}, "profiles": {}})
            if run.path not in g["paths"]:
                g["paths"].append(run.path)
            g["results"][r.cell_id] = r  # a later folder's measurement of the same cell wins
            g["variants"].update(run.variants)
            g["profiles"].update(run.profiles)
    return [MachineRuns(g["machine"], tuple(g["paths"]), tuple(g["results"].values()), g["variants"], g["profiles"])
            for g in groups.values()]


def gate_inputs(paths: Sequence[str | Path]) -> Iterator[tuple[Machine, list[Result], dict[str, Variant]]]:
    """For `odbench gate RUN1 RUN2 ...`: per folder (and, in a Dask run, per worker machine), its machine,
    results and variants, so that each cell is judged against its own machine's data only."""
    for run in load_runs(paths):
        for group in by_machine([run]):
            yield group.machine, list(group.results), group.variants


def distinct_labels(machines: Sequence[Machine]) -> dict[tuple, str]:
    """machine key -> a label no other machine shares (hostnames added, then numbers, where labels collide)."""
    labels = {m.key: m.label for m in machines}
    for m in machines:
        if sum(lbl == labels[m.key] for lbl in labels.values()) > 1 and m.hostname:
            labels[m.key] = f"{m.label} [{m.hostname}]"
    seen: dict[str, int] = {}
    for key, lbl in list(labels.items()):
        seen[lbl] = seen.get(lbl, 0) + 1
        if seen[lbl] > 1:
            labels[key] = f"{lbl} #{seen[lbl]}"
    return labels

