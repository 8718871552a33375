"""runtimes/litert_io.py: feeding and reading a .tflite's signature runner in numpy alone (shared with the ARM worker)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from odbench.runtimes import litert_io
from odbench.runtimes.litert_io import SignatureIO, by_position


def test_it_imports_nothing_but_numpy_and_the_standard_library():
    """The ARM guest loads it by path with only numpy and the interpreter installed."""
    tree = ast.parse(Path(litert_io.__file__).read_text())
    roots = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert roots <= {"__future__", "collections", "typing", "numpy"}


def test_tensors_are_taken_by_position_not_by_name():
    assert by_position(["args_10", "args_2", "args_0"]) == ["args_0", "args_2", "args_10"]


def _io(quant_out=(0.0, 0), quant_in=(0.0, 0), fixed=None):
    signature = {"inputs": [{"name": "x"}], "static_shapes": fixed or {}, "pad_axes": {}}
    ins = {"args_0": {"dtype": np.int8 if quant_in[0] else np.float32, "quantization": quant_in}}
    outs = {"output_0": {"dtype": np.int8 if quant_out[0] else np.float32, "quantization": quant_out}}
    return SignatureIO(signature, ins, outs)


def test_a_quantized_output_is_dequantized_and_a_float_input_quantized():
    io_ = _io(quant_out=(0.5, 3), quant_in=(0.25, -1))
    (slate,), n = io_.bind({"x": np.array([[1.0, -0.5]], np.float32)})
    assert n == 1 and slate["args_0"].dtype == np.int8 and slate["args_0"].tolist() == [[3, -3]]
    (y,) = io_.outputs([{"output_0": np.array([[5, 1]], np.int8)}], n)
    assert y.dtype == np.float32 and y.tolist() == [[1.0, -1.0]]


def test_rows_beyond_a_slate_run_in_padded_slates_and_come_back_in_order():
    io_ = _io(fixed={"x": [2, 3]})
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    slates, n = io_.bind({"x": x})
    assert n == 5 and len(slates) == 3 and slates[-1]["args_0"].tolist() == [x[4].tolist(), x[4].tolist()]
    (y,) = io_.outputs([{"output_0": s["args_0"].sum(axis=1)} for s in slates], n)
    np.testing.assert_array_equal(y, x.sum(axis=1))
    with pytest.raises(ValueError, match="does not fit the fixed shape"):
        io_.bind({"x": np.ones((2, 4), np.float32)})
