import numpy as np
import pytest

from odbench.core.feeds import (
    DEFAULT_SYMBOLIC_DIM,
    FeedError,
    check_feed,
    load_feeds,
    resolve_shape,
    save_feeds,
    synthetic_feeds,
)
from odbench.core.records import TensorSpec

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


def test_transformer_inputs_follow_their_roles_and_give_finite_outputs(tmp_path):
    """A sentence-transformers-shaped model: the mask is all ones, token types zero, ids within
    the embedding table (read from the graph), and the outputs are finite."""
    from odbench.core.feeds import embedding_vocab, materialize_feeds
    from odbench.core.onnx_tools import ort_run_fn
    from odbench.core.records import Feeds, Variant, sha256_file
    from tests.compressors.conftest import TINY_VOCAB, make_tiny_transformer

    path = make_tiny_transformer(tmp_path / "tf.onnx")
    assert embedding_vocab(path) == {"input_ids": TINY_VOCAB, "token_type_ids": 2}
    variant = Variant(id="tf/fp32", model="tf", path=str(path), sha256=sha256_file(path), size_bytes=path.stat().st_size)
    feeds = load_feeds(materialize_feeds(variant, Feeds(int_high=1000, count=8), tmp_path / "feeds").path)
    run = ort_run_fn(path)
    for feed in feeds:
        assert feed["attention_mask"].shape == (1, DEFAULT_SYMBOLIC_DIM)
        assert np.all(feed["attention_mask"] == 1) and np.all(feed["token_type_ids"] == 0)
        assert 0 <= feed["input_ids"].min() and feed["input_ids"].max() < TINY_VOCAB
        assert np.all(np.isfinite(run(feed)[0]))
    assert len({feed["input_ids"].tobytes() for feed in feeds}) == len(feeds)  # still random ids


def test_text_feeds_tokenise_each_line(tmp_path):
    from odbench.core.feeds import text_feeds
    from odbench.models.encoder import model_dir

    text = tmp_path / "queries.txt"
    text.write_text("red summer dress\n\nwool sweater, size m\n")
    spec = [TensorSpec("input_ids", "int64", ("batch", "seq")), TensorSpec("attention_mask", "int64", ("batch", "seq")),
            TensorSpec("token_type_ids", "int64", ("batch", "seq"))]
    feeds = text_feeds(text, model_dir() / "tokenizer.json", spec)
    assert len(feeds) == 2
    for f in feeds:
        n = f["input_ids"].shape[1]
        assert f["input_ids"][0, 0] == 101 and f["input_ids"][0, -1] == 102  # [CLS] ... [SEP]
        assert f["attention_mask"].tolist() == [[1] * n] and f["token_type_ids"].tolist() == [[0] * n]
    assert feeds[0]["input_ids"].shape[1] < feeds[1]["input_ids"].shape[1]
    with pytest.raises(FeedError, match="exactly one integer token-id input"):
        text_feeds(text, model_dir() / "tokenizer.json", [TensorSpec("x", "float32", ("batch", 4))])
