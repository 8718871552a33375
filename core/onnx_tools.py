"""Reading ONNX files without a benchmark runtime: signatures, weight statistics, and the one
ONNX Runtime session used for evaluation (accuracy, fidelity, parity references; never for timing)."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from odbench.core.records import TensorSpec


def onnx_signature(model_path: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs declared by an ONNX file, read without a runtime (weights not loaded)."""
    import numpy as np
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = onnx.load(model_path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}

    def spec(v) -> TensorSpec:
        t = v.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim)
        return TensorSpec(v.name, np.dtype(tensor_dtype_to_np_dtype(t.elem_type)).name, dims)

    return [spec(v) for v in graph.input if v.name not in inits], [spec(v) for v in graph.output]


# A variant's run function: feed -> outputs (list of arrays), e.g. an ORT session's run.
RunFn = Callable[[Mapping[str, np.ndarray]], Sequence[np.ndarray]]


def ort_run_fn(path: str | Path, threads: int | None = None) -> RunFn:
    """A plain ONNX Runtime session for accuracy evaluation (not for timing)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return lambda feed: sess.run(None, dict(feed))


def onnx_param_count(path: str | Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(int(np.prod(init.dims)) for init in model.graph.initializer))


def gzip_size(path: Path) -> int:
    with open(path, "rb") as fh:
        return len(gzip.compress(fh.read(), compresslevel=6))


def weight_stats(path: Path) -> dict[str, float]:
    """Parameter count; sparsity of the dense float weights (embedding tables excluded, since
    magnitude pruning leaves them alone); MB held by embedding tables (what Gather reads,
    through a DequantizeLinear too, with their per-row scales) vs everything else."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    producer = {o: n for n in model.graph.node for o in n.output}
    gathered: set[str] = set()
    for n in model.graph.node:
        if n.op_type in ("Gather", "GatherBlockQuantized"):
            sources = [n.input[0]] + (list(n.input[2:]) if n.op_type == "GatherBlockQuantized" else [])
            for src in sources:
                dq = producer.get(src)
                gathered.update(dq.input if dq is not None and dq.op_type == "DequantizeLinear" else [src])
    params = zeros = dense_floats = 0
    emb_bytes = dense_bytes = 0
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        params += arr.size
        if init.name in gathered and arr.ndim >= 1 and arr.shape[0] >= 64:
            emb_bytes += arr.nbytes
            continue
        dense_bytes += arr.nbytes
        if arr.dtype.kind == "f":
            dense_floats += arr.size
            zeros += int((arr == 0).sum())
    return {
        "params": int(params),
        "sparsity": zeros / dense_floats if dense_floats else 0.0,
        "embedding_mb": emb_bytes / 2**20,
        "dense_mb": dense_bytes / 2**20,
    }


# Operators that only a graph someone already quantized holds. ONNX operators (https://onnx.ai/onnx/operators/):
# QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger, DynamicQuantizeLinear; ONNX Runtime's contrib
# operators (https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md): the QLinear* family
# (QLinearAdd, QLinearSigmoid, ...), MatMulIntegerToFloat, DynamicQuantizeMatMul, QAttention, QGemm,
# QEmbedLayerNormalization, MatMulNBits and MatMulBnb4 (4-bit weight-only), QOrderedMatMul.
QUANTIZED_OPS = frozenset({
    "MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM", "QAttention", "QGemm", "QEmbedLayerNormalization", "QOrderedMatMul", "QOrderedAttention",
    "MatMulNBits", "MatMulBnb4", "MatMulFpQ4",
})
QDQ_PAIR = "QuantizeLinear->DequantizeLinear"


def quantized_ops(path: str | Path) -> dict[str, int]:
    """What makes a graph already quantized, counted: QLinear* and the integer/n-bit operators above, and
    QDQ pairs (a QuantizeLinear whose output a DequantizeLinear reads: activations quantized in the graph,
    ONNX Runtime's QDQ format). A DequantizeLinear of a constant alone (weight-only int8 of an embedding
    table, compressors/embedding.py) is not counted: float MatMuls beside it can still be quantized."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts: dict[str, int] = {}
    quantize_outputs = {o for n in graph.node if n.op_type == "QuantizeLinear" for o in n.output}
    for n in graph.node:
        if n.op_type.startswith("QLinear") or n.op_type in QUANTIZED_OPS:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        elif n.op_type == "DequantizeLinear" and n.input and n.input[0] in quantize_outputs:
            counts[QDQ_PAIR] = counts.get(QDQ_PAIR, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def quantized_summary(ops: dict[str, int]) -> str:
    """'already quantized (12 MatMulInteger, 12 DynamicQuantizeLinear)', or '' for a float graph."""
    return f"already quantized ({', '.join(f'{n} {op}' for op, n in ops.items())})" if ops else ""
