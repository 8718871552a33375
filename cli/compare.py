"""`odbench compare BASE CAND`: is CAND slower, faster or the same as BASE, on this machine?

BASE and CAND are ONNX files or zoo variant ids (``ctr-ml100k/fp32``; a compressed variant once built by
`odbench compress` or `odbench run`). Prints the effect with its 95% interval, the verdict and the design that
gave it (verdicts/compare.py). Exit: 0 SAME or FASTER, 1 SLOWER, 3 INCONCLUSIVE, 4 not measured, 2 usage.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from odbench.cli.common import cache_path, log, parse_dims, parse_runtime, resolve_profiles, usage
from odbench.core.feeds import materialize_feeds
from odbench.core.paired import PairedMember
from odbench.core.records import Feeds, Variant
from odbench.models import get_model
from odbench.models.onnx_file import user_variant
from odbench.stats.paired import DEFAULT_MARGIN, Sequential
from odbench.verdicts import compare as cmp


def zoo_variant(vid: str, cache: Path) -> tuple[Variant, object]:
    name, _, _ = vid.partition("/")
    try:
        model = get_model(name)
    except KeyError:
        raise usage(f"{vid!r} is neither an existing .onnx file nor a zoo variant id (MODEL/VARIANT)") from None
    if vid == f"{name}/fp32":
        return model.build(cache, log=log), model
    for path in sorted((cache / "variants" / name).rglob("variant.json")):
        v = Variant.load(path)
        if v.id == vid:
            return v, model
    raise usage(f"zoo variant {vid!r} is not built in {cache}: run `odbench compress --model {name}` first")


def resolve(text: str, cache: Path) -> tuple[Variant, object | None]:
    p = Path(text)
    if p.suffix == ".onnx" or p.exists():
        try:
            return user_variant(p), None
        except FileNotFoundError as exc:
            raise usage(str(exc)) from None
    return zoo_variant(text, cache)


def member(role: str, v: Variant, runtime: tuple[str, dict]) -> PairedMember:
    # the role keeps two members apart when BASE and CAND are the same variant on other options
    return PairedMember(f"{role}={v.id}", v.path, v.sha256, runtime[0], dict(runtime[1]))


@click.command("compare")
@click.argument("base")
@click.argument("cand")
@click.option("--runtime", "runtime_text", default="onnxruntime", show_default=True, help="NAME[:KEY=VALUE,...] for both")
@click.option("--cand-runtime", help="another runtime (or options) for CAND; two runtimes use the isolated design")
@click.option("--profile", default="host", show_default=True, help="device profile")
@click.option("--scenario", help="zoo scenario (default: the model's headline)")
@click.option("--dim", multiple=True, help="symbolic dimension for .onnx feeds, NAME=SIZE (repeatable)")
@click.option("--margin", type=click.FloatRange(0.001, 0.5), default=DEFAULT_MARGIN, show_default=True,
              help="equivalence margin: SAME when the interval lies within ±margin")
@click.option("--looks", default="10,20,40,80", show_default=True, help="cumulative paired processes at each look")
@click.option("--isolated", type=click.IntRange(min=0), default=0, show_default=True,
              help="also run N isolated processes a side (validation of the paired ratio, pairing cost)")
@click.option("--max-time", type=float, default=2.0, show_default=True, help="timed seconds per comparison process")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the members' order in each round")
@click.option("--out", type=click.Path(path_type=Path), help="write the paired samples and comparison.json here")
@click.pass_context
def compare_cmd(ctx: click.Context, base: str, cand: str, runtime_text: str, cand_runtime: str | None, profile: str,
                scenario: str | None, dim: tuple, margin: float, looks: str, isolated: int, max_time: float, seed: int,
                out: Path | None) -> int:
    """Compare CAND against BASE in paired processes: effect [95% CI] and SLOWER/FASTER/SAME/INCONCLUSIVE."""
    cache = cache_path(ctx)
    try:
        design = Sequential(tuple(int(x) for x in looks.split(",")), margin)
    except ValueError as exc:
        raise usage(f"--looks {looks!r}: {exc}") from None
    prof = resolve_profiles((profile,))[0]
    rt_base = parse_runtime(runtime_text)
    rt_cand = parse_runtime(cand_runtime) if cand_runtime else rt_base
    vb, model = resolve(base, cache)
    vc, _ = resolve(cand, cache)
    if model is not None:
        scen = scenario or model.headline
        if scen not in model.scenarios:
            raise usage(f"--scenario {scen!r}: {model.name} has {', '.join(model.scenarios)}")
        fs = model.feeds(scen, cache)
        feeds, items = Feeds(path=str(fs.path)), fs.items_per_inference
    else:
        scen = "synthetic"
        dims = parse_dims(dim)
        feeds = materialize_feeds(vb, Feeds(dims=dims), (out or cache) / "feeds", log=log)
        items = dict(dims).get("batch", 1)
    try:
        spec = cmp.spec_for(member("base", vb, rt_base), member("cand", vc, rt_cand), vb.model, scen,
                            prof.model_dump(mode="json"), feeds, items, seed, max_time)
    except cmp.CompareError as exc:
        raise usage(str(exc)) from None
    log(f"[compare] {spec.members[0].key} vs {spec.members[1].key} on {prof.name}/{scen}; looks at {design.schedule}")
    result = cmp.compare(spec, design, isolated, log=log)
    for line in result.lines():
        click.echo(line)
    if out is not None:
        cmp.save(out, result)
        (out / "comparison.json").write_text(json.dumps(cmp.to_dict(result), indent=1))
    return cmp.exit_code(result)
