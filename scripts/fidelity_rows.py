"""Rows of docs/compression.md's encoder table from built variants' records (variant.json): tuning cosine and top-10
overlap with their one-sided 95% lower bounds, whether the goal holds on them (what selection reads), then the
evaluation's cosine, top-10 overlap [95% CI], whether it still holds there, and recall@10's paired delta vs fp32.

    python scripts/fidelity_rows.py $ODBENCH_CACHE/variants/minilm-l6-query/fused-qat-*/variant.json
"""
from __future__ import annotations

import sys
from pathlib import Path

from odbench.core.records import Variant
from odbench.models.metrics import goal_holds

GOALS = {"cosine": 0.995, "top10_overlap": 0.95}


def row(v: Variant) -> str:
    t, a = v.config.get("tuning_accuracy") or {}, v.accuracy
    yes = lambda ok: "**yes**" if ok else "no"  # noqa: E731
    holds = a.get("cosine", 0) >= GOALS["cosine"] and a.get("top10_overlap", 0) >= GOALS["top10_overlap"]
    return (f"| `{v.id.split('/', 1)[1]}` | {t.get('cosine', float('nan')):.4f} ({t.get('cosine_lcb95', float('nan')):.4f}) / "
            f"{t.get('top10_overlap', float('nan')):.3f} ({t.get('top10_overlap_lcb95', float('nan')):.3f}) | "
            f"{yes(goal_holds(t, GOALS))} | "
            f"{a['cosine']:.4f} | {a['top10_overlap']:.3f} [{a['top10_overlap_lo']:.3f}, {a['top10_overlap_hi']:.3f}] | {yes(holds)} | "
            f"{a['delta_recall@10']:+.3f} [{a['delta_recall@10_lo']:+.3f}, {a['delta_recall@10_hi']:+.3f}] |")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(row(Variant.load(Path(p))))
