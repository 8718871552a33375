"""Your own ONNX file end to end: the recipe builds every variant from it, with lineage and fidelity."""
from __future__ import annotations

from pathlib import Path

from odbench.compressors.build import compress_onnx_file
from odbench.compressors.recipes import RECIPES
from odbench.core.feeds import load_feeds, materialize_feeds
from odbench.core.records import Feeds, Variant
from odbench.models.onnx_file import user_variant
from tests.compressors.conftest import make_tiny_transformer


def test_default_recipe_builds_every_variant_of_a_transformer_with_lineage(tmp_path):
    path = make_tiny_transformer(tmp_path / "mine.onnx")
    original = user_variant(path)
    feeds = materialize_feeds(original, Feeds(count=16), tmp_path / "feeds", log=lambda m: None)
    baseline, built = compress_onnx_file(original, feeds, "default", tmp_path / "cache", log=lambda m: None)
    steps = RECIPES[("onnx", "default")]
    assert [b.step.key for b in built] == [s.key for s in steps]
    failed = {b.step.key: b.error for b in built if b.variant is None}
    assert not failed, failed
    assert baseline.id == original.id and abs(baseline.accuracy["fidelity_cosine"] - 1.0) < 1e-6
    for b in built:
        v = b.variant
        assert v.model == original.model and v.parent == original.id and v.compressor == b.step.compressor
        assert v.scenarios == original.scenarios == ("synthetic",)
        assert Path(v.path).exists() and v.sha256 != original.sha256
        assert -1.0 - 1e-6 <= v.accuracy["fidelity_cosine"] <= 1.0 + 1e-6  # measured, whatever it is
        assert Variant.load(Path(v.path).parent / "variant.json") == v  # the lineage is on disk
    mixed = next(b.variant for b in built if b.step.compressor == "int8-mixed")
    assert mixed.config["fp32_nodes"][:1] == ["/l1/MatMul"]  # the scan found the deliberately corrupted layer
    inc = next(b.variant for b in built if b.step.key == "int8dyn")  # INC quantizes it too and pays for it
    assert mixed.accuracy["fidelity_cosine"] > 0.99 > inc.accuracy["fidelity_cosine"]
    # the benchmark's feeds are the ones the task compressed against
    assert len(load_feeds(feeds.path)) == 16
    again, rebuilt = compress_onnx_file(original, feeds, "default", tmp_path / "cache", log=lambda m: None)
    assert [b.variant.path for b in rebuilt] == [b.variant.path for b in built]  # cached by content hash


def test_without_an_eval_set_calibration_and_fidelity_use_different_feeds(tmp_path):
    """A user's file without --eval: compressors calibrate and tune on one half of the feeds, fidelity is
    measured on the other (no variant is scored on the inputs it was calibrated on)."""
    import numpy as np

    from odbench.compressors.fidelity import OnnxFidelityTask
    from odbench.core.onnx_tools import ort_run_fn

    path = make_tiny_transformer(tmp_path / "mine.onnx")
    feeds = materialize_feeds(user_variant(path), Feeds(count=16), tmp_path / "feeds", log=lambda m: None)
    task = OnnxFidelityTask(path, feeds)
    calib = task.calibration_feeds(20)
    for c in calib:
        for e in task.eval_feeds:
            assert not all(np.array_equal(c[k], e[k]) for k in c), "a calibration feed is also a fidelity feed"
    assert task.tuned_on()["n"] == 8 and len(task.eval_feeds) == 8
    assert 0.99 < task.tuning_metric(ort_run_fn(path)) <= 1 + 1e-6


# ------------------------------------------------------------------ issue 20: a user file's tuning never sees its evaluation feeds


def _fingerprint(feed) -> str:
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for k in sorted(feed):
        h.update(k.encode() + np.ascontiguousarray(feed[k]).tobytes())
    return h.hexdigest()


def test_int8_mixed_on_a_user_file_never_calibrates_or_tunes_on_its_evaluation_feeds(tiny_transformer, monkeypatch):
    """Spies on every feed the calibrator and the tuner's sessions receive while int8-mixed builds a variant
    of a user's file: none is one of the feeds its fidelity is evaluated on."""
    import odbench.compressors.mixed as MX
    from odbench.compressors.mixed import MixedInt8, MixedInt8Config

    base, task, out = tiny_transformer
    fed: list[str] = []
    real_session = MX._session

    def spy_session(model):
        run = real_session(model)
        return lambda feed: (fed.append(_fingerprint(feed)), run(feed))[1]

    monkeypatch.setattr(MX, "_session", spy_session)
    real_calib = task.calibration_feeds
    calib: list[str] = []
    monkeypatch.setattr(task, "calibration_feeds", lambda n: [calib.append(_fingerprint(f)) or f for f in real_calib(n)])
    MixedInt8().compress(base, task, MixedInt8Config(target_isa="x86-avx2", calib_samples=8, scan_samples=8, check_samples=8,
                                                     smooth_alpha=0.5), out)
    evaluation = {_fingerprint(f) for f in task.eval_feeds}
    assert calib and fed
    assert not set(calib) & evaluation and not set(fed) & evaluation
