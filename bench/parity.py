"""Output parity: does this cell's variant, on this runtime, still give the right answers?

Every cell runs its first few feeds once more after timing and compares the outputs with
two references computed beforehand on ONNX Runtime's CPU provider (the reference runtime)
from the very same feeds:

- ``fp32``: the variant's lineage root (the fp32 baseline). Compression may cost some
  fidelity here, so the floor is loose: it catches a broken variant, not a slightly worse one
  (the variant's task accuracy is in its own column).
- ``runtime``: the same variant file on ONNX Runtime, for any other runtime. A runtime may
  not change the answer, so the floor is tight.

What is compared depends on what the output means (``kind``):
- ``embedding``: rows are vectors; cosine per row (mean and min) and max abs diff.
- ``ranking``: one ranking request per feed (N candidates, one score each); top-k overlap
  and Spearman rank correlation per feed, averaged, and max abs diff.
- ``values``: anything else; cosine of the flattened outputs and max abs diff.

A value below its floor turns the cell to FAIL with the reason.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Mapping, Sequence

import numpy as np

from odbench.core.feeds import load_feeds
from odbench.core.onnx_tools import ort_run_fn
from odbench.core.records import ParitySpec, atomic_write_bytes, lineage_root, sha256_file

ParityKind = Literal["embedding", "ranking", "values"]
TOP_K = 10


@dataclass(frozen=True)
class Floors:
    """Lowest acceptable values; None = not checked."""

    cosine: float | None = None  # mean cosine (embedding, values)
    topk_overlap: float | None = None  # mean top-k overlap (ranking)
    spearman: float | None = None  # mean Spearman rank correlation (ranking)


# vs the fp32 root: compression may lose some fidelity, a broken variant loses most of it.
FP32_FLOORS: dict[str, Floors] = {
    "embedding": Floors(cosine=0.90),
    "ranking": Floors(topk_overlap=0.5, spearman=0.8),
    "values": Floors(cosine=0.90),
}
# vs the same variant on ONNX Runtime: a runtime may not change the answer.
RUNTIME_FLOORS: dict[str, Floors] = {
    "embedding": Floors(cosine=0.99),
    "ranking": Floors(topk_overlap=0.8, spearman=0.98),
    "values": Floors(cosine=0.99),
}


def _rank(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = np.arange(len(a), dtype=np.float64)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _rank(a) - (len(a) - 1) / 2, _rank(b) - (len(b) - 1) / 2
    denom = float(np.sqrt(np.sum(ra * ra) * np.sum(rb * rb)))
    return float(np.sum(ra * rb) / denom) if denom > 0 else 1.0


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int = TOP_K) -> float:
    k = min(k, len(a))
    return len(set(np.argsort(-a, kind="stable")[:k]) & set(np.argsort(-b, kind="stable")[:k])) / k


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    cos = np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-30)
    return np.where((na == 0) & (nb == 0), 1.0, cos)


def compare(kind: str, got: Sequence[Sequence[np.ndarray]], ref: Sequence[Sequence[np.ndarray]]) -> dict[str, float]:
    """Metrics for outputs[feed][output] against reference[feed][output] (first output decides)."""
    if len(got) != len(ref):
        raise ValueError(f"parity: {len(got)} outputs to compare with {len(ref)} references")
    max_abs, cos, topk, rho = 0.0, [], [], []
    for g_outs, r_outs in zip(got, ref):
        g = np.asarray(g_outs[0], dtype=np.float64)
        r = np.asarray(r_outs[0], dtype=np.float64)
        if g.shape != r.shape:
            raise ValueError(f"parity: output shape {g.shape} differs from the reference's {r.shape}")
        if g.size == 0:
            continue
        max_abs = max(max_abs, float(np.max(np.abs(g - r))))
        if kind == "embedding":
            cos.extend(_cos_rows(g.reshape(-1, g.shape[-1]), r.reshape(-1, r.shape[-1])).tolist())
        elif kind == "ranking":
            topk.append(topk_overlap(g.ravel(), r.ravel()))
            rho.append(spearman(g.ravel(), r.ravel()))
        else:
            cos.append(float(_cos_rows(g.ravel(), r.ravel())))
    out = {"max_abs_diff": max_abs, "n_feeds": float(len(got))}
    if cos:
        out["cosine"] = float(np.mean(cos))
        out["cosine_min"] = float(np.min(cos))
    if topk:
        out[f"top{TOP_K}_overlap"] = float(np.mean(topk))
        out["spearman"] = float(np.mean(rho))
        out["spearman_min"] = float(np.min(rho))
    return out


def violations(metrics: Mapping[str, float], floors: Floors) -> list[str]:
    out = []
    for key, floor in (("cosine", floors.cosine), (f"top{TOP_K}_overlap", floors.topk_overlap), ("spearman", floors.spearman)):
        if floor is not None and key in metrics and not metrics[key] >= floor:  # NaN fails too
            out.append(f"{key} {metrics[key]:.4f} < {floor:g}")
    return out


def judge(kind: str, parity: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Reasons to FAIL, one per reference: 'vs fp32 on onnxruntime: top10_overlap 0.33 < 0.5, ...'. ``x86``:
    the same file on the same runtime's x86 build (the ARM functional check of a file ONNX Runtime cannot run)."""
    reasons = []
    for key, floors, label in (("fp32", FP32_FLOORS, "vs fp32 on onnxruntime"),
                               ("runtime", RUNTIME_FLOORS, "vs the same variant on onnxruntime"),
                               ("x86", RUNTIME_FLOORS, "vs the same file on the runtime's x86 build")):
        bad = violations(parity[key], floors[kind]) if key in parity else []
        if bad:
            reasons.append(f"{label}: {', '.join(bad)}")
    return reasons


