"""The fixed shapes a LiteRT conversion is made at (litert-torch 0.10 cannot keep a dim dynamic) and the tuning
feeds restacked to them: no litert environment needed."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from odbench.compressors.base import CompressionError
from odbench.compressors.litert_export import fixed_shapes, restack
from odbench.core.records import TensorSpec

TEXT = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq"))]
DIMS = {"input_ids": {"0": ("batch", 4096), "1": ("seq", 512)}, "attention_mask": {"0": ("batch", 4096), "1": ("seq", 512)}}


def _text_feeds(lengths):
    return [{"input_ids": np.arange(1, n + 1)[None].astype(np.int64), "attention_mask": np.ones((1, n), np.int64)} for n in lengths]


def test_a_text_model_is_fixed_at_its_max_len_and_padded_with_zeros():
    task = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(max_len=16)))
    feeds = _text_feeds([3, 7, 5])
    shapes, pads = fixed_shapes(task, TEXT, DIMS, feeds)
    assert shapes == {"input_ids": [1, 16], "attention_mask": [1, 16]} and pads == {"input_ids": [1], "attention_mask": [1]}
    slates = restack(feeds, shapes)
    assert len(slates) == 3 and all(s["input_ids"].shape == (1, 16) for s in slates)
    assert slates[1]["attention_mask"].sum() == 7 and slates[1]["input_ids"][0, 7:].sum() == 0


def test_a_dynamic_axis_with_nothing_to_pad_it_to_is_refused():
    with pytest.raises(CompressionError, match="no max_len"):
        fixed_shapes(SimpleNamespace(), TEXT, DIMS, _text_feeds([3]))


def test_ranker_rows_are_restacked_into_slates_of_the_fixed_batch():
    rng = np.random.default_rng(0)
    feeds = [{"user_id": rng.integers(0, 9, b), "dense": rng.standard_normal((b, 4)).astype(np.float32)} for b in (128, 128, 128)]
    slates = restack(feeds, {"user_id": [200], "dense": [200, 4]})
    assert len(slates) == 1 and slates[0]["dense"].shape == (200, 4)  # 384 rows: one full slate, the rest dropped
    np.testing.assert_array_equal(slates[0]["user_id"][128:], feeds[1]["user_id"][:72])
    (short,) = restack(feeds[:1], {"user_id": [200], "dense": [200, 4]})  # fewer rows than a slate: the last row repeated
    assert short["user_id"].shape == (200,) and (short["user_id"][128:] == feeds[0]["user_id"][-1]).all()
