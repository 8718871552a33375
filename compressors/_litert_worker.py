"""The LiteRT side of compressors/litert_export.py: ``python -c BOOT odbench.compressors._litert_worker JOB.json``.

Runs in the litert environment (core/envs.py): loads the torch.export program saved by the main
environment, converts it with ``litert_torch.convert`` at the fixed input shapes of the job (litert-torch
0.10 cannot lower a dynamic dim), then, for int8, quantizes the fp32 ``.tflite`` with LiteRT's own
post-training quantizer, AI Edge Quantizer, on the FULLY_CONNECTED ops only (the zoo's ``nn.Linear``
layers; the embedding tables stay float, as LiteRT's EMBEDDING_LOOKUP kernel refuses an int8 table
with a non-zero zero point): ``int8-dynamic-range`` (int8 weights, activations quantized at run time)
and ``int8-full`` (int8 weights and activations, min/max calibrated on the tuning feeds: no histogram
observer). Writes ``model.tflite`` and ``signature.json``. Imports nothing from the project.
Sources: litert-torch README ("PyTorch converter"); AI Edge Quantizer README (recipes
``dynamic_wi8_afp32``, ``static_wi8_ai8``, per-op configs); LiteRT docs "Post-training quantization"
(https://ai.google.dev/edge/litert/models/post_training_quantization).
"""
from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path

from odbench.compressors._executorch_worker import _feeds  # numpy + torch only: no project imports beyond this file's twin

QUANTIZED_OPS = ("FULLY_CONNECTED",)


def quantize_tflite(fp32: bytes, quant: str, per_channel: bool, calib: list) -> bytes:
    """AI Edge Quantizer on the fp32 flatbuffer, FULLY_CONNECTED only; ``calib``: tuple feeds in input order."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import qtyping, quantizer

    gran = qtyping.QuantGranularity.CHANNELWISE if per_channel else qtyping.QuantGranularity.TENSORWISE
    qt = quantizer.Quantizer(bytearray(fp32))
    for op in QUANTIZED_OPS:
        if quant == "int8-dynamic-range":
            qt.add_dynamic_config(regex=".*", operation_name=op, num_bits=8, granularity=gran)
        else:
            qt.add_static_config(regex=".*", operation_name=op, activation_num_bits=8, weight_num_bits=8,
                                 weight_granularity=gran)
    result = None
    if qt.need_calibration:
        interp = Interpreter(model_content=bytes(fp32))
        key = next(iter(interp.get_signature_list()))
        runner = interp.get_signature_runner(key)
        args = sorted(runner.get_input_details(), key=lambda a: int(a.rsplit("_", 1)[-1]))
        types = {a: d["dtype"] for a, d in runner.get_input_details().items()}  # litert-torch makes int64 ids int32
        data = {key: [{a: t.numpy().astype(types[a]) for a, t in zip(args, feed)} for feed in calib]}
        result = qt.calibrate(data, num_threads=1)
    return bytes(qt.quantize(result, enable_progress_report=False).quantized_model)


def main(argv: list[str]) -> int:
    import litert_torch
    import torch

    job = json.loads(Path(argv[0]).read_text())
    names = [i["name"] for i in job["inputs"]]
    example, calib = _feeds(job["feeds"], names)
    module = torch.export.load(job["program"]).module()
    out = Path(job["out"])
    model = litert_torch.convert(module, example)
    model.export(str(out / "model.tflite"))
    if job["quant"] != "fp32":
        data = quantize_tflite((out / "model.tflite").read_bytes(), job["quant"], job["per_channel"],
                               calib if job["quant"] == "int8-full" else [])
        (out / "model.tflite").write_bytes(data)
    record = {"delegates": ["XNNPACK (LiteRT's default CPU delegate)"], "converter": "litert-torch",
              **({"quantizer": "ai-edge-quantizer", "quantized_ops": list(QUANTIZED_OPS),
                  "calibration_feeds": len(calib) if job["quant"] == "int8-full" else 0} if job["quant"] != "fp32" else {})}
    signature = {"inputs": job["inputs"], "outputs": job["outputs"], "delegation": record, "quant": job["quant"],
                 "static_shapes": job.get("static_shapes"), "pad_axes": job.get("pad_axes", {}),
                 "versions": {k: importlib.metadata.version(k)
                              for k in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer", "torch", "numpy")}}
    (out / "signature.json").write_text(json.dumps(signature, indent=1))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
