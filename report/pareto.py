"""The encoder's Pareto table for a run folder: every variant of a model, on each runtime, with p50
[95% CI] at 1 and at 2 threads, the speedup vs fp32 [95% CI] on the same runtime and profile,
fidelity (cosine, top-10 overlap) and recall@10 [95% CI]; the Pareto front and the chosen point.

    odbench run --model minilm-l6-query --recipe full --runtime onnxruntime --runtime openvino \\
        --profile host --profile host-1t --out RUN
    odbench pareto RUN

Threads: the 1- and 2-thread columns are the cells of ``--profile-1t`` (host-1t) and ``--profile-2t``
(host, which on a 2-core machine runs 2 threads). The header shows the threads the cells really ran,
read back from the runtime (``runtime_info.intra_op_threads``: ORT's session option, OpenVINO's
INFERENCE_NUM_THREADS property); a cell that ran another count than its column says is listed under the table.

Selection reads the tuning split only; the evaluation split is reported, never selected on.

* Tuning record: ``Variant.config["tuning_accuracy"]`` (cosine and top-10 overlap to fp32 on the encoder's
  tuning split, measured on ONNX Runtime when the variant was built; models/encoder.py ``tuning_accuracy``).
  "meets goal (tuning)", the front and "chosen" read it. The goal is judged on the one-sided 95% lower bounds
  (``cosine_lcb95``, ``top10_overlap_lcb95``, bootstrap over 500 tuning titles, resp. their texts): a point at
  the line is refused (``models.metrics.goal_holds``). A variant without a record with bounds is never chosen.
* Reported accuracy: ``Variant.accuracy`` (the evaluation split, on ONNX Runtime at build time), unless
  ``RUN/accuracy.json`` holds a record for that variant on that runtime (``odbench run`` writes it), measured
  from the runtime's own outputs. "holds (evaluation)" says whether the chosen goal still holds there.

Front: per runtime, a variant is on it when no other measured variant is at least as fast at 1 thread
(p50) and at least as faithful (tuning top-10 overlap), strictly better in one. Chosen: on the front, meeting
the fidelity goal on the tuning split (lower bounds: top-10 overlap >= 0.95 and cosine >= 0.995), the fastest at
1 thread. A cell that failed
parity (verdict FAIL: a distillation or pruning tier, say) shows its p50 marked "(parity FAIL)" and is
on no front; a cell that did not run has no speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from odbench.bench.run_folder import RunFolder
from odbench.core.records import Result, Variant, Verdict
from odbench.models.metrics import LCB, goal_holds
from odbench.report.tables import speedup
from odbench.verdicts.accuracy import load_run_accuracy

GOAL_TOP10, GOAL_COSINE = 0.95, 0.995  # the fidelity goal of issue 11
GOALS = {"top10_overlap": GOAL_TOP10, "cosine": GOAL_COSINE}
HARNESS_ONLY = ("null",)  # the harness-overhead cell's runtime: not a variant's speed


@dataclass(frozen=True)
class Point:
    """One variant on one runtime: its 1- and 2-thread cells and the accuracy that applies there."""

    variant: Variant
    runtime: str
    one: Result | None
    two: Result | None
    accuracy: dict  # the evaluation split: reported
    accuracy_from: str  # "runtime" (RUN/accuracy.json) | "onnxruntime (build)"

    @property
    def p50_1t(self) -> float | None:
        return _p50(self.one)

    @property
    def tuning(self) -> dict:
        """The tuning-split fidelity record (selection reads it); the fp32 baseline is the reference itself."""
        rec = (self.variant.config or {}).get("tuning_accuracy")
        if rec:
            return dict(rec)
        exact = {"cosine": 1.0, "top10_overlap": 1.0, f"cosine{LCB}": 1.0, f"top10_overlap{LCB}": 1.0}
        return exact if self.variant.parent is None else {}

    @property
    def meets_goal(self) -> bool:
        """The fidelity goal on the tuning split, with its margin: the lower bounds reach the lines."""
        return goal_holds(self.tuning, GOALS)

    @property
    def holds_on_evaluation(self) -> bool:
        return goal_met(self.accuracy)


def goal_met(a: dict) -> bool:
    return a.get("top10_overlap", -1.0) >= GOAL_TOP10 and a.get("cosine", -1.0) >= GOAL_COSINE


def _p50(r: Result | None) -> float | None:
    if r is None or r.verdict != Verdict.OK:
        return None
    p = r.stats.get("p50")
    return p if p is not None and math.isfinite(p) else None


def threads_of(r: Result) -> int | None:
    """The threads the runtime really used (read back from it), else what the profile applied."""
    t = (r.runtime_info or {}).get("intra_op_threads", (r.applied or {}).get("threads"))
    return int(t) if t is not None else None


def runtime_accuracy(folder: RunFolder) -> dict[tuple[str, str], dict]:
    """(variant id, runtime) -> that runtime's own accuracy from ``RUN/accuracy.json`` (verdicts/accuracy.py),
    default runtime options only (the table's cells have none)."""
    records = load_run_accuracy(folder) or {}
    return {(r.variant_id, r.runtime): dict(r.accuracy) for r in records.values() if r.accuracy and not r.runtime_options}


def points(run_dir: Path, model: str, scenario: str, profile_1t: str, profile_2t: str) -> list[Point]:
    folder = RunFolder.open(run_dir)
    variants = {k: v for k, v in folder.variants().items() if v.model == model}
    results = [r for r in folder.results() if r.model == model and r.scenario == scenario
               and not r.runtime_options and r.runtime not in HARNESS_ONLY]
    cells = {(r.variant_id, r.runtime, r.profile): r for r in results}
    by_runtime = {}
    for r in results:
        by_runtime.setdefault(r.runtime, set()).add(r.variant_id)
    runtime_acc = runtime_accuracy(folder)
    out = []
    for rt in sorted(by_runtime):
        for vid in sorted(by_runtime[rt], key=lambda v: (variants[v].parent is not None, v) if v in variants else (True, v)):
            if vid not in variants:
                continue
            own = runtime_acc.get((vid, rt))
            out.append(Point(variants[vid], rt, cells.get((vid, rt, profile_1t)), cells.get((vid, rt, profile_2t)),
                             own if own is not None else dict(variants[vid].accuracy),
                             "runtime" if own is not None else "onnxruntime (build)"))
    return out


def front(pts: list[Point]) -> set[str]:
    """Variant ids on one runtime's front over (p50 at 1 thread: lower, tuning top-10 overlap: higher)."""
    measured = [p for p in pts if p.p50_1t is not None and "top10_overlap" in p.tuning]
    on = set()
    for p in measured:
        s, f = p.p50_1t, p.tuning["top10_overlap"]
        dominated = any(q is not p and q.p50_1t <= s and q.tuning["top10_overlap"] >= f
                        and (q.p50_1t < s or q.tuning["top10_overlap"] > f) for q in measured)
        if not dominated:
            on.add(p.variant.id)
    return on


def chosen(pts: list[Point], on_front: set[str]) -> str | None:
    ok = [p for p in pts if p.variant.id in on_front and p.meets_goal]
    return min(ok, key=lambda p: p.p50_1t).variant.id if ok else None


def _ci(point, lo, hi, digits: int = 2) -> str:
    if point is None or not math.isfinite(point):
        return "—"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _latency(r: Result | None) -> str:
    if r is None:
        return "not run"
    text = _ci(r.stats.get("p50"), r.stats.get("p50_lo"), r.stats.get("p50_hi"))
    if r.verdict == Verdict.FAIL and text != "—":  # timed, outputs off fp32: an accuracy tier's own speed, never on the front
        return f"{text} (parity FAIL)"
    return text if r.verdict == Verdict.OK else r.verdict.value


def _speedup(base: Result | None, r: Result | None) -> str:
    if r is None or r.verdict not in (Verdict.OK, Verdict.FAIL):
        return "—"
    if r is base:
        return "1.00x (baseline)"
    ratio = speedup(base, r)
    text = _ci(ratio.ratio, ratio.lo, ratio.hi) + "x" if ratio is not None else "—"
    return f"{text} (parity FAIL)" if r.verdict == Verdict.FAIL and ratio is not None else text


def _acc(a: dict, key: str, digits: int) -> str:
    return _ci(a.get(key), a.get(f"{key}_lo"), a.get(f"{key}_hi"), digits) if key in a else "—"


def _tuning(t: dict) -> str:
    """'cosine (lower bound) / top-10 (lower bound)' of the tuning record."""
    if "cosine" not in t or "top10_overlap" not in t:
        return "— (no record: never chosen)"
    bound = {m: f" (≥{t[m + LCB]:.{d}f})" if m + LCB in t else " (no bound)" for m, d in (("cosine", 4), ("top10_overlap", 3))}
    return f"{t['cosine']:.4f}{bound['cosine']} / {t['top10_overlap']:.3f}{bound['top10_overlap']}"


def _threads_label(cells: list[Result]) -> str:
    seen = sorted({t for r in cells if (t := threads_of(r)) is not None})
    return "/".join(str(t) for t in seen) or "?"


def render(pts: list[Point], profile_1t: str, profile_2t: str) -> str:
    ones = [p.one for p in pts if p.one is not None]
    twos = [p.two for p in pts if p.two is not None]
    head = (f"| variant | runtime | p50 ms, {profile_1t} ({_threads_label(ones)} thr) [95% CI] | x fp32, 1 thr [95% CI] "
            f"| p50 ms, {profile_2t} ({_threads_label(twos)} thr) [95% CI] | x fp32, 2 thr [95% CI] | cosine | top-10 overlap "
            f"| recall@10 [95% CI] | accuracy from | tuning cosine / top-10 (95% lower bound) | meets goal (tuning) | holds (evaluation) "
            f"| Pareto front (tuning) | chosen (tuning) |")
    lines = [head, "|" + "---|" * 15]
    for rt in sorted({p.runtime for p in pts}):
        mine = [p for p in pts if p.runtime == rt]
        base = next((p for p in mine if p.variant.parent is None), None)
        on = front(mine)
        pick = chosen(mine, on)
        for p in mine:
            a = p.accuracy
            lines.append(
                f"| {p.variant.id} | {rt} | {_latency(p.one)} | {_speedup(base.one if base else None, p.one)} "
                f"| {_latency(p.two)} | {_speedup(base.two if base else None, p.two)} | {_acc(a, 'cosine', 4)} "
                f"| {_acc(a, 'top10_overlap', 3)} | {_acc(a, 'recall@10', 3)} | {p.accuracy_from} | {_tuning(p.tuning)} "
                f"| {'yes' if p.meets_goal else 'no'} | {'yes' if p.holds_on_evaluation else 'no'} "
                f"| {'★' if p.variant.id in on else ''} | {'**chosen**' if p.variant.id == pick else ''} |")
    return "\n".join(lines + thread_warnings(pts, profile_1t, profile_2t))


def thread_warnings(pts: list[Point], profile_1t: str, profile_2t: str) -> list[str]:
    """Cells whose runtime ran another thread count than their column (1 for profile_1t, 2 for profile_2t)."""
    out = []
    for p in pts:
        for r, want in ((p.one, 1), (p.two, 2)):
            if r is not None and (t := threads_of(r)) is not None and t != want:
                out.append(f"- warning: {r.cell_id} ran {t} threads, not {want}")
    return [""] + out if out else []


def pareto_markdown(run_dir: Path, model: str = "minilm-l6-query", scenario: str = "query",
                    profile_1t: str = "host-1t", profile_2t: str = "host") -> str:
    """`odbench pareto RUN`: the table above for one model and scenario; ValueError when the run holds none of it."""
    pts = points(Path(run_dir), model, scenario, profile_1t, profile_2t)
    if not pts:
        raise ValueError(f"{run_dir} holds no {scenario!r} cells of {model} with a variant in variants.json")
    return render(pts, profile_1t, profile_2t)
