"""Variant recipes: which compressors, with which configs, build a model's variant set.

A step is (compressor name, config, parent step or None for the fp32 baseline), so
variants compose (e.g. a distilled student, then int8 embeddings). ``default`` is what
``make run`` / ``odbench compress`` builds; ``full`` adds the slow training ones for the
encoder (structured FFN pruning and layer distillation take minutes each on 2 cores).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from odbench.compressors.distill import DistillConfig
from odbench.compressors.embedding import EmbeddingQuantConfig
from odbench.compressors.fused import FusedConfig
from odbench.compressors.inc import IncConfig
from odbench.compressors.lowrank import LowRankConfig
from odbench.compressors.mixed import MixedInt8Config
from odbench.compressors.prune import MagnitudePruneConfig
from odbench.compressors.qat import QatConfig
from odbench.compressors.structured import StructuredPruneConfig


@dataclass(frozen=True)
class Step:
    key: str  # a name for this step within the recipe
    compressor: str
    config: Any
    parent: str | None = None  # another step's key; None = the fp32 baseline
    runtimes: tuple[str, ...] = ()  # the runtimes this variant is built for; () = every runtime
    label: str = ""  # shown next to the variant in every table, e.g. "no fine-tuning" (recorded as config["label"])


def built_for(variant, runtime: str) -> bool:
    """Whether a variant should be benchmarked on ``runtime`` by default: its recipe step's
    ``runtimes`` (recorded as ``config["target_runtimes"]``), or every runtime when none is recorded."""
    targets = (getattr(variant, "config", None) or {}).get("target_runtimes")
    return not targets or runtime in targets


# Static int8 for ONNX Runtime on CPU, only where it pays: MatMuls alone, their outputs left in float,
# i.e. the DQ -> MatMul pattern ORT fuses into MatMulIntegerToFloat (see compressors/inc.py).
ORT_STATIC = IncConfig(approach="static", tune=False, op_types=("MatMul",), float_outputs=("MatMul",), calibration_samples=64)


# The default set: one variant per technique that can pay on CPU, each built for the runtimes where it
# can (measured on AVX2 and AVX-512 EPYCs, results/reference-*): dynamic int8 is ONNX Runtime's kernel
# (MatMulInteger); OpenVINO ran it at 0.5-0.6x its fp32. `full` adds what is informative but slower on
# both runtimes here (static int8 of the CTR MLP, unstructured pruning, SVD, factored and int4 embeddings).
CTR_DEFAULT = (
    Step("sprune50", "prune-structured", StructuredPruneConfig(ratio=0.5, finetune_steps=300, batch_size=256)),
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False), runtimes=("onnxruntime",)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8)),
    Step("distill", "distill", DistillConfig(width=0.5, steps=600, batch_size=256)),
    Step("distill+embint8", "embedding-quant", EmbeddingQuantConfig(bits=8), parent="distill"),
)

CTR_FULL = CTR_DEFAULT + (
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
    Step("int8static", "inc-int8", IncConfig(approach="static", tune=True, tolerance=0.01, max_trials=6)),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.9)),
    Step("embfact", "lowrank-svd", LowRankConfig(target="gather", energy=None, rank=8)),
    Step("embint4", "embedding-quant", EmbeddingQuantConfig(bits=4, block_size=32)),
    Step("prune90", "prune-magnitude", MagnitudePruneConfig(0.9)),
    Step("prune80-layer", "prune-magnitude", MagnitudePruneConfig(0.8, scope="per_layer")),
)

# Each encoder variant costs ~20-70 s to build on 2 cores (INC tuning, and the fidelity
# evaluation over 1,500 documents), so the default set is the three that matter most.
# int8-mixed: the sensitivity scan + fp32 fallback (compressors/mixed.py). How many MatMuls stay fp32 is
# found on the tuning split (max_fp32=None: any number), the goal judged on one-sided 95% lower bounds over 500 tuning
# titles and 1,000 texts (each goal trial embeds them all, ~4x the old 100/400); time_budget_s bounds the whole search.
ENCODER_MIXED = MixedInt8Config(symmetric=False, smooth_alpha=0.7, max_fp32=None, time_budget_s=1200.0)

FFN_OUT = tuple(f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(6))  # MiniLM-L6's FFN output MatMuls (fused graph)

ENCODER_SPRUNE = StructuredPruneConfig(ratio=0.5, finetune_steps=150, batch_size=16)
ENCODER_DISTILL = DistillConfig(depth=0.5, steps=200, batch_size=16)
# 0.7 s per step of 16 texts on 2 idle Xeon cores (4.3 s with the cores shared with emulator jobs). 800 steps, chosen on the
# tuning metric: up to 2,000 steps (plateau after 1,150, checkpoint 950) scored top-10 0.888 on tuning against 0.895 at 800
# (docs/compression.md). lr 1e-5: 5e-5 raised the held-out loss (0.070 -> 0.109 in 100 steps). The time budget bounds it under load.
ENCODER_QAT = QatConfig(smooth_alpha=0.5, lr=1e-5, warmup_steps=50, batch_size=16, max_steps=800, eval_every=50, patience=4,
                        min_delta=0.01, time_budget_s=2400.0)

ENCODER_DEFAULT = (
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False), runtimes=("onnxruntime",)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8)),
)

# int8-mixed's scan and search take minutes on 2 cores: too long for `make run`'s 15-minute budget.
ENCODER_FULL = ENCODER_DEFAULT + (
    # INC's full static QDQ (every MatMul/LayerNorm/Gelu output quantized) is what OpenVINO fuses; on ORT it is slower than
    # fp32. Not in the default: calibrated per tensor on 64 tuning titles it is broken (cosine 0.77 to fp32, top-10 overlap
    # 0.36 on the titles it was calibrated on; docs/compression.md). OpenVINO's own route for transformers is NNCF's
    # model_type=transformer preset (https://docs.openvino.ai/2024/openvino-workflow/model-optimization-guide/quantizing-models-post-training/basic-quantization-flow.html),
    # not installed here.
    Step("int8static", "inc-int8", IncConfig(approach="static", tune=False, calibration_samples=64), runtimes=("openvino",)),
    Step("int8static-tuned", "inc-int8", IncConfig(approach="static", tune=True, tolerance=0.05, max_trials=3, calibration_samples=64),
         runtimes=("openvino",)),
    Step("int8mixed", "int8-mixed", ENCODER_MIXED, runtimes=("onnxruntime",)),
    Step("int8static-ort", "inc-int8", ORT_STATIC, runtimes=("onnxruntime",)),
    Step("int8dyn-tuned", "inc-int8", IncConfig(approach="dynamic", tune=True, tolerance=0.05, max_trials=3)),
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.9)),
    # Trained on the tuning split at max_len 128 with cached teacher targets (models/encoder_train.py), each
    # sized for ~10 minutes of 2-core CPU training.
    Step("sprune50", "prune-structured", ENCODER_SPRUNE),
    Step("distill", "distill", ENCODER_DISTILL),
    Step("distill+int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False), parent="distill"),
    # The fused encoder (compressors/fused.py): eager-attention export fused by ONNX Runtime's BERT optimizer, in fp32,
    # with dynamic int8 on the fused graph (QAttention), and with the attention int8 and the FFN MatMuls fp32.
    Step("fused", "fuse-bert", FusedConfig(), runtimes=("onnxruntime",)),
    Step("fused-int8dyn", "fuse-bert", FusedConfig(quantize="dynamic"), runtimes=("onnxruntime",)),
    Step("fused-int8attn", "fuse-bert", FusedConfig(quantize="dynamic", fp32_op_types=("MatMul",)), runtimes=("onnxruntime",)),
    Step("fused+int8mixed", "int8-mixed", ENCODER_MIXED, parent="fused", runtimes=("onnxruntime",)),
    # SmoothQuant folded into the fused graph's LayerNorms (compressors/smooth_fold.py: no Mul), one scale per packed
    # Q/K/V weight so QAttention quantizes each layer input once; alpha 0.5, the paper's default (Xiao et al., 2023).
    Step("fused-sq-int8dyn", "fuse-bert", FusedConfig(quantize="dynamic", smooth_alpha=0.5), runtimes=("onnxruntime",)),
    Step("fused-sq-int8attn", "fuse-bert", FusedConfig(quantize="dynamic", smooth_alpha=0.5, fp32_op_types=("MatMul",)),
         runtimes=("onnxruntime",)),
    # ... and every MatMul int8 but the six FFN output projections (their input, after GELU, has no LayerNorm to fold into)
    Step("fused-sq-int8-ffnout-fp32", "fuse-bert", FusedConfig(quantize="dynamic", smooth_alpha=0.5, fp32_ops=FFN_OUT),
         runtimes=("onnxruntime",)),
    # Quantization-aware distillation (compressors/qat.py) into the same all-int8 fused graph as fused-sq-int8dyn.
    Step("fused-qat-int8dyn", "qat-int8", ENCODER_QAT, runtimes=("onnxruntime",)),
    # ... and without SmoothQuant (tuning top-10 0.862 against 0.895 with it; 600 steps, plateau)
    Step("fused-qat-nosq-int8dyn", "qat-int8", replace(ENCODER_QAT, smooth_alpha=None), runtimes=("onnxruntime",)),
    # ... and into graphs with FFN output MatMuls fp32 (trained without fake quantization): the first three layers' (the
    # ones int8-mixed's scan ranks most sensitive), then all six (fused-sq-int8-ffnout-fp32's graph)
    Step("fused-qat-ffnout3-fp32", "qat-int8", replace(ENCODER_QAT, fp32_ops=FFN_OUT[:3]), runtimes=("onnxruntime",)),
    Step("fused-qat-ffnout-fp32", "qat-int8", replace(ENCODER_QAT, fp32_ops=FFN_OUT), runtimes=("onnxruntime",)),
)

# A user's own ONNX file (no torch model, no training data we may trust): the default holds only what needs
# no training: dynamic int8, int8-mixed (ORT), int8 embedding tables, and, with an evaluation set
# (--eval, models/user_data.py), static int8 calibrated on the user's tuning rows. Pruning and SVD without
# fine-tuning are `full` only, labelled "no fine-tuning" in every table: they change the outputs and nothing
# retrains the model to recover (on a sentence-transformers MiniLM: cosine 0.917 and 0.941 to fp32).
NO_FT = "no fine-tuning"
# A labelled step's variant id ends in its tag (prune50-global-noft), so that every table, report, gate and
# comparison that names the variant carries the label, not only the ones that read the variant's config.
LABEL_TAGS = {NO_FT: "noft"}
ONNX_INT8DYN = Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False))
ONNX_MIXED = Step("int8mixed", "int8-mixed", MixedInt8Config(calib_samples=8, scan_samples=8), runtimes=("onnxruntime",))
ONNX_EMB = Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8, min_rows=256))
# Static int8 of the MatMuls/Gemms alone, outputs left in float (ORT's MatMulIntegerToFloat pattern): INC's full
# static QDQ also quantizes Gather tables, and ORT then dequantizes the whole table on every call (the CTR
# ranker's 64 MB tables: 28.8 ms vs 0.09 ms fp32 at rank-50, Xeon AVX-512, 2026-12-03, smoke preset, load ~8).
ONNX_STATIC = Step("int8static", "inc-int8", IncConfig(approach="static", tune=False, op_types=("MatMul", "Gemm"),
                                                       float_outputs=("MatMul", "Gemm"), calibration_samples=32))
ONNX_NO_FT = (
    Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5), label=NO_FT),
    Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.95), label=NO_FT),
)
ONNX_DEFAULT = (ONNX_INT8DYN, ONNX_MIXED, ONNX_EMB)
ONNX_FULL = ONNX_DEFAULT + ONNX_NO_FT
EVAL_DEFAULT = (ONNX_INT8DYN, ONNX_STATIC, ONNX_MIXED, ONNX_EMB)
EVAL_FULL = EVAL_DEFAULT + ONNX_NO_FT

# The customer-service classifier has no torch task: graph-level steps only. The default keeps the two
# cheap ones so that `make run` fits its 15 minutes on 2 cores; `full` adds int8-mixed, pruning and SVD.
CLASSIFIER_DEFAULT = (
    Step("int8dyn", "inc-int8", IncConfig(approach="dynamic", tune=False), runtimes=("onnxruntime",)),
    Step("embint8", "embedding-quant", EmbeddingQuantConfig(bits=8, min_rows=256)),
)
CLASSIFIER_FULL = CLASSIFIER_DEFAULT + (ONNX_MIXED, Step("prune50", "prune-magnitude", MagnitudePruneConfig(0.5)),
                                        Step("svd", "lowrank-svd", LowRankConfig(target="matmul", energy=0.95)))

RECIPES: dict[tuple[str, str], tuple[Step, ...]] = {
    ("ctr-ml100k", "default"): CTR_DEFAULT,
    ("ctr-ml100k", "full"): CTR_FULL,
    ("minilm-l6-query", "default"): ENCODER_DEFAULT,
    ("minilm-l6-query", "full"): ENCODER_FULL,
    ("reviews-dept-clf", "default"): CLASSIFIER_DEFAULT,
    ("reviews-dept-clf", "full"): CLASSIFIER_FULL,
    ("onnx", "default"): ONNX_DEFAULT,
    ("onnx", "full"): ONNX_FULL,
    ("onnx-eval", "default"): EVAL_DEFAULT,  # a user's file with its evaluation set (--eval)
    ("onnx-eval", "full"): EVAL_FULL,
}
