"""The ExecuTorch side of compressors/executorch_export.py: ``python -c BOOT odbench.compressors._executorch_worker JOB.json``.

Runs in the executorch environment (core/envs.py): loads the torch.export program saved by the main
environment (same torch 2.13.0 in both locks), quantizes it with PT2E and the XNNPACK quantizer when
asked (dynamic: activations quantized at run time; static: observers calibrated on the tuning feeds),
lowers it with the XNNPACK partitioner and writes ``model.pte`` and ``signature.json``. Imports nothing
from the project. Sources: ExecuTorch docs "XNNPACK Backend" (quantization with XNNPACKQuantizer and
``to_edge_transform_and_lower``) and the PyTorch "PT2E quantization" tutorial.
"""
from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

import numpy as np


def _dims(dynamic: dict):
    import torch

    made: dict[str, object] = {}
    spec = {}
    for name, axes in dynamic.items():
        spec[name] = {}
        for axis, (dim, top) in axes.items():
            if dim not in made:
                made[dim] = torch.export.Dim(dim, max=int(top))
            spec[name][int(axis)] = made[dim]
    return spec


def _feeds(path: str, names: list[str]):
    import torch

    with np.load(path) as z:
        example = tuple(torch.from_numpy(z[f"example/{n}"]) for n in names)
        n_cal = len({k.split("/")[1] for k in z.files if k.startswith("calib/")})
        calib = [tuple(torch.from_numpy(z[f"calib/{i}/{n}"]) for n in names) for i in range(n_cal)]
    return example, calib


def linear_only(quantizer_cls, config):
    """A PT2E quantizer that quantizes the ``nn.Linear`` layers (where the zoo's compute is; embeddings stay fp32)
    and leaves the graph's scalars alone: its default ``transform_for_annotation`` turns scalar arguments into
    float tensors, which breaks integer index arithmetic (the CTR model's hashed ids: 'indices' must be Long)."""
    import torch

    class LinearOnly(quantizer_cls):
        def transform_for_annotation(self, model):
            return model

    quantizer = LinearOnly()
    quantizer.set_module_type(torch.nn.Linear, config)
    return quantizer


def quantize(ep, job: dict, example, calib, dynamic_shapes):
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = linear_only(XNNPACKQuantizer, get_symmetric_quantization_config(
        is_per_channel=job["per_channel"], is_dynamic=job["quant"] == "int8-dynamic"))
    prepared = prepare_pt2e(ep.module(), quantizer)
    for args in (calib if job["quant"] == "int8-static" else calib[:1]):  # dynamic: one pass to trace the observers
        prepared(*args)
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, example, dynamic_shapes=dynamic_shapes)


def delegation(edge) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    gm = edge.exported_program().graph_module
    info = get_delegation_info(gm)
    non = {op: b.non_delegated for op, b in info.delegation_by_operator.items() if b.non_delegated and op != "getitem"}
    delegated = sum(b.delegated for b in info.delegation_by_operator.values())
    backends = sorted({m.backend_id for _, m in gm.named_children() if hasattr(m, "backend_id")})
    return {"delegates": backends, "delegated_count": int(delegated), "non_delegated": non,
            "subgraphs": int(info.num_delegated_subgraphs)}


def main(argv: list[str]) -> int:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    job = json.loads(Path(argv[0]).read_text())
    names = [i["name"] for i in job["inputs"]]
    example, calib = _feeds(job["feeds"], names)
    dims = _dims(job["dynamic"])
    dynamic_shapes = tuple(dims.get(n) for n in names) if dims else None  # positional, in the ONNX input order
    ep = torch.export.load(job["program"])
    if job["quant"] != "fp32":
        ep = quantize(ep, job, example, calib, dynamic_shapes)
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    record = delegation(edge)
    program = edge.to_executorch()
    out = Path(job["out"])
    (out / "model.pte").write_bytes(program.buffer)
    signature = {"inputs": job["inputs"], "outputs": job["outputs"], "delegation": record, "quant": job["quant"],
                 "versions": {k: importlib.metadata.version(k) for k in ("executorch", "torch", "torchao", "numpy")}}
    (out / "signature.json").write_text(json.dumps(signature, indent=1))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
