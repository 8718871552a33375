"""A user's model on the user's evaluation set inside a run (`odbench run --onnx M --eval eval.yaml`,
docs/your-data.md): the set is checked before anything is built, the file's variants are calibrated and
tuned on its tuning rows, timed on feeds from its test rows in its declared scenario, and every timed
(variant, runtime) is scored on the test rows from that runtime's own outputs."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Mapping, Sequence

from odbench.api.options import UsageError
from odbench.bench.matrix import Workload
from odbench.compressors.build import compress_onnx_file
from odbench.core.not_built import NotBuilt
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Feeds, Result, Variant
from odbench.models.base import split_record
from odbench.models.onnx_file import user_variant
from odbench.models.user_data import EvalError, load_eval
from odbench.models.user_task import UserTask
from odbench.report.user_table import write_user_table
from odbench.verdicts.accuracy import measure_run_accuracy

Log = Callable[[str], None]


def eval_tasks(onnx: Sequence[str | Path], eval_file: str | Path | None) -> tuple[tuple[str, UserTask], ...]:
    """(onnx path, UserTask) per --onnx file: the evaluation file, its rows, split and tokenizer, and its
    columns against each model's signature, all checked now (UsageError: one line)."""
    if eval_file is None:
        return ()
    if not onnx:
        raise UsageError("--eval needs --onnx (the model the evaluation set is for)")
    try:
        data = load_eval(eval_file)
        return tuple((str(path), UserTask(Path(path).resolve(), data)) for path in onnx)
    except EvalError as exc:
        raise UsageError(str(exc)) from None


def eval_workloads(path: str, task: UserTask, recipe: str, out: Path, cache: Path, log: Log) -> tuple[list[Workload], list[NotBuilt]]:
    """The user's file (with its test split recorded) and its ``onnx-eval`` recipe's variants, on the timing
    scenario the evaluation file declares, with feeds from its test rows."""
    variant = user_variant(path)
    test = split_record("test", task.data.ids("test"))
    variant = dataclasses.replace(
        variant, scenarios=(task.scenario,),
        config={**variant.config, "eval": str(task.data.path), "eval_sha256": task.data.sha256, "test": test},
        notes=variant.notes + (f"evaluation set {task.data.path.name} ({task.spec.task}; split rule {task.spec.split.rule})",))
    task.name = variant.model
    feeds = Feeds(path=str(task.write_timing_feeds(out / "feeds")))
    scen = {task.scenario: (feeds, task.items_per_inference)}
    unit = "queries" if task.spec.task == "retrieval" else "rows"
    log(f"[eval] {variant.id}: {task.spec.task} on {task.data.path} ({len(task.data.ids('tuning'))} tuning / "
        f"{len(task.data.ids('test'))} test {unit}); timing scenario {task.scenario}")
    if recipe == "none":
        variant = dataclasses.replace(variant, accuracy=task.evaluate(ort_run_fn(variant.path)))
        return [Workload(variant, scen, task.output_kind)], []
    baseline, built = compress_onnx_file(variant, feeds, recipe, cache, log=log, task=task)
    workloads = [Workload(v, scen, task.output_kind) for v in [baseline] + [b.variant for b in built if b.variant]]
    return workloads, [nb for b in built if (nb := b.not_built(baseline))]


def split_results(results: Sequence[Result | None], variants: Mapping[str, Variant],
                  tasks: Mapping[str, UserTask]) -> tuple[list, dict[str, list]]:
    """(results of zoo models, {user model: its results})."""
    zoo, mine = [], {name: [] for name in tasks}
    for r in results:
        model = getattr(variants.get(r.variant_id), "model", None) if r is not None else None
        (mine[model] if model in mine else zoo).append(r)
    return zoo, mine


def measure_eval_accuracy(results_by_model: Mapping[str, list], variants: Mapping[str, Variant], tasks: Mapping[str, UserTask],
                          cache: Path, out: Path, log: Log) -> None:
    """Each user model's timed (variant, runtime) pairs scored on its test rows from that runtime's outputs,
    cached per evaluation set (the accuracy cache key is the model file; the set is in the folder name)."""
    for name, task in tasks.items():
        measure_run_accuracy(results_by_model[name], variants, {name: task}, cache / "user-eval" / task.data.sha256[:12], out, log)


def write_eval_table(out: Path, tasks: Mapping[str, UserTask], log: Log) -> Path:
    path = write_user_table(out, {name: t.primary_metric for name, t in tasks.items()})
    log(f"[eval] your model on your data: {path}")
    return path
