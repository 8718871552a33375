import numpy as np
import pytest

from bench.feeds import (
    DEFAULT_SYMBOLIC_DIM,
    FeedError,
    check_feed,
    load_feeds,
    resolve_shape,
    save_feeds,
    synthetic_feeds,
)
from runtimes.base import TensorSpec

SPEC = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("dense", "float32", ("batch", 4))]


def test_ragged_feeds_round_trip(tmp_path):
    feeds = [{"input_ids": np.arange(n, dtype=np.int64)[None, :], "dense": np.ones((1, 4), np.float32)} for n in (3, 7, 11)]
    loaded = load_feeds(save_feeds(feeds, tmp_path / "f.npz"))
    assert [f["input_ids"].shape for f in loaded] == [(1, 3), (1, 7), (1, 11)]
    np.testing.assert_array_equal(loaded[2]["input_ids"], feeds[2]["input_ids"])


def test_synthetic_defaults_and_overrides():
    assert resolve_shape(SPEC[0], {}) == (1, DEFAULT_SYMBOLIC_DIM)
    assert resolve_shape(SPEC[0], {"batch": 8, "seq": 16}) == (8, 16)
    feeds = synthetic_feeds(SPEC, {"seq": 5}, 0, 10, count=3, seed=0)
    assert len(feeds) == 3
    assert feeds[0]["input_ids"].shape == (1, 5) and feeds[0]["input_ids"].dtype == np.int64
    assert feeds[0]["input_ids"].max() < 10
    assert feeds[0]["dense"].dtype == np.float32
    again = synthetic_feeds(SPEC, {"seq": 5}, 0, 10, count=3, seed=0)
    np.testing.assert_array_equal(feeds[1]["dense"], again[1]["dense"])  # seeded


@pytest.mark.parametrize(
    "feed, message",
    [
        ({"input_ids": np.zeros((1, 3), np.int64)}, "missing \\['dense'\\]"),
        ({"input_ids": np.zeros((3,), np.int64), "dense": np.zeros((1, 4), np.float32)}, "input 'input_ids': rank 1"),
        ({"input_ids": np.zeros((1, 3), np.int32), "dense": np.zeros((1, 4), np.float32)}, "input 'input_ids': dtype int32"),
        ({"input_ids": np.zeros((1, 3), np.int64), "dense": np.zeros((1, 5), np.float32)}, "input 'dense': axis 1 has size 5"),
    ],
)
def test_bad_feeds_name_the_input(feed, message):
    with pytest.raises(FeedError, match=message):
        check_feed(feed, SPEC)
