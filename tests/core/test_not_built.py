"""variants.json holds built variants and typed not-built records side by side (issue 24)."""
from __future__ import annotations

import json

import pytest

from odbench.bench.store import ResultStore, load_not_built, load_variants
from odbench.core.not_built import NotBuilt, NotBuiltKind
from odbench.core.records import Variant, to_json

V = Variant(id="m/as-is", model="m", path="/x.onnx", sha256="0" * 64, size_bytes=1)
NB = NotBuilt(id="m/svd", model="m", step="svd", compressor="lowrank-svd", kind=NotBuiltKind.REFUSED,
              reason="no matmul weight gets smaller", parent="m/as-is", config={"energy": 0.95})


def test_variants_json_round_trips_both_kinds_and_readers_of_variants_skip_the_not_built(tmp_path):
    ResultStore(tmp_path).write_json("variants.json", [json.loads(to_json(V)), json.loads(to_json(NB))])
    entries = json.loads((tmp_path / "variants.json").read_text())
    assert entries[1]["built"] is False and entries[1]["kind"] == "refused" and entries[1]["schema_version"] == 1
    assert load_variants(tmp_path) == {"m/as-is": V}
    assert load_not_built(tmp_path) == {"m/svd": NB}
    assert NB.line() == "m/svd (lowrank-svd): not built, refused: no matmul weight gets smaller"


def test_a_record_of_an_unknown_version_is_refused_by_name_and_never_breaks_the_variants(tmp_path):
    future = {**json.loads(to_json(NB)), "schema_version": 99}
    ResultStore(tmp_path).write_json("variants.json", [json.loads(to_json(V)), future])
    assert load_variants(tmp_path) == {"m/as-is": V}
    with pytest.raises(ValueError, match="not-built record schema version 99 is not supported"):
        load_not_built(tmp_path)
    with pytest.raises(ValueError):
        NotBuilt(id="m/x", model="m", step="x", compressor="c", kind=NotBuiltKind.FAILED, reason="r", built=True)
