"""`odbench build` and `odbench compress`: the zoo's fp32 baselines and their compressed variants."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click
from rich.table import Table

from odbench.api.matrix import compress_zoo, recipe_steps
from odbench.cli.common import cache_path, existing_file, log, out, parse_dims, resolve_models, usage
from odbench.compressors.build import build_recipe
from odbench.compressors.fidelity import OnnxFidelityTask
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Feeds
from odbench.models import ZOO
from odbench.models.metrics import accuracy_line
from odbench.models.onnx_file import user_variant


def _compress_onnx(path: str, recipe: str, feeds: Path | None, dims, cache: Path) -> list:
    try:
        baseline = user_variant(path)
    except FileNotFoundError as exc:
        raise usage(str(exc)) from None
    task = OnnxFidelityTask(baseline.path, Feeds(path=str(feeds)) if feeds else Feeds(dims=dims))
    baseline = dataclasses.replace(baseline, accuracy=task.evaluate(ort_run_fn(baseline.path)))
    built = build_recipe(baseline, recipe_steps("onnx", recipe), task, cache / "variants" / baseline.model, log=log)
    return [(baseline, b) for b in built]


def _variants_table(rows: list) -> Table:
    table = Table("variant", "parent", "compressor", "size MB", "gzip MB", "emb MB", "dense MB", "sparsity",
                  "accuracy (Δ vs fp32)", "build s", "note", title="Compressed variants")
    for base, b in rows:
        v = b.variant
        if v is None:
            table.add_row(f"{base.model}/{b.step.key}", "", b.step.compressor, "", "", "", "", "", f"not built ({b.kind})",
                          f"{b.seconds:.1f}", b.error[:120])
            continue
        acc = accuracy_line(v.accuracy)  # the task metric with its interval and paired delta, and fidelity
        table.add_row(v.id, v.parent or "", v.compressor or "", f"{v.size_bytes / 2**20:.1f}", f"{(v.gzip_bytes or 0) / 2**20:.1f}",
                      f"{v.embedding_mb or 0:.1f}", f"{v.dense_mb or 0:.1f}", f"{v.sparsity or 0:.2f}", acc,
                      f"{b.seconds:.1f}", (v.notes or ("",))[0][:120])
    return table


@click.command("compress")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: every zoo model unless --onnx is given)")
@click.option("--onnx", multiple=True, help="your own ONNX file; accuracy = fidelity to its fp32 outputs")
@click.option("--recipe", type=click.Choice(["default", "full"]), default="default", show_default=True)
@click.option("--dim", multiple=True, help="--onnx feeds: NAME=SIZE (repeatable)")
@click.option("--feeds", help="--onnx feeds: .npz file")
@click.pass_context
def compress_cmd(ctx: click.Context, model, onnx, recipe, dim, feeds) -> int:
    """Build compressed variants (zoo models, or --onnx files: graph-only compressors)."""
    models = resolve_models(model or (() if onnx else tuple(ZOO)))
    dims, feeds_path = parse_dims(dim), existing_file(feeds, "feeds file")
    for path in onnx:
        existing_file(path, "ONNX file")
    cache = cache_path(ctx)
    rows = []
    t0 = time.perf_counter()
    for m in models:
        baseline = m.build(cache, log=log)
        rows += [(baseline, b) for b in compress_zoo(m, baseline, cache, recipe)]
    for path in onnx:
        rows += _compress_onnx(path, recipe, feeds_path, dims, cache)
    console = out()
    console.print(_variants_table(rows))
    console.print(f"built {sum(b.variant is not None for _, b in rows)}/{len(rows)} variants in "
                  f"{time.perf_counter() - t0:.0f}s (cached steps are instant)")
    return 0 if all(b.variant is not None for _, b in rows) else 1


@click.command("build")
@click.option("--model", multiple=True, help="zoo model (repeatable; default: every zoo model)")
@click.pass_context
def build_cmd(ctx: click.Context, model) -> int:
    """Build (or load from the cache) the zoo's fp32 baselines."""
    table = Table("variant", "MB", "params", "accuracy", "parity", "path", title="fp32 baselines")
    for m in resolve_models(model or tuple(ZOO)):
        v = m.build(cache_path(ctx), log=log)
        table.add_row(v.id, f"{v.size_bytes / 2**20:.1f}", str(v.params), str(v.accuracy), str(v.parity), v.path)
    out().print(table)
    return 0
