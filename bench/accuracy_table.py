"""The accuracy table: every variant of the zoo models, on each runtime, with the task metric [95% CI],
fidelity, and the paired delta vs fp32 [95% CI], each measured from that runtime's own outputs.

Run: ``python -m odbench.bench.accuracy_table [--model M ...] [--runtime R ...] [--recipe default]``
(builds what is missing into ``$ODBENCH_CACHE`` or ./artifacts, then prints a markdown table).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from odbench.bench.accuracy import runtime_accuracy
from odbench.compressors.build import build_recipe
from odbench.compressors.recipes import RECIPES
from odbench.models import ZOO, get_model
from odbench.models.base import ZooTask, cache_dir


def _ci(acc: dict, key: str, pct: bool = False) -> str:
    if key not in acc:
        return "—"
    f = (lambda x: f"{x:+.4f}") if pct else (lambda x: f"{x:.4f}")
    lo, hi = acc.get(f"{key}_lo"), acc.get(f"{key}_hi")
    return f"{f(acc[key])} [{f(lo)}, {f(hi)}]" if lo is not None and hi is not None else f(acc[key])


def variants_of(model, cache: Path, recipe: str, only: list[str] | None = None, log=print) -> list:
    base = model.build(cache, log=log)
    steps = tuple(s for s in RECIPES.get((model.name, recipe), ()) if not only or s.key in only)
    torch_task = getattr(model, "torch_task", None)
    built = build_recipe(base, steps, ZooTask(model, cache), cache / "variants" / model.name,
                         torch_task_factory=(lambda: torch_task(cache)) if torch_task else None, log=log)
    return [base] + [b.variant for b in built if b.variant is not None]


def rows(model, variants: list, runtimes: list[str], cache: Path, log=print) -> list[str]:
    out = []
    m, fid = model.primary_metric, model.fidelity_metric
    for v in variants:
        for rt in runtimes:
            try:
                acc = runtime_accuracy(model, v, rt, cache)
            except Exception as exc:  # noqa: BLE001 - one failing cell is a row with its reason, the table goes on
                out.append(f"| {v.id} | {rt} | error: {type(exc).__name__}: {str(exc)[:80]} | | |")
                continue
            out.append(f"| {v.id} | {rt} | {m} {_ci(acc, m)} | {_ci(acc, fid) if fid else '—'} | {_ci(acc, f'delta_{m}', pct=True)} |")
            log(out[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m odbench.bench.accuracy_table", description=__doc__)
    p.add_argument("--model", action="append", help=f"zoo model (repeatable; default: all of {', '.join(ZOO)})")
    p.add_argument("--runtime", action="append", help="runtime (repeatable; default: onnxruntime, openvino)")
    p.add_argument("--recipe", default="default", help="compressed variants to include (default: default; none = fp32 only)")
    p.add_argument("--only", action="append", help="only these recipe steps, by key (repeatable), e.g. int8dyn")
    args = p.parse_args(argv)
    cache = cache_dir()
    lines = ["| variant | runtime | task metric [95% CI] | fidelity [95% CI] | delta vs fp32 [95% CI] |", "|---|---|---|---|---|"]
    for name in args.model or list(ZOO):
        model = get_model(name)
        lines += rows(model, variants_of(model, cache, args.recipe, args.only), args.runtime or ["onnxruntime", "openvino"], cache)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
