"""CTR ranking model for on-device re-ranking, trained on MovieLens-100k.

DLRM-style: hashed user/item ID embedding tables sized like a real catalog, small
categorical tables (gender, occupation, age bucket), a bottom MLP over dense features,
pairwise dot-product interactions, and a top MLP. Label: rating >= 4. Split by time:
the first 80% of ratings (by timestamp) train, the last 20% test.

ONNX inputs (batch axis dynamic):
    user_id int64 [B], item_id int64 [B]   raw MovieLens IDs; hashed inside the graph, every
                                           intermediate inside int32 (see ``portable_hash``)
    cat     int64 [B, 3]                   gender, occupation, age bucket
    dense   float32 [B, 23]                19 genres, release year, age, item and user popularity
Output: score float32 [B], the click (like) probability.

Splits (by time, rows of the time-sorted ratings): the first 72% fit, the next 8% validate
(early stopping, compressors' tuning and calibration), the last 20% test (evaluation only).
The number of epochs is chosen on the validation split (early stopping while training on fit); the
ranker is then refit on fit+validation for that many epochs, so it sees the same rows as the logistic
regression baseline and as every CTR variant trained by a compressor (``torch_task``).

Intervals resample users (a cluster bootstrap, models/metrics.py): the test period's ratings come
from ~300 users, and ratings of one user are not independent.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from odbench.core.feeds import save_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import TorchTask, Variant
from odbench.models import metrics as M
from odbench.models.base import FeedSet, auc_logloss, config_hash, make_variant, split_record, write_torch_sidecar
from odbench.models.data import movielens_100k

CODE_VERSION = 4  # 4: refit on fit+validation for the validation-chosen epochs
FP32_SCORES = "fp32_test_scores.npy"
AGE_BINS = (18, 25, 35, 45, 50, 56)
HASH_MULT = 2654435761  # Knuth's multiplicative hash (legacy "int64" hash: ids * mult overflows int32)
# Portable hash: split the id into two base-4096 digits and scatter each with a prime multiplier.
# Every intermediate stays below 2**24, so it is exact in int32 (OpenVINO's CPU plugin and MNN run
# int64 graphs in int32) and even in float32: measured here, OpenVINO 2026.4's CPU Mod on integers is
# off by one above ~2**24, as float32 arithmetic would be. Contract: raw ids below 2**24 (16.7M);
# a bigger id space must be folded in the feature pipeline first.
HASH_P = 4096
HASH_A, HASH_B = 4093, 3061  # primes: ids below 4096 get distinct rows in any table of >= 4096 rows
ID_LIMIT = HASH_P**2


@dataclass(frozen=True)
class CtrConfig:
    hash_rows: int = 250_000  # rows per ID table: 2 tables x 250k x 32 x 4 B = 64 MB
    emb_dim: int = 32
    bottom: tuple[int, ...] = (64,)
    top: tuple[int, ...] = (256, 128)
    epochs: int = 8  # at most: early stopping usually ends it sooner
    batch_size: int = 512
    lr_dense: float = 2e-3
    lr_sparse: float = 1e-2
    seed: int = 0
    train_frac: float = 0.8
    val_frac: float = 0.1  # the last 10% of the training period: early stopping and tuning
    patience: int = 1  # epochs without a better validation AUC before training stops
    id_hash: str = "int32"  # "int32" (portable) | "int64" (the legacy Knuth hash; a parity test fixture)


class CtrData:
    """MovieLens-100k joined and featurised, with the time split."""

    def __init__(self, cfg: CtrConfig):
        import pandas as pd

        ratings, users, items = movielens_100k()
        self.genres = [c for c in items.columns if c not in ("movie_id", "movie_title", "release_date", "video_release_date", "IMDb_URL")]
        ratings = ratings.sort_values("timestamp", kind="stable").reset_index(drop=True)
        n_train = int(len(ratings) * cfg.train_frac)
        self.n_fit = int(n_train * (1 - cfg.val_frac))
        train, test = ratings.iloc[:n_train], ratings.iloc[n_train:]
        self.row_ids = {"fit": np.arange(self.n_fit), "validation": np.arange(self.n_fit, n_train),
                        "test": np.arange(n_train, len(ratings))}  # positions in the time-sorted ratings

        occupations = sorted(users["occupation"].unique())
        u = users.set_index("user_id")
        self.user_cat = {
            uid: (int(row.gender == "F"), occupations.index(row.occupation), int(np.digitize(row.age, AGE_BINS)))
            for uid, row in u.iterrows()
        }
        self.user_age = (u["age"] / 50.0).to_dict()
        year = pd.to_datetime(items["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
        year = year.fillna(year.median())
        it = items.assign(year=(year - 1990.0) / 10.0).set_index("movie_id")
        self.item_dense = {mid: np.concatenate([row[self.genres].to_numpy(np.float32), [np.float32(row.year)]])
                           for mid, row in it.iterrows()}
        # Popularity from the training period only: no peeking at the test period.
        self.item_pop = np.log1p(train["movie_id"].value_counts()).div(5.0).to_dict()
        self.user_pop = np.log1p(train["user_id"].value_counts()).div(5.0).to_dict()
        self.item_ids = np.array(sorted(it.index), dtype=np.int64)
        self.train = self.featurise(train["user_id"].to_numpy(), train["movie_id"].to_numpy())
        self.train_y = (train["rating"].to_numpy() >= 4).astype(np.float32)
        self.test = self.featurise(test["user_id"].to_numpy(), test["movie_id"].to_numpy())
        self.test_y = (test["rating"].to_numpy() >= 4).astype(np.float32)
        self.test_users = np.unique(test["user_id"].to_numpy())

    def split(self, name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(features, labels) of the "fit" or "validation" part of the training period, or of "test"."""
        if name == "test":
            return self.test, self.test_y
        sl = slice(0, self.n_fit) if name == "fit" else slice(self.n_fit, None)
        return {k: v[sl] for k, v in self.train.items()}, self.train_y[sl]

    @property
    def n_dense(self) -> int:
        return len(self.genres) + 4

    def featurise(self, user_ids: np.ndarray, item_ids: np.ndarray) -> dict[str, np.ndarray]:
        user_ids = np.asarray(user_ids, dtype=np.int64)
        item_ids = np.asarray(item_ids, dtype=np.int64)
        cat = np.array([self.user_cat[int(u)] for u in user_ids], dtype=np.int64).reshape(-1, 3)
        dense = np.stack(
            [
                np.concatenate(
                    [self.item_dense[int(i)], [self.user_age[int(u)], self.item_pop.get(int(i), 0.0), self.user_pop.get(int(u), 0.0)]]
                )
                for u, i in zip(user_ids, item_ids)
            ]
        ).astype(np.float32).reshape(-1, self.n_dense)
        return {"user_id": user_ids, "item_id": item_ids, "cat": cat, "dense": dense}


