"""A user's file as a Variant: an already-quantized one is labelled, and its fidelity reference is its own outputs."""
from __future__ import annotations

from odbench.models.onnx_file import OWN_OUTPUTS, user_variant
from tests.conftest import make_tiny_onnx
from tests.core.test_onnx_tools import make_dynamic


def test_an_already_quantized_file_is_labelled_as_its_own_reference(tmp_path):
    q = user_variant(make_dynamic(tmp_path / "q.onnx", tmp_path))
    assert q.id.endswith("/as-is") and q.parent is None
    assert q.config["already_quantized"] == {"DynamicQuantizeLinear": 1, "MatMulInteger": 1}
    assert q.config["fidelity_reference"] == OWN_OUTPUTS
    assert any(n.startswith("already quantized (1 DynamicQuantizeLinear, 1 MatMulInteger): benchmarked as-is") for n in q.notes)
    f = user_variant(make_tiny_onnx(tmp_path / "f.onnx"))
    assert "already_quantized" not in f.config and len(f.notes) == 1
