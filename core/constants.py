"""Names shared by several layers."""
from __future__ import annotations

REFERENCE_RUNTIME = "onnxruntime"  # references are computed on it; its default-option cells need no runtime check


# Runtimes that benchmark real inference (the doubles above are excluded from default matrices).
INFERENCE_RUNTIMES = ("onnxruntime", "openvino", "torch", "mnn")

# Phone runtimes, each in an environment of its own (core/envs.py): one flag away (`odbench run --runtime executorch`).
MOBILE_RUNTIMES = ("executorch", "litert")