def portable_hash(ids, rows: int):
    """Row of each id (< 2**24) in a ``rows``-row table (< 2**23), every intermediate below 2**24."""
    import torch

    lo = ids % HASH_P
    hi = torch.div(ids, HASH_P, rounding_mode="floor") % HASH_P
    return ((lo * HASH_A) % rows + (hi * HASH_B) % rows) % rows


def legacy_hash(ids, rows: int):
    """The original hash: ids * 2654435761 needs int64 and wraps in int32 (the parity test fixture)."""
    return (ids * HASH_MULT) % rows


def build_net(cfg: CtrConfig, n_dense: int, cat_sizes=(2, 21, 7)):
    import torch
    from torch import nn

    if cfg.id_hash not in ("int32", "int64"):
        raise ValueError(f"id_hash {cfg.id_hash!r}: expected 'int32' or 'int64'")
    id_hash = portable_hash if cfg.id_hash == "int32" else legacy_hash

    class CtrNet(nn.Module):
        def __init__(self):
            super().__init__()
            d = cfg.emb_dim
            self.hash_rows = cfg.hash_rows
            self.user = nn.Embedding(cfg.hash_rows, d, sparse=True)
            self.item = nn.Embedding(cfg.hash_rows, d, sparse=True)
            for table in (self.user, self.item):
                nn.init.normal_(table.weight, std=0.01)
            self.cats = nn.ModuleList(nn.Embedding(n, d) for n in cat_sizes)
            layers, width = [], n_dense
            for h in cfg.bottom:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            self.bottom = nn.Sequential(*layers, nn.Linear(width, d), nn.ReLU())
            n_vec = 3 + len(cat_sizes)
            iu = torch.triu_indices(n_vec, n_vec, offset=1)
            self.register_buffer("pairs", iu[0] * n_vec + iu[1], persistent=False)
            layers, width = [], d + iu.shape[1]
            for h in cfg.top:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            self.top = nn.Sequential(*layers, nn.Linear(width, 1))

        def logits(self, user_id, item_id, cat, dense):
            x = self.bottom(dense)
            vecs = [self.user(id_hash(user_id, self.hash_rows)), self.item(id_hash(item_id, self.hash_rows))]
            vecs += [emb(cat[:, k]) for k, emb in enumerate(self.cats)] + [x]
            v = torch.stack(vecs, dim=1)
            z = torch.bmm(v, v.transpose(1, 2)).flatten(1)[:, self.pairs]
            return self.top(torch.cat([x, z], dim=1)).squeeze(1)

        def forward(self, user_id, item_id, cat, dense):
            return torch.sigmoid(self.logits(user_id, item_id, cat, dense))

    return CtrNet()


