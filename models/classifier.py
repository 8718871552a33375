"""Customer-service message router: a real review routed to its department.

The seed article's third on-device scenario: a customer message classified on the device.
Data: the Women's Clothing E-Commerce reviews (real customer text), label = ``Department Name``
(Bottoms, Dresses, Intimate, Jackets, Tops, Trend). Model: the zoo's all-MiniLM-L6-v2 encoder
(mean pooling, L2-normalised; models/encoder.py) with a linear head trained on its frozen
embeddings (class-weighted cross-entropy, early stopping on validation macro-F1).

Splits (reviews with a text and a department, deduplicated by text, shuffled once):
``n_test`` evaluation messages, ``n_val`` validation (head early stopping; compressors'
calibration and tuning metric) and ``n_train`` training messages, pairwise disjoint.

ONNX inputs: input_ids, attention_mask (int64 [batch, seq], both axes dynamic).
Output: logits float32 [batch, n_classes].

Metrics on the test split: ``accuracy`` and ``macro_f1`` (task, with paired bootstrap intervals and
deltas vs the fp32 baseline), ``agreement`` with the fp32 predictions (fidelity).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from odbench.core.feeds import save_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import Variant
from odbench.models import metrics as M
from odbench.models.base import FeedSet, config_hash, make_variant, split_record, write_torch_sidecar
from odbench.models.data import clothing_reviews
from odbench.models.encoder import build_module, encode_batch, tokenizer

CODE_VERSION = 2
FP32_PREDS = "fp32_test_preds.npy"


@dataclass(frozen=True)
class ClassifierConfig:
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 1000
    max_len: int = 128
    epochs: int = 300  # full-batch steps of the linear head, at most
    lr: float = 0.05
    weight_decay: float = 1e-4
    seed: int = 0
    offline_batch: int = 32
    classify_feeds: int = 200


class ClassifierData:
    def __init__(self, cfg: ClassifierConfig):
        df = clothing_reviews()
        text = df["Review Text"].astype(str).str.strip()
        ok = df["Review Text"].notna() & df["Department Name"].notna() & (text.str.len() > 20)
        rows = text[ok].drop_duplicates().index.to_numpy()
        rows = rows[np.random.default_rng(cfg.seed).permutation(len(rows))]
        self.classes = sorted(df.loc[rows, "Department Name"].unique())
        n_test, n_val = cfg.n_test, cfg.n_val
        self.ids = {"test": rows[:n_test], "validation": rows[n_test : n_test + n_val],
                    "train": rows[n_test + n_val : n_test + n_val + cfg.n_train]}
        label = df["Department Name"].map({c: i for i, c in enumerate(self.classes)})
        self.texts = {k: text[v].tolist() for k, v in self.ids.items()}
        self.labels = {k: label[v].to_numpy(np.int64) for k, v in self.ids.items()}


class Classifier:
    """The torch module: encoder + linear head; forward(input_ids, attention_mask) -> logits."""

    @staticmethod
    def make(head_weight: np.ndarray | None = None, head_bias: np.ndarray | None = None, n_classes: int = 6):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = build_module()
                self.head = torch.nn.Linear(384, n_classes)

            def forward(self, input_ids, attention_mask):
                return self.head(self.encoder(input_ids, attention_mask))

        net = Net().eval()
        if head_weight is not None:
            with torch.no_grad():
                net.head.weight.copy_(torch.from_numpy(head_weight))
                net.head.bias.copy_(torch.from_numpy(head_bias))
        return net


def train_head(x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, n_classes: int, cfg: ClassifierConfig):
    """Multinomial logistic regression on frozen embeddings; keeps the step with the best validation macro-F1."""
    import torch

    torch.manual_seed(cfg.seed)
    head = torch.nn.Linear(x.shape[1], n_classes)
    counts = np.bincount(y, minlength=n_classes).astype(np.float32)
    weight = torch.from_numpy(len(y) / (n_classes * np.maximum(counts, 1)))  # balanced class weights
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt, yt, xvt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(xv)
    best, best_state, best_step = -1.0, None, 0
    for step in range(cfg.epochs):
        loss = torch.nn.functional.cross_entropy(head(xt), yt, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:
            with torch.no_grad():
                f1 = M.macro_f1(yv, head(xvt).argmax(1).numpy(), np.arange(n_classes))
            if f1 > best:
                best, best_step = f1, step + 1
                best_state = (head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy())
            elif step + 1 - best_step >= 50:  # early stopping: 50 steps without a better validation macro-F1
                break
    return best_state, {"val_macro_f1": round(best, 4), "best_step": best_step}


class ClassifierModel:
    name = "reviews-dept-clf"
    description = "customer-message router: MiniLM-L6 + linear head, real reviews -> department (6 classes)"
    scenarios = ("classify", "offline")
    output_kind = "values"  # logits per class
    headline = "classify"
    primary_metric = "macro_f1"  # the task metric tables and budgets lead with
    fidelity_metric = "agreement"

    def __init__(self, config: ClassifierConfig | None = None):
        self.config = config or ClassifierConfig()

    @cached_property
    def data(self) -> ClassifierData:
        return ClassifierData(self.config)

    @cached_property
    def tok(self):
        return tokenizer(self.config.max_len)

    def _dir(self, cache: Path) -> Path:
        return cache / "models" / self.name / config_hash(self.config, CODE_VERSION)

    def _logits(self, run, texts: list[str], batch: int = 32) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])  # similar lengths together: less padding
        out = np.zeros((len(texts), len(self.data.classes)), dtype=np.float32)
        for s in range(0, len(texts), batch):
            idx = order[s : s + batch]
            out[idx] = np.asarray(run(encode_batch(self.tok, [texts[i] for i in idx]))[0])
        return out

    def build(self, cache: Path, log=print) -> Variant:
        root = self._dir(cache)
        meta = root / "fp32" / "variant.json"
        write_torch_sidecar(self, root / "fp32", cache)
        if meta.exists():
            return Variant.load(meta)
        import torch

        t0 = time.perf_counter()
        encoder = build_module()
        d = self.data

        def embed(feed):
            with torch.no_grad():
                return [encoder(torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])).numpy()]

        log(f"training {self.name}: embedding {len(d.texts['train'])} + {len(d.texts['validation'])} messages ...")
        n = len(d.classes)
        x_train = self._embed(embed, d.texts["train"])
        x_val = self._embed(embed, d.texts["validation"])
        (w, b), info = train_head(x_train, d.labels["train"], x_val, d.labels["validation"], n, self.config)
        root.mkdir(parents=True, exist_ok=True)
        np.savez(root / "head.npz", weight=w, bias=b)
        net = Classifier.make(w, b, n)
        onnx_path = root / "fp32" / "model.onnx"
        self.export(net, onnx_path)
        run = ort_run_fn(onnx_path)
        logits = self._logits(run, d.texts["test"])
        np.save(root / FP32_PREDS, logits.argmax(1))
        sample = encode_batch(self.tok, d.texts["test"][:8])
        with torch.no_grad():
            t = net(torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])).numpy()
        info["build_s"] = round(time.perf_counter() - t0, 1)
        variant = make_variant(
            self.name, "fp32", onnx_path, self.scenarios,
            config={"model": asdict(self.config), "classes": d.classes, **info,
                    "trained_on": split_record("train+validation", self.split_ids("train+validation"))},
            accuracy=self._score(logits, cache),
            parity={"max_abs_diff_vs_torch": float(np.max(np.abs(np.asarray(run(sample)[0]) - t)))},
        )
        variant.save(meta)
        return variant

    def _embed(self, fn, texts: list[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for s in range(0, len(texts), 32):
            idx = order[s : s + 32]
            out[idx] = fn(encode_batch(self.tok, [texts[i] for i in idx]))[0]
        return out

    def export(self, net, onnx_path: Path) -> None:
        import torch

        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        sample = encode_batch(self.tok, self.data.texts["test"][:2])
        with torch.no_grad():
            torch.onnx.export(
                net.eval(), (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"])), str(onnx_path),
                input_names=["input_ids", "attention_mask"], output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
                opset_version=17, dynamo=False,
            )

    def load_torch(self, cache: Path):
        self.build(cache)
        with np.load(self._dir(cache) / "head.npz") as z:
            return Classifier.make(z["weight"], z["bias"], len(self.data.classes))

    def evaluate(self, run, cache: Path | None = None) -> dict[str, float]:
        return self._score(self._logits(run, self.data.texts["test"]), cache)

    def _score(self, logits: np.ndarray, cache: Path | None) -> dict[str, float]:
        y = self.data.labels["test"]
        pred = M.pessimistic_argmax(logits, y)  # NaN/inf logits: an error with the reason; a tie is never correct
        classes = np.unique(y)  # fixed across resamples: a rare class missing from one counts F1 0
        base_path = self._dir(cache) / FP32_PREDS if cache is not None else None
        base = np.load(base_path) if base_path is not None and base_path.exists() else None
        out = M.with_intervals("accuracy", M.bootstrap_mean((pred == y).astype(float), None if base is None else (base == y).astype(float)))
        f1 = M.bootstrap_metric(lambda a, b: M.macro_f1(a, b, classes), (y, pred), None if base is None else (y, base), seed=1)
        out.update(M.with_intervals("macro_f1", f1))
        if base is not None:
            out.update(M.with_intervals("agreement", M.bootstrap_mean((pred == base).astype(float), seed=2)))
        return out

    def majority_baseline(self) -> dict[str, float]:
        """Accuracy and macro-F1 of always answering the training split's most frequent class."""
        y, n = self.data.labels["test"], len(self.data.classes)
        pred = np.full_like(y, np.bincount(self.data.labels["train"], minlength=n).argmax())
        return {"accuracy": float(np.mean(pred == y)), "macro_f1": M.macro_f1(y, pred, np.unique(y))}

    def split_ids(self, name: str) -> np.ndarray:
        ids = self.data.ids
        return np.concatenate([ids["train"], ids["validation"]]) if name == "train+validation" else ids[name]

    def tuned_on(self, cache: Path | None = None) -> dict:
        return split_record("validation", self.split_ids("validation"))

    def calibration_feeds(self, n: int, cache: Path | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` real validation messages at batch 1, each at its own length."""
        return [encode_batch(self.tok, [t]) for t in self.data.texts["validation"][:n]]

    def tuning_metric(self, run, cache: Path | None = None) -> float:
        """Accuracy on the validation split (disjoint from the test split)."""
        pred = self._logits(run, self.data.texts["validation"]).argmax(1)
        return float(np.mean(pred == self.data.labels["validation"]))

    def feeds(self, scenario: str, cache: Path) -> FeedSet:
        if scenario not in self.scenarios:
            raise ValueError(f"{self.name} has no scenario {scenario!r}; it has {self.scenarios}")
        path = self._dir(cache) / "feeds" / f"{scenario}.npz"
        texts = self.data.texts["test"]
        if scenario == "classify":
            items = 1
            if not path.exists():  # one real message at a time, at its own token length
                order = np.random.default_rng(7).permutation(len(texts))[: self.config.classify_feeds]
                save_feeds([encode_batch(self.tok, [texts[i]]) for i in order], path)
        else:
            items = self.config.offline_batch
            if not path.exists():
                save_feeds([encode_batch(self.tok, texts[s : s + items]) for s in range(0, items * 8, items)], path)
        return FeedSet(path, items)

    def info(self) -> dict:
        return {"config": asdict(self.config)}
