"""Variant recipes: which compressors, with which configs, build a model's variant set.

A step is (compressor name, config, parent step or None for the fp32 baseline), so
variants compose (e.g. a distilled student, then int8 embeddings). ``default`` is what
``make run`` / ``odbench compress`` builds; ``full`` adds the slow training ones for the
encoder (structured FFN pruning and layer distillation take minutes each on 2 cores).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compressors.distill import DistillConfig
from compressors.embedding import EmbeddingQuantConfig
from compressors.inc import IncConfig
from compressors.lowrank import LowRankConfig
from compressors.prune import MagnitudePruneConfig
from compressors.structured import StructuredPruneConfig


@dataclass(frozen=True)
class Step:
    key: str  # a name for this step within the recipe
    compressor: str
    config: Any
    parent: str | None = None  # another step's key; None = the fp32 baseline


CTR_DEFAULT = (
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
    Step("sprune50", "prune-structured", StructuredPruneConfig(ratio=0.5, finetune_steps=300, batch_size=256)),
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False)),
    Step("int8static", "inc-int8", IncConfig(approach="static", tune=True, tolerance=0.01, max_trials=6)),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.9)),
    Step("embfact", "lowrank-svd", LowRankConfig(target="gather", energy=None, rank=8)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8)),
    Step("embint4", "embedding-quant", EmbeddingQuantConfig(bits=4, block_size=32)),
    Step("distill", "distill", DistillConfig(width=0.5, steps=600, batch_size=256)),
    Step("distill+embint8", "embedding-quant", EmbeddingQuantConfig(bits=8), parent="distill"),
)

CTR_FULL = CTR_DEFAULT + (
    Step("prune90", "prune-magnitude", MagnitudePruneConfig(0.9)),
    Step("prune80-layer", "prune-magnitude", MagnitudePruneConfig(0.8, scope="per_layer")),
)

# Each encoder variant costs ~20-70 s to build on 2 cores (INC tuning, and the fidelity
# evaluation over 1,500 documents), so the default set is the three that matter most.
ENCODER_DEFAULT = (
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False)),
    Step("int8static", "inc-int8", IncConfig(approach="static", tune=True, tolerance=0.05, max_trials=3, calibration_samples=64)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8)),
)

ENCODER_FULL = ENCODER_DEFAULT + (
    Step("int8dyn-tuned", "inc-int8", IncConfig(approach="dynamic", tune=True, tolerance=0.05, max_trials=3)),
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.9)),
    Step("sprune50", "prune-structured", StructuredPruneConfig(ratio=0.5, finetune_steps=150, batch_size=32)),
    Step("distill", "distill", DistillConfig(depth=0.5, steps=300, batch_size=32)),
    Step("distill+int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False), parent="distill"),
)

# Graph-only steps for a user's own ONNX file (no torch model): int8, pruning, SVD, Gather quantization.
ONNX_DEFAULT = (
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False)),
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.95)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8, min_rows=256)),
)

RECIPES: dict[tuple[str, str], tuple[Step, ...]] = {
    ("ctr-ml100k", "default"): CTR_DEFAULT,
    ("ctr-ml100k", "full"): CTR_FULL,
    ("minilm-l6-query", "default"): ENCODER_DEFAULT,
    ("minilm-l6-query", "full"): ENCODER_FULL,
    ("reviews-dept-clf", "default"): ONNX_DEFAULT,  # the graph-level steps (no torch_task for this model)
    ("reviews-dept-clf", "full"): ONNX_DEFAULT,
    ("onnx", "default"): ONNX_DEFAULT,
    ("onnx", "full"): ONNX_DEFAULT,
}
