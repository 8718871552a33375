"""Release against release: ``api.compare(BASE, CAND)`` (this module: api/comparison.py), what `odbench compare` is a thin layer over.

BASE and CAND are ONNX files (feeds from the signature, ``dims``) or zoo variant ids (``ctr-ml100k/fp32``; a
compressed one once built by `odbench compress` or `odbench run`). The paired design when both run on one runtime,
the isolated one across runtimes (verdicts/compare.py, docs/paired.md). Bad input raises UsageError (one line).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

from odbench.api.options import UsageError, parse_dims, parse_runtime, resolve_profiles
from odbench.core.feeds import materialize_feeds
from odbench.core.paired import PairedMember
from odbench.core.records import Feeds, Variant
from odbench.models import get_model
from odbench.models.onnx_file import user_variant
from odbench.stats.paired import DEFAULT_MARGIN, Sequential
from odbench.verdicts import compare as cmp
from odbench.verdicts.compare import Comparison


def zoo_variant(vid: str, cache: Path, log: Callable[[str], None]) -> tuple[Variant, object]:
    name = vid.partition("/")[0]
    try:
        model = get_model(name)
    except KeyError:
        raise UsageError(f"{vid!r} is neither an existing .onnx file nor a zoo variant id (MODEL/VARIANT)") from None
    if vid == f"{name}/fp32":
        return model.build(cache, log=log), model
    builds = {path: v for path in (cache / "variants" / name).rglob("variant.json") if (v := Variant.load(path)).id == vid}
    if builds:
        # Earlier builds of the same id (other code or config versions) stay in the cache: the newest is taken, and said.
        newest = max(builds, key=lambda path: path.stat().st_mtime)
        if len(builds) > 1:
            log(f"[compare] {len(builds)} builds of {vid} in {cache}: using the newest, {newest.parent.name} "
                f"(others: {', '.join(sorted(b.parent.name for b in builds if b != newest))}); pass a .onnx path to choose")
        return builds[newest], model
    raise UsageError(f"zoo variant {vid!r} is not built in {cache}: run `odbench compress --model {name}` first")


def resolve(text: str, cache: Path, log: Callable[[str], None]) -> tuple[Variant, object | None]:
    p = Path(text)
    if p.is_dir():
        raise UsageError(f"{text} is a folder: compare takes two .onnx files or zoo variant ids (MODEL/VARIANT); "
                         "to compare two run folders use `odbench gate RUN --baseline BASE_RUN`")
    if p.suffix == ".onnx" or p.exists():
        try:
            return user_variant(p), None
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
    return zoo_variant(text, cache, log)


def member(role: str, v: Variant, runtime: tuple[str, dict]) -> PairedMember:
    """The role keeps two members apart when BASE and CAND are one variant on other options."""
    return PairedMember(f"{role}={v.id}", v.path, v.sha256, runtime[0], dict(runtime[1]))


def compare(base: str, cand: str, runtime: str = "onnxruntime", cand_runtime: str | None = None, profile: str = "host",
            scenario: str | None = None, dims: Sequence[str] = (), margin: float = DEFAULT_MARGIN,
            looks: Sequence[int] = (10, 20, 40, 80), isolated: int = 0, max_time: float = 2.0, seed: int = 0,
            out: str | Path | None = None, cache: str | Path | None = None,
            log: Callable[[str], None] = print) -> Comparison:
    """CAND against BASE: effect = cand/base time [95% CI], verdict, design (``Comparison.lines()`` says it)."""
    cache = Path(cache or os.environ.get("ODBENCH_CACHE") or "artifacts").resolve()
    try:
        design = Sequential(tuple(int(x) for x in looks), margin)
    except ValueError as exc:
        raise UsageError(f"looks {tuple(looks)}: {exc}") from None
    prof = resolve_profiles((profile,))[0]
    rt_base = parse_runtime(runtime)
    rt_cand = parse_runtime(cand_runtime) if cand_runtime else rt_base
    vb, model = resolve(base, cache, log)
    vc, _ = resolve(cand, cache, log)
    if model is not None:
        scen = scenario or model.headline
        if scen not in model.scenarios:
            raise UsageError(f"scenario {scen!r}: {model.name} has {', '.join(model.scenarios)}")
        fs = model.feeds(scen, cache)
        feeds, items = Feeds(path=str(fs.path)), fs.items_per_inference
    else:
        scen, parsed = "synthetic", parse_dims(tuple(dims))
        feeds = materialize_feeds(vb, Feeds(dims=parsed), Path(out or cache) / "feeds", log=log)
        items = dict(parsed).get("batch", 1)
    try:
        spec = cmp.spec_for(member("base", vb, rt_base), member("cand", vc, rt_cand), vb.model, scen,
                            prof.model_dump(mode="json"), feeds, items, seed, max_time)
    except cmp.CompareError as exc:
        raise UsageError(str(exc)) from None
    log(f"[compare] {spec.members[0].key} vs {spec.members[1].key} on {prof.name}/{scen}; looks at {design.schedule}")
    result = cmp.compare(spec, design, isolated, log=log)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        cmp.save(Path(out), result)
        (Path(out) / "comparison.json").write_text(json.dumps(cmp.to_dict(result), indent=1))
    return result
