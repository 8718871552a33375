"""Quantizers skip an already-quantized graph with that reason (issue 24); other compressors are not refused for it."""
from __future__ import annotations

import pytest

from odbench.compressors import get_compressor
from odbench.compressors.base import CompressionError
from odbench.compressors.recipes import ONNX_DEFAULT, ONNX_FULL
from odbench.models.onnx_file import user_variant
from tests.core.test_onnx_tools import make_dynamic, make_qdq

QUANTIZERS = ("inc-int8", "int8-mixed", "embedding-quant")


@pytest.mark.parametrize("make", [make_qdq, make_dynamic], ids=["qdq", "dynamic"])
def test_every_quantizer_refuses_an_already_quantized_graph_with_that_reason(tmp_path, make):
    path = make(tmp_path / "q.onnx") if make is make_qdq else make(tmp_path / "q.onnx", tmp_path)
    variant = user_variant(path)
    configs = {s.compressor: s.config for s in ONNX_DEFAULT}
    for name in QUANTIZERS:
        with pytest.raises(CompressionError, match=r"^already quantized \(.*\): not quantized again"):
            get_compressor(name).compress(variant, None, configs[name], tmp_path / "out")  # refused before the task is used
    assert not (tmp_path / "out").exists()  # nothing written, nothing cached


def test_pruning_is_not_refused_for_being_quantized(tmp_path):
    variant = user_variant(make_qdq(tmp_path / "q.onnx"))
    try:
        get_compressor("prune-magnitude").compress(variant, None, next(s.config for s in ONNX_FULL if s.compressor == "prune-magnitude"),
                                                   tmp_path / "out")
    except CompressionError as exc:
        assert "already quantized" not in str(exc)
    except (AttributeError, TypeError):
        pass  # it got past the check and reached the (absent) task: not refused for being quantized
