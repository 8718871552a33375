"""The LiteRT side of compressors/litert_export.py: ``python -c BOOT odbench.compressors._litert_worker JOB.json``.

Runs in the litert environment (core/envs.py): loads the torch.export program saved by the main
environment, quantizes it with litert-torch's PT2E quantizer when asked (dynamic-range int8: int8
weights, activations quantized at run time; full int8: activations calibrated on the tuning feeds),
converts it with ``litert_torch.convert`` and writes ``model.tflite`` and ``signature.json``. Imports
nothing from the project. Sources: litert-torch README ("PyTorch converter", "Quantization"), LiteRT docs
"Post-training quantization" (https://ai.google.dev/edge/litert/models/post_training_quantization).
"""
from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

from odbench.compressors._executorch_worker import (  # numpy + torch only: no project imports beyond this file's twin
    _dims,
    _feeds,
    linear_only,
)


def main(argv: list[str]) -> int:
    import litert_torch
    import torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    job = json.loads(Path(argv[0]).read_text())
    names = [i["name"] for i in job["inputs"]]
    example, calib = _feeds(job["feeds"], names)
    dims = _dims(job["dynamic"])
    shapes = tuple(dims.get(n) for n in names) if dims else None
    module = torch.export.load(job["program"]).module()
    quant = None
    if job["quant"] != "fp32":
        quantizer = linear_only(PT2EQuantizer, get_symmetric_quantization_config(
            is_per_channel=job["per_channel"], is_dynamic=job["quant"] == "int8-dynamic-range"), also_global=True)
        prepared = prepare_pt2e(torch.export.export(module, example, dynamic_shapes=shapes).module(), quantizer)
        if not shapes:  # a static conversion calibrates on the feeds of the example's shapes (else on the example)
            calib = [a for a in calib if [t.shape for t in a] == [t.shape for t in example]] or [example]
        for args in (calib if job["quant"] == "int8-full" else calib[:1]):
            prepared(*args)
        module = convert_pt2e(prepared, fold_quantize=False)
        quant = QuantConfig(pt2e_quantizer=quantizer)
    model = litert_torch.convert(module, example, dynamic_shapes=shapes, quant_config=quant)
    out = Path(job["out"])
    model.export(str(out / "model.tflite"))
    record = {"delegates": ["XNNPACK (LiteRT's default CPU delegate)"], "converter": "litert-torch"}
    signature = {"inputs": job["inputs"], "outputs": job["outputs"], "delegation": record, "quant": job["quant"],
                 "versions": {k: importlib.metadata.version(k) for k in ("litert-torch", "ai-edge-litert", "torch", "numpy")}}
    (out / "signature.json").write_text(json.dumps(signature, indent=1))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
