"""`odbench accuracy`: one row per (variant, runtime) from that runtime's own outputs; errors are rows with their reason."""
from __future__ import annotations

import csv
import io

from odbench.core.records import Variant, sha256_file
from odbench.report import accuracy_table as T
from tests.verdicts.test_accuracy import FakeModel, _tiny_onnx


def test_the_table_has_a_row_per_runtime_and_says_what_the_delta_is_against(tmp_path):
    _tiny_onnx(tmp_path / "m.onnx")
    v = Variant(id="fake/fp32", model="fake", path=str(tmp_path / "m.onnx"), sha256=sha256_file(tmp_path / "m.onnx"), size_bytes=1)
    model = FakeModel()
    model.fidelity_metric = None
    recs = T.measure(model, [v], ["onnxruntime", "nosuch-runtime"], tmp_path, log=lambda *_: None)
    assert recs[0]["value"] == 4.0 and recs[0]["runtime_version"] and "nosuch-runtime" in recs[1]["error"]
    md = T.render(recs, ["--model", "fake"])
    assert "delta vs fp32 on ONNX Runtime" in md and "| fake | fp32 | onnxruntime" in md and "error: " in md
    assert "Machine: " in md and "Command: `odbench accuracy --model fake`" in md
    rows = list(csv.DictReader(io.StringIO(T.to_csv(recs))))
    assert rows[0]["value"] == "4.0" and rows[1]["error"]