def _as_torch(batch: dict[str, np.ndarray]):
    import torch

    return [torch.from_numpy(batch[k]) for k in ("user_id", "item_id", "cat", "dense")]


def _predict(fn, data: dict[str, np.ndarray], chunk: int = 8192) -> np.ndarray:
    n = len(data["user_id"])
    return np.concatenate([np.asarray(fn({k: v[s : s + chunk] for k, v in data.items()})[0]).reshape(-1) for s in range(0, n, chunk)])


def _fit_epochs(cfg: CtrConfig, data: CtrData, rows: dict[str, np.ndarray], y: np.ndarray, epochs: int, log, label: str,
                val: tuple | None = None):
    """Train a fresh net (seeded) on ``rows`` for ``epochs``; with ``val``, early stopping on it.
    Returns (net at its best epoch, best epoch, validation AUC history)."""
    import torch
    from torch import nn

    torch.manual_seed(cfg.seed)
    net = build_net(cfg, data.n_dense)
    sparse = [net.user.weight, net.item.weight]
    dense = [p for p in net.parameters() if all(p is not s for s in sparse)]
    opt_sparse = torch.optim.SparseAdam(sparse, lr=cfg.lr_sparse)
    opt_dense = torch.optim.Adam(dense, lr=cfg.lr_dense)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(y)
    rng = np.random.default_rng(cfg.seed)
    best, best_state, history, best_epoch = -1.0, None, [], epochs
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        for s in range(0, n, cfg.batch_size):
            idx = order[s : s + cfg.batch_size]
            u, i, c, d = _as_torch({k: v[idx] for k, v in rows.items()})
            loss = loss_fn(net.logits(u, i, c, d), torch.from_numpy(y[idx]))
            opt_sparse.zero_grad()
            opt_dense.zero_grad()
            loss.backward()
            opt_sparse.step()
            opt_dense.step()
        net.eval()
        if val is None:
            log(f"  ctr {label} epoch {epoch + 1}/{epochs} ({time.perf_counter() - t0:.1f}s)")
            continue
        with torch.no_grad():
            val_auc = auc_logloss(val[1], _predict(lambda b: [net(*_as_torch(b)).numpy()], val[0]))["auc"]
        history.append(round(val_auc, 4))
        log(f"  ctr {label} epoch {epoch + 1}/{epochs}: val AUC {val_auc:.4f} ({time.perf_counter() - t0:.1f}s)")
        if val_auc > best:
            best, best_state, best_epoch = val_auc, {k: v.clone() for k, v in net.state_dict().items()}, epoch + 1
        elif epoch + 1 - best_epoch >= cfg.patience:
            log(f"  ctr: early stop (no better validation AUC for {cfg.patience} epoch(s)); best epoch {best_epoch}")
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), best_epoch, history


def train(cfg: CtrConfig, data: CtrData, log=print):
    """Choose the epochs on the validation split (train on fit, early stopping), then refit a fresh
    net with the same seed on fit+validation for that many epochs: the ranker the suite ships."""
    t0 = time.perf_counter()
    fit, fit_y = data.split("fit")
    _, best_epoch, history = _fit_epochs(cfg, data, fit, fit_y, cfg.epochs, log, "select", val=data.split("validation"))
    net, _, _ = _fit_epochs(cfg, data, data.train, data.train_y, best_epoch, log, "refit on fit+validation")
    return net, {"train_s": round(time.perf_counter() - t0, 1), "val_auc_history": history, "best_epoch": best_epoch,
                 "refit": "fit+validation"}


