"""api/comparison.py: how `odbench compare` finds what to compare."""
from __future__ import annotations

import os

import pytest

from odbench.api.comparison import zoo_variant
from odbench.api.options import UsageError
from odbench.core.records import Variant


def _build(cache, folder: str, mtime: float, vid: str = "ctr-ml100k/int8-dyn") -> str:
    d = cache / "variants" / "ctr-ml100k" / folder
    d.mkdir(parents=True)
    Variant(id=vid, model="ctr-ml100k", path=str(d / "model.onnx"), sha256=folder, size_bytes=1).save(d / "variant.json")
    os.utime(d / "variant.json", (mtime, mtime))
    return folder


def test_of_several_builds_of_one_id_the_newest_is_taken_and_the_others_named(tmp_path):
    old, new = _build(tmp_path, "int8-dyn-aaaa", 1_000), _build(tmp_path, "int8-dyn-bbbb", 2_000)
    _build(tmp_path, "emb-int8-cccc", 3_000, vid="ctr-ml100k/emb-int8")
    said = []
    v, _ = zoo_variant("ctr-ml100k/int8-dyn", tmp_path, said.append)
    assert v.sha256 == new
    assert len(said) == 1 and "2 builds" in said[0] and f"using the newest, {new}" in said[0] and old in said[0]
    said.clear()
    assert zoo_variant("ctr-ml100k/emb-int8", tmp_path, said.append)[0].sha256 == "emb-int8-cccc" and said == []


def test_an_unbuilt_variant_says_how_to_build_it(tmp_path):
    with pytest.raises(UsageError, match="odbench compress --model ctr-ml100k"):
        zoo_variant("ctr-ml100k/int8-dyn", tmp_path, print)
