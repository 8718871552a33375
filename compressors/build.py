"""Build a recipe's variants for one model, with the time each took. Cached by content hash:
a rerun with the same parent file, compressor and config is instant."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from odbench.compressors import NEEDS_TORCH, get_compressor
from odbench.compressors.base import CompressionError, Task, config_dict
from odbench.compressors.fidelity import OnnxFidelityTask
from odbench.compressors.recipes import LABEL_TAGS, RECIPES, Step
from odbench.core.not_built import NotBuilt, NotBuiltKind
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Variant
from odbench.models.metrics import accuracy_line


@dataclass(frozen=True)
class Built:
    """One recipe step's outcome: its variant, or (variant None) why not, as ``kind`` and ``error``."""

    step: Step
    variant: Variant | None
    seconds: float
    error: str = ""
    kind: NotBuiltKind | None = None  # set when variant is None

    def not_built(self, baseline: Variant) -> NotBuilt | None:
        """The typed record variants.json keeps for a step that built nothing (None when it built)."""
        if self.variant is not None:
            return None
        parent = baseline.id if self.step.parent is None else self.step.parent
        return NotBuilt(id=f"{baseline.model}/{self.step.key}", model=baseline.model, step=self.step.key,
                        compressor=self.step.compressor, kind=self.kind or NotBuiltKind.FAILED, reason=self.error,
                        parent=parent, seconds=round(self.seconds, 3), config=config_dict(self.step.config))


def one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text[:400] or type(exc).__name__


def build_recipe(baseline: Variant, steps: tuple[Step, ...], task: Task, out_dir: Path,
                 torch_task_factory: Callable[[], object] | None = None,
                 log: Callable[[str], None] = print) -> list[Built]:
    done: dict[str, Variant] = {}
    built: list[Built] = []
    torch_task = None
    for step in steps:
        parent = baseline if step.parent is None else done.get(step.parent)
        if parent is None:
            built.append(Built(step, None, 0.0, f"parent step {step.parent!r} did not build", NotBuiltKind.SKIPPED))
            log(f"  [compress] {step.key} ({step.compressor}): not built, skipped: {built[-1].error}")
            continue
        if step.compressor in NEEDS_TORCH and torch_task_factory is None:
            built.append(Built(step, None, 0.0, f"{step.compressor} needs a torch model (TorchTask); skipped for a plain ONNX file",
                               NotBuiltKind.SKIPPED))
            log(f"  [compress] {step.key} ({step.compressor}): not built, skipped: {built[-1].error}")
            continue
        t0 = time.perf_counter()
        try:  # loading the compressor, its torch task and the compression itself: any of them may fail
            compressor = get_compressor(step.compressor)
            kwargs = {}
            if step.compressor in NEEDS_TORCH:
                if torch_task is None:
                    torch_task = torch_task_factory()
                kwargs["torch_task"] = torch_task
            variant = compressor.compress(parent, task, step.config, out_dir, **kwargs)
        except CompressionError as exc:  # the compressor cannot apply here: a sound refusal, with its reason
            seconds = time.perf_counter() - t0
            built.append(Built(step, None, seconds, one_line(exc), NotBuiltKind.REFUSED))
            log(f"  [compress] {step.key} ({step.compressor}): not built, refused: {one_line(exc)}")
            continue
        except Exception as exc:  # a library error or a bug: named by its type, and the set goes on
            seconds = time.perf_counter() - t0
            built.append(Built(step, None, seconds, f"{type(exc).__name__}: {one_line(exc)}", NotBuiltKind.FAILED))
            log(f"  [compress] {step.key} ({step.compressor}): not built, FAILED after {seconds:.0f}s: "
                f"{type(exc).__name__}: {one_line(exc)}")
            continue
        seconds = time.perf_counter() - t0
        variant = _record_step(variant, step)
        done[step.key] = variant
        built.append(Built(step, variant, seconds))
        log(f"  [compress] {variant.id}: {variant.size_bytes / 2**20:.1f} MB, {accuracy_line(variant.accuracy)} ({seconds:.1f}s)")
    return built


def _record_step(variant: Variant, step: Step) -> Variant:
    """The recipe step's target runtimes and label (e.g. "no fine-tuning", and its tag in the id) on the
    variant and its variant.json."""
    extra = {**({"target_runtimes": list(step.runtimes)} if step.runtimes else {}), **({"label": step.label} if step.label else {})}
    tag = LABEL_TAGS.get(step.label)
    vid = variant.id if not tag or variant.id.endswith(f"-{tag}") else f"{variant.id}-{tag}"
    if vid == variant.id and all(variant.config.get(k) == v for k, v in extra.items()):
        return variant
    notes = variant.notes + ((step.label,) if step.label and step.label not in variant.notes else ())
    variant = dataclasses.replace(variant, id=vid, config={**variant.config, **extra}, notes=notes)
    variant.save(Path(variant.path).parent / "variant.json")
    return variant


def compress_onnx_file(baseline: Variant, feeds, recipe: str, cache: Path,
                       log: Callable[[str], None] = print, task: Task | None = None) -> tuple[Variant, list[Built]]:
    """``odbench run|compress --onnx FILE --recipe R``: the file's baseline, with its fidelity to
    itself measured through the same task (so the table's fidelity columns line up), and every
    variant of the ONNX recipe built from it. ``feeds`` (a bench.records.Feeds) should be the
    materialised feeds the benchmark will use, so compression, fidelity and timing see the same
    inputs. Variants keep the baseline's scenarios and record their lineage (parent, compressor, config).

    With ``task`` (a models.user_task.UserTask: the user's evaluation set), the recipe is the ``onnx-eval``
    one: calibration and tuning read the set's tuning rows, accuracy its test rows, and variants are cached
    per evaluation set (a variant calibrated on another set's rows is never reused)."""

    kind = "onnx" if task is None else "onnx-eval"
    steps = RECIPES.get((kind, recipe))
    if steps is None:
        raise ValueError(f"no recipe {recipe!r} for ONNX files; known: {sorted(r for m, r in RECIPES if m == kind)}")
    out_dir = Path(cache) / "variants" / baseline.model
    if task is None:
        task = OnnxFidelityTask(baseline.path, feeds)
    else:
        out_dir = out_dir / f"eval-{task.data.sha256[:12]}"
    baseline = dataclasses.replace(baseline, accuracy=task.evaluate(ort_run_fn(baseline.path)))
    log(f"[compress] {baseline.id}: {len(steps)} variants (recipe {recipe!r}; cached by content hash) ...")
    return baseline, build_recipe(baseline, steps, task, out_dir, log=log)