def write_reference(path: Path, root_outputs: Sequence[Sequence[np.ndarray]], variant_outputs: Sequence[Sequence[np.ndarray]]) -> Path:
    """Reference outputs of the first feeds: the fp32 root's, and the variant's own (on ONNX Runtime)."""
    arrays = {}
    for which, outputs in (("fp32", root_outputs), ("runtime", variant_outputs)):
        for i, outs in enumerate(outputs):
            for j, o in enumerate(outs):
                arrays[f"{which}/{i}/{j}"] = np.asarray(o)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_reference(path: str) -> dict[str, list[list[np.ndarray]]]:
    with np.load(path) as z:
        out: dict[str, dict[int, dict[int, np.ndarray]]] = {}
        for key in z.files:
            which, i, j = key.split("/")
            out.setdefault(which, {}).setdefault(int(i), {})[int(j)] = z[key]
    return {w: [[outs[j] for j in sorted(outs)] for _, outs in sorted(feeds.items())] for w, feeds in out.items()}


def prepare(workloads, variants: Mapping, out_dir: Path, n_feeds: int = 4, log=print) -> dict:
    """Compute the reference outputs of every (variant, scenario) in the plan, on ONNX Runtime.

    Returns {(variant_id, scenario): ParitySpec}. Files are named by the content they derive
    from (variant, root and feeds sha256), so a rerun reuses them and a resampled cell finds
    the same bytes. A reference that cannot be computed gives a ParitySpec with ``error``: the
    cell then records that parity was not checked (its own run will usually fail too).
    """

    runs: dict[str, Callable] = {}
    outputs: dict[tuple[str, str], list] = {}  # (model path, feeds path) -> outputs of the first feeds

    def outputs_of(path: str, feeds_path: str) -> list:
        """Each model's outputs are computed once per feeds file: the root's serve all its variants."""
        if (path, feeds_path) not in outputs:
            if path not in runs:
                runs[path] = ort_run_fn(path)
            outputs[(path, feeds_path)] = [runs[path](dict(f)) for f in load_feeds(feeds_path)[:n_feeds]]
        return outputs[(path, feeds_path)]

    specs = {}
    for w in workloads:
        root = variants.get(lineage_root(w.variant.id, variants), w.variant)
        for scenario, (feeds, _items) in w.feeds.items():
            kind = w.output_kind
            try:
                if not feeds.path:
                    raise ValueError("synthetic feeds were not materialised to a file")
                feed_sha = sha256_file(feeds.path)
                name = f"{w.variant.sha256[:12]}-{root.sha256[:12]}-{feed_sha[:12]}-{n_feeds}.npz"
                path = Path(out_dir) / "references" / name
                if not path.exists():
                    # a .pte/.tflite export has no ONNX Runtime run of its own: compared with the fp32 root only
                    own = outputs_of(w.variant.path, feeds.path) if w.variant.path.endswith(".onnx") else []
                    write_reference(path, outputs_of(root.path, feeds.path), own)
                specs[(w.variant.id, scenario)] = ParitySpec(kind=kind, reference=str(path.resolve()),
                                                             reference_sha256=sha256_file(path), n_feeds=n_feeds)
            except Exception as exc:  # noqa: BLE001 - recorded in every affected cell
                log(f"[parity] {w.variant.id} {scenario}: no reference outputs: {type(exc).__name__}: {exc}")
                specs[(w.variant.id, scenario)] = ParitySpec(
                    kind=kind, error=f"reference outputs could not be computed: {type(exc).__name__}: {exc}"[:500])
        if w.variant.path != root.path:  # keep only the roots' sessions and outputs: they serve every variant
            runs.pop(w.variant.path, None)
            for key in [k for k in outputs if k[0] == w.variant.path]:
                del outputs[key]
    return specs
