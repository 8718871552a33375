"""A mobile export that cannot be built is a NotBuilt record with its reason; the others still build."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from odbench.compressors import mobile
from odbench.compressors.base import CompressionError
from odbench.core.not_built import NotBuiltKind
from odbench.core.records import Variant


@dataclass(frozen=True)
class _Config:
    quant: str


class _Export:
    name, suffix = "fake-export", "fake"

    def compress(self, root, task, config, out_dir):
        if config.quant == "int8-full":
            raise CompressionError("LiteRT needs fixed shapes: input 'x' axis 1 is dynamic")
        if config.quant == "int8-odd":
            raise RuntimeError("a library error")
        return Variant(id=f"{root.model}/fake-{config.quant}", model=root.model, path="m.tflite", sha256="0" * 64,
                       size_bytes=2**20, parent=root.id, config={"delegation": {"delegates": ["X"]}})


def test_an_export_that_cannot_be_built_is_a_not_built_record(monkeypatch, tmp_path):
    configs = tuple(_Config(q) for q in ("fp32", "int8-full", "int8-odd"))
    monkeypatch.setitem(mobile.EXPORTS, "fake", (_Export, configs))
    root = Variant(id="m/fp32", model="m", path="m.onnx", sha256="0" * 64, size_bytes=1)
    refused, lines = [], []
    built = mobile.mobile_variants(SimpleNamespace(), root, tmp_path, ["fake", "onnxruntime"], log=lines.append, refused=refused)
    assert [v.id for v in built] == ["m/fake-fp32"]
    assert [(r.id, r.kind) for r in refused] == [("m/fake-int8-full", NotBuiltKind.REFUSED), ("m/fake-int8-odd", NotBuiltKind.FAILED)]
    assert "axis 1 is dynamic" in refused[0].reason and refused[0].parent == root.id
    assert any("not built" in line for line in lines)