def ranker_metrics(users: np.ndarray, labels: np.ndarray, probs: np.ndarray, ref: np.ndarray | None) -> dict[str, float]:
    """AUC, logloss and per-user nDCG@10 with 95% intervals, and deltas vs ``ref`` (fp32 scores) when given.
    Every interval resamples users (AUC and logloss: cluster bootstrap; nDCG is already one value per user)."""
    out = M.with_intervals("auc", M.cluster_auc(labels, probs, users, ref))
    loss = M.logloss_per_example(labels, probs)
    ref_loss = None if ref is None else M.logloss_per_example(labels, ref)
    out.update(M.with_intervals("logloss", M.cluster_mean(loss, users, ref_loss, seed=1)))
    ndcg, _ = M.ndcg_per_group(users, labels, probs)
    ndcg_ref = None if ref is None else M.ndcg_per_group(users, labels, ref)[0]
    out.update(M.with_intervals("ndcg@10", M.bootstrap_mean(ndcg, ndcg_ref, seed=2)))
    return out


def export_onnx(net, path: Path, sample: dict[str, np.ndarray]) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["user_id", "item_id", "cat", "dense"]
    with torch.no_grad():
        torch.onnx.export(
            net,
            tuple(_as_torch(sample)),
            str(path),
            input_names=names,
            output_names=["score"],
            dynamic_axes={**{n: {0: "batch"} for n in names}, "score": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


class CtrModel:
    name = "ctr-ml100k"
    description = "DLRM-style CTR ranker (hashed ID tables + MLP), MovieLens-100k, label rating>=4, time split"
    scenarios = ("rank-50", "rank-200", "rank-500", "offline")
    output_kind = "ranking"  # one score per candidate: parity compares rankings
    headline = "rank-200"  # the scenario compressed variants are benchmarked on by default
    primary_metric = "auc"  # the task metric tables and budgets lead with
    fidelity_metric = None
    OFFLINE_BATCH = 4096

    def __init__(self, config: CtrConfig | None = None):
        self.config = config or CtrConfig()

    @cached_property
    def data(self) -> CtrData:
        return CtrData(self.config)

    def _dir(self, cache: Path) -> Path:
        return cache / "models" / self.name / config_hash(self.config, CODE_VERSION)

    def build(self, cache: Path, log=print) -> Variant:
        root = self._dir(cache)
        meta = root / "fp32" / "variant.json"
        write_torch_sidecar(self, root / "fp32", cache)
        if meta.exists():
            return Variant.load(meta)
        import torch

        log(f"training {self.name} (hash_rows={self.config.hash_rows}, dim={self.config.emb_dim}) ...")
        net, info = train(self.config, self.data, log=log)
        root.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), root / "weights.pt")
        onnx_path = root / "fp32" / "model.onnx"
        export_onnx(net, onnx_path, {k: v[:8] for k, v in self.data.test.items()})
        # The fp32 scores on the test period: every variant's deltas are paired against them.
        np.save(root / FP32_SCORES, _predict(ort_run_fn(onnx_path), self.data.test))
        with torch.no_grad():
            torch_probs = _predict(lambda b: [net(*_as_torch(b)).numpy()], self.data.test)
        onnx_probs = _predict(ort_run_fn(onnx_path), self.data.test)
        accuracy = self.evaluate(ort_run_fn(onnx_path), cache)
        torch_acc = auc_logloss(self.data.test_y, torch_probs)
        variant = make_variant(
            self.name, "fp32", onnx_path, self.scenarios,
            config={"model": asdict(self.config), **info, "trained_on": split_record("fit+validation", self.split_ids("fit+validation"))},
            accuracy=accuracy,
            parity={"max_abs_diff_vs_torch": float(np.max(np.abs(onnx_probs - torch_probs))), "torch_auc": torch_acc["auc"]},
            notes=(f"embedding tables: {2 * self.config.hash_rows * self.config.emb_dim * 4 / 2**20:.1f} MB of fp32",),
        )
        variant.save(meta)
        return variant

    def evaluate(self, run, cache: Path | None = None) -> dict[str, float]:
        """Task metrics on the test period, each with its 95% interval and, once the fp32 baseline
        is built in ``cache``, its paired delta vs fp32: AUC and logloss (paired cluster bootstrap over test
        users), nDCG@10 over each test user's rated test-period items (paired bootstrap over users)."""
        probs = _predict(run, self.data.test)
        ref_path = self._dir(cache) / FP32_SCORES if cache is not None else None
        ref = np.load(ref_path) if ref_path is not None and ref_path.exists() else None
        return ranker_metrics(self.data.test["user_id"], self.data.test_y, probs, ref)

    def split_ids(self, name: str) -> np.ndarray:
        """Row ids (positions in the time-sorted ratings) of a split: fit, validation, fit+validation, test."""
        ids = self.data.row_ids
        return np.concatenate([ids["fit"], ids["validation"]]) if name == "fit+validation" else ids[name]

    def tuned_on(self, cache: Path | None = None) -> dict:
        """What compressors may see: calibration and fine-tuning rows from the training period,
        the tuning metric on its validation part. Never the test period."""
        return split_record("fit+validation", self.split_ids("fit+validation"))

    def feeds(self, scenario: str, cache: Path) -> FeedSet:
        if scenario not in self.scenarios:
            raise ValueError(f"{self.name} has no scenario {scenario!r}; it has {self.scenarios}")
        path = self._dir(cache) / "feeds" / f"{scenario}.npz"
        items = self.OFFLINE_BATCH if scenario == "offline" else int(scenario.split("-")[1])
        if not path.exists():
            rng = np.random.default_rng(1234)
            data = self.data
            feeds = []
            if scenario == "offline":  # score a pool of real (user, item) pairs from the test period
                n = len(data.test_y)
                for _ in range(8):
                    idx = rng.choice(n, size=items, replace=False)
                    feeds.append({k: v[idx] for k, v in data.test.items()})
            else:  # one real test-period user x N candidate items from the catalog
                for user in rng.choice(data.test_users, size=32, replace=False):
                    cands = rng.choice(data.item_ids, size=items, replace=False)
                    feeds.append(data.featurise(np.full(items, user), cands))
            save_feeds(feeds, path)
        return FeedSet(path, items)

    def calibration_feeds(self, n: int, cache: Path | None = None) -> list[dict[str, np.ndarray]]:
        """``n`` real training-period batches of 128 (user, item) rows, for static quantization."""
        rng = np.random.default_rng(99)
        idx = rng.choice(len(self.data.train_y), size=(n, 128), replace=False if n * 128 <= len(self.data.train_y) else True)
        return [{k: v[i] for k, v in self.data.train.items()} for i in idx]

    def tuning_metric(self, run, cache: Path | None = None) -> float:
        """AUC on the validation split (8,000 rows of the training period, disjoint from the test period).
        The shipped fp32 ranker is refit on fit+validation, so this compares a variant with fp32 on rows
        both have seen: a guard against damage, not an estimate of held-out accuracy."""
        val, val_y = self.data.split("validation")
        return auc_logloss(val_y, _predict(run, val))["auc"]

    def load_torch(self, cache: Path):
        """The trained fp32 torch model (trains and caches it on first use)."""
        import torch

        self.build(cache)
        net = build_net(self.config, self.data.n_dense)
        net.load_state_dict(torch.load(self._dir(cache) / "weights.pt"))
        return net.eval()

    def torch_task(self, cache: Path):
        """The hook for training compressors (compressors/torch_hook.py)."""
        import dataclasses

        import torch
        import torch.nn.functional as F


        data = self.data

        def batches(steps, batch, seed):
            rng = np.random.default_rng(seed)
            n = len(data.train_y)
            for _ in range(steps):
                idx = rng.integers(0, n, size=batch)
                yield tuple(_as_torch({k: v[idx] for k, v in data.train.items()})), torch.from_numpy(data.train_y[idx])

        def loss(student, teacher, inputs, labels, temperature, alpha):
            s = student.logits(*inputs)
            with torch.no_grad():
                t = teacher.logits(*inputs)
            hard = F.binary_cross_entropy_with_logits(s, labels)
            soft = F.binary_cross_entropy_with_logits(s / temperature, torch.sigmoid(t / temperature)) * temperature**2
            return alpha * hard + (1 - alpha) * soft

        def prunable(net):
            return [(net.bottom[0], net.bottom[2])] + [(net.top[i], net.top[i + 2]) for i in range(0, len(net.top) - 2, 2)]

        def make_student(teacher, width, depth):
            cfg = dataclasses.replace(
                self.config, emb_dim=max(4, int(self.config.emb_dim * width)),
                bottom=tuple(max(4, int(h * width)) for h in self.config.bottom),
                top=tuple(max(4, int(h * width)) for h in self.config.top),
            )
            return build_net(cfg, data.n_dense)

        return TorchTask(
            module=self.load_torch(cache), batches=batches, loss=loss,
            export=lambda net, path: export_onnx(net, Path(path), {k: v[:8] for k, v in data.test.items()}),
            prunable=prunable, make_student=make_student, lr=2e-3,
        )

    def info(self) -> dict:
        return {"config": asdict(self.config)}
