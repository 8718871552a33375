"""Resume: before a run folder's planned cells are executed, every cell whose result is missing or
cannot be read is put right from what the folder holds, and each one says what was done.

- its ``parts/`` are intact and complete (every process stored, or one that could not measure): the
  cell is rebuilt from them, without running anything (a harness killed between storing the last
  process and the merged cell leaves exactly this);
- else an unreadable result file is set aside (``cells/<id>.json.unreadable``, kept for a look) and
  the cell is rerun: the local executor reruns only the processes whose part is absent or unreadable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from odbench.bench.executors.local import merge_processes
from odbench.bench.run_folder import RunFolder
from odbench.core.records import NOT_MEASURED, CellSpec


@dataclass(frozen=True)
class Recovery:
    cell_id: str
    action: str  # "rebuilt" (from parts/) | "rerun"
    why: str

    @property
    def line(self) -> str:
        return f"[resume] {self.cell_id}: {self.why}: {'rebuilt from its parts/' if self.action == 'rebuilt' else 'rerun'}"


def _parts_state(folder: RunFolder, spec: CellSpec) -> tuple[list, list[str]]:
    """(the readable parts in order up to the first that could not measure, what is wrong with the others)."""
    n = max(1, spec.timing.processes)
    parts, wrong = [], []
    for k in range(1, n + 1):
        part, why = folder.read_part(spec.cell_id, k)
        if part is None:
            wrong.append(f"process {k} {why}")
            continue
        parts.append(part)
        if part.verdict in NOT_MEASURED:  # that process decided the cell: the rest were never run
            return parts, []
    return parts, wrong


def recover(folder: RunFolder, cells: Iterable[CellSpec], log: Callable[[str], None] = print) -> list[Recovery]:
    """Rebuild or set aside every planned cell whose stored result is missing-with-parts or unreadable."""
    done = []
    for spec in cells:
        cid = spec.cell_id
        error = folder.unreadable_error(cid)
        has_parts = (folder.root / "parts" / cid).is_dir()
        if error is None and (folder.path_for(cid).exists() or not has_parts):
            continue  # readable, or simply not run yet
        what = f"unreadable result ({error})" if error else "no result, but parts/ holds its processes"
        parts, wrong = _parts_state(folder, spec) if has_parts else ([], ["no parts/ (a stored cell's parts are dropped)"])
        if parts and not wrong:
            if error:
                folder.set_aside(cid)
            folder.put(merge_processes(spec, parts))
            folder.drop_parts(cid)
            rec = Recovery(cid, "rebuilt", what)
        elif error:
            folder.set_aside(cid)
            kept = f"; {len(parts)} intact part(s) kept" if parts else ""
            rec = Recovery(cid, "rerun", f"{what}; parts/ incomplete: {', '.join(wrong)}{kept}")
        else:
            continue  # an interleaved run stopped mid-cell: the executor runs the missing processes
        log(rec.line)
        done.append(rec)
    return done
