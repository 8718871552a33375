"""The encoder's training objective for pruning fine-tunes and layer distillation (models/encoder.py's
``torch_task``), set up as transformer distillation usually is:

* data: the tuning split only (titles and review texts, disjoint from evaluation), tokenised at the
  evaluation's ``max_len`` (real lengths, padded to the longest text of each batch);
* teacher outputs cached: one teacher pass per batch, kept in memory and on disk (float16 hidden
  states, float32 pooled embeddings), so pruning and distillation share them and steps cost only the student;
* losses: token level, MSE between the student's and teacher's last hidden states over real tokens
  (normalised by the teacher's mean square; TinyBERT, Jiao et al. 2020, eq. 7-8; MiniLM, Wang et al. 2020,
  distils the last layer), plus pooled, ``1 - cosine`` of the mean-pooled L2-normalised embeddings, the
  quantity retrieval ranks by (Sanh et al. 2019, DistilBERT, cosine embedding loss);
* the optimiser side is the TorchTask's: embeddings frozen, dropout off, AdamW with warmup and linear decay.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

Tokenise = Callable[[list[str]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class EncoderObjective:
    token_weight: float = 1.0  # hidden-state MSE / teacher mean square
    pooled_weight: float = 10.0  # 1 - cosine of the pooled embeddings (small numbers: weighted up)


def batch_plan(n_titles: int, n_texts: int, batch: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """One epoch over the tuning split: title batches and text batches alternating (each batch holds
    one kind, so a batch of short titles is not padded to review length)."""
    rng = np.random.default_rng(seed)
    t = rng.permutation(n_titles)
    d = rng.permutation(n_texts)
    titles = [("title", t[s : s + batch]) for s in range(0, n_titles - batch + 1, batch)]
    texts = [("text", d[s : s + batch]) for s in range(0, n_texts - batch + 1, batch)]
    plan = []
    for i in range(max(len(titles), len(texts))):
        plan += ([texts[i]] if i < len(texts) else []) + ([titles[i]] if i < len(titles) else [])
    return plan


def hidden_and_pooled(module, ids, mask):
    """(last hidden states, mean-pooled L2-normalised embedding) of a MeanPoolEncoder-shaped module."""
    import torch

    h = module.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(h.dtype)
    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return h, torch.nn.functional.normalize(pooled, p=2, dim=-1)


class TeacherCache:
    """Teacher targets per batch of the plan, computed once, saved to ``path`` (torch.save)."""

    def __init__(self, teacher, path: Path):
        import torch

        self.teacher, self.path = teacher, path
        self.entries: dict[int, tuple] = torch.load(path) if path.exists() else {}
        self.dirty = False

    def get(self, i: int, ids, mask) -> tuple:
        import torch

        if i not in self.entries:
            with torch.no_grad():
                h, p = hidden_and_pooled(self.teacher.eval(), ids, mask)
            self.entries[i] = (h.to(torch.float16), p)
            self.dirty = True
        h, p = self.entries[i]
        return h.float(), p

    def save(self) -> None:
        import torch

        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(self.entries, self.path)
            self.dirty = False


def make_batches(titles: list[str], texts: list[str], tokenise: Tokenise, teacher, cache_dir: Path, tag: str):
    """``batches(steps, batch, seed)`` for TorchTask: (input_ids, attention_mask) and, as labels,
    the cached teacher targets. Steps beyond one epoch cycle through the plan again."""
    import torch

    def batches(steps: int, batch: int, seed: int) -> Iterator[tuple[tuple, tuple]]:
        plan = batch_plan(len(titles), len(texts), batch, seed)
        cache = TeacherCache(teacher, cache_dir / f"teacher-{tag}-b{batch}-s{seed}.pt")
        for step in range(steps):
            i = step % len(plan)
            kind, rows = plan[i]
            source = titles if kind == "title" else texts
            feed = tokenise([source[r] for r in rows])
            ids, mask = torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])
            yield (ids, mask), cache.get(i, ids, mask)
        cache.save()

    return batches


def make_loss(objective: EncoderObjective):
    import torch

    def loss(student, teacher, inputs, labels, temperature, alpha):
        ids, mask = inputs
        h_t, p_t = labels
        h, p = hidden_and_pooled(student, ids, mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        denom = m.sum() * h.shape[-1]
        scale = ((h_t**2) * m).sum() / denom
        token = (((h - h_t) ** 2) * m).sum() / denom / scale.clamp(min=1e-12)
        pooled = (1 - torch.nn.functional.cosine_similarity(p, p_t, dim=-1)).mean()
        return objective.token_weight * token + objective.pooled_weight * pooled

    return loss


# ------------------------------------------------------------------ layer-wise distillation (quantization-aware, compressors/qat.py)


@dataclass(frozen=True)
class LayerObjective:
    """TinyBERT-style (Jiao et al. 2020, eq. 7-8: hidden-state MSE at every layer) plus the pooled embedding."""

    token_weight: float = 1.0  # last hidden states: MSE / teacher mean square
    # intermediate layers 1..L-1 (the embedding output, frozen and never quantized, is left out): mean of their MSEs
    layer_weight: float = 1.0
    pooled_weight: float = 10.0  # 1 - cosine of the pooled embeddings


def layers_and_pooled(module, ids, mask):
    """(hidden states of every layer, embeddings first; mean-pooled L2-normalised embedding)."""
    import torch

    hs = module.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    m = mask.unsqueeze(-1).to(hs[-1].dtype)
    pooled = (hs[-1] * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return tuple(hs), torch.nn.functional.normalize(pooled, p=2, dim=-1)


def _relative_mse(h, h_t, m):
    denom = m.sum() * h.shape[-1]
    return (((h - h_t) ** 2) * m).sum() / denom / (((h_t**2) * m).sum() / denom).clamp(min=1e-12)


def make_layer_loss(objective: LayerObjective):
    import torch

    def loss(student, inputs, targets, parts: dict | None = None):
        ids, mask = inputs
        hs_t, p_t = targets
        hs, p = layers_and_pooled(student, ids, mask)
        m = mask.unsqueeze(-1).to(hs[-1].dtype)
        last = _relative_mse(hs[-1], hs_t[-1], m)
        mid = torch.stack([_relative_mse(hs[i], hs_t[i], m) for i in range(1, len(hs) - 1)]).mean() if len(hs) > 2 else last * 0
        pooled = (1 - torch.nn.functional.cosine_similarity(p, p_t, dim=-1)).mean()
        total = objective.token_weight * last + objective.layer_weight * mid + objective.pooled_weight * pooled
        if parts is not None:
            parts.update(last=float(last.detach()), layers=float(mid.detach()), pooled=float(pooled.detach()), total=float(total.detach()))
        return total

    return loss


def make_pool_batches(titles: list[str], texts: list[str], tokenise: Tokenise, teacher, holdout: int):
    """(``batches(steps, batch, seed)``, ``holdout()``) over a pool of (title, text) rows: the last ``holdout``
    rows' titles and texts are the held-out slice (never in a training batch), the rest are trained on, title and
    text batches alternating (``batch_plan``), cycling. Teacher targets of every layer are computed per batch with
    no gradient (caching 7 layers of hidden states for ~17,000 texts would take gigabytes); the held-out slice's
    are computed once and kept."""
    import torch

    n = len(titles) - holdout

    def targets(feed):
        ids, mask = torch.from_numpy(feed["input_ids"]), torch.from_numpy(feed["attention_mask"])
        with torch.no_grad():
            hs, p = layers_and_pooled(teacher.eval(), ids, mask)
        return (ids, mask), (hs, p)

    def batches(steps: int, batch: int, seed: int) -> Iterator[tuple[tuple, tuple]]:
        plan = batch_plan(n, n, batch, seed)
        for step in range(steps):
            kind, rows = plan[step % len(plan)]
            source = titles if kind == "title" else texts
            yield targets(tokenise([source[r] for r in rows]))

    kept: list = []

    def held_out(batch: int = 32) -> list:
        if not kept:
            for source in (titles, texts):
                rest = source[n:]
                kept.extend(targets(tokenise(rest[s : s + batch])) for s in range(0, len(rest), batch))
        return kept

    return batches, held_out
