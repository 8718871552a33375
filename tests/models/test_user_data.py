"""A user's evaluation file: each bad file is one line and exit 2 before anything is built; splits are
seeded, disjoint and keep a group (user, query) on one side."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from odbench.cli import main as cli_main
from odbench.models.user_data import EvalError, load_eval
from tests.models.user_fixtures import classification_set, ranking_set, retrieval_set


def _edit(eval_path, **changes):
    spec = yaml.safe_load(eval_path.read_text())
    for key, value in changes.items():
        node = spec
        *parents, leaf = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    eval_path.write_text(yaml.safe_dump(spec))
    return eval_path


def _cli_error(capsys, model, eval_path, tmp_path) -> str:
    code = cli_main(["run", "--onnx", str(model), "--eval", str(eval_path), "--runtime", "onnxruntime",
                     "--preset", "smoke", "--out", str(tmp_path / "run"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()  # nothing was built or run
    return err


def test_missing_column(tmp_path, capsys):
    model, _, ev = ranking_set(tmp_path / "d")
    _edit(ev, columns__label="click")
    assert "missing column 'click'" in _cli_error(capsys, model, ev, tmp_path)


def test_dtype_that_does_not_fit_the_model_input(tmp_path, capsys):
    model, _, ev = ranking_set(tmp_path / "d")
    df = pd.read_parquet(tmp_path / "d" / "rows.parquet")
    df["item"] = df["item"] + 0.5  # floats into the int64 'item' input
    df.to_parquet(tmp_path / "d" / "rows.parquet")
    err = _cli_error(capsys, model, ev, tmp_path)
    assert "column 'item' (float64) does not fit model input 'item' (int64)" in err


def test_text_column_into_a_float_input(tmp_path, capsys):
    model, _, ev = classification_set(tmp_path / "d")
    _edit(ev, inputs={"x": ["f0", "f1", "f2", "f3", "dept"]})
    assert "column 'dept' (object) does not fit model input 'x' (float32)" in _cli_error(capsys, model, ev, tmp_path)


def test_qrels_entry_for_an_unknown_document(tmp_path, capsys):
    model, _, ev = retrieval_set(tmp_path / "d")
    with (tmp_path / "d" / "qrels.jsonl").open("a") as f:
        f.write(json.dumps({"query_id": "q3", "doc_id": "d-missing"}) + "\n")
    assert "names document 'd-missing', which is not in the documents file" in _cli_error(capsys, model, ev, tmp_path)


@pytest.mark.parametrize("shape", ["ranking", "classification"])
def test_label_column_with_one_class(tmp_path, capsys, shape):
    make, col, value, fmt = ((ranking_set, "clicked", 1, "parquet") if shape == "ranking" else (classification_set, "dept", "tops", "csv"))
    model, _, ev = make(tmp_path / "d")
    f = tmp_path / "d" / f"rows.{fmt}"
    df = pd.read_parquet(f) if fmt == "parquet" else pd.read_csv(f)
    df[col] = value
    df.to_parquet(f) if fmt == "parquet" else df.to_csv(f, index=False)
    assert f"label column '{col}' has one class" in _cli_error(capsys, model, ev, tmp_path)


def test_empty_split(tmp_path, capsys):
    model, _, ev = classification_set(tmp_path / "d")
    df = pd.read_csv(tmp_path / "d" / "rows.csv")
    df["split"] = "tuning"
    df.to_csv(tmp_path / "d" / "rows.csv", index=False)
    assert "leaves the test part empty" in _cli_error(capsys, model, ev, tmp_path)


def test_tokenizer_path_that_does_not_exist(tmp_path, capsys):
    model, _, ev = retrieval_set(tmp_path / "d")
    _edit(ev, text__tokenizer="no/such/tokenizer")
    assert "tokenizer path 'no/such/tokenizer' does not exist" in _cli_error(capsys, model, ev, tmp_path)


def test_schema_errors_are_one_line(tmp_path):
    _, _, ev = ranking_set(tmp_path / "d")
    _edit(ev, split__test_fraction=1.5, task="ranking")
    with pytest.raises(EvalError) as e:
        load_eval(ev)
    assert "split.test_fraction" in str(e.value) and "\n" not in str(e.value)
    _edit(ev, split__test_fraction=0.5, task="forecast")
    with pytest.raises(EvalError, match="field 'task'"):
        load_eval(ev)


def test_hash_split_is_seeded_disjoint_and_keeps_each_user_on_one_side(tmp_path):
    _, _, ev = ranking_set(tmp_path / "d")
    data = load_eval(ev)
    tune, test = data.ids("tuning"), data.ids("test")
    assert len(np.intersect1d(tune, test)) == 0 and len(tune) + len(test) == len(data.rows)
    users = data.rows["user"].to_numpy()
    assert not set(users[tune]) & set(users[test])  # the group key is the split unit
    assert np.array_equal(load_eval(ev).ids("test"), test)  # same seed, same split
    _edit(ev, split__seed=1)
    assert not np.array_equal(load_eval(ev).ids("test"), test)


def test_time_split_per_user_tests_each_users_latest_rows(tmp_path):
    _, _, ev = ranking_set(tmp_path / "d", split={"rule": "time", "test_fraction": 0.25})
    data = load_eval(ev)
    rows = data.rows.assign(test=data.test)
    for _, g in rows.groupby("user"):
        assert g.loc[g.test, "ts"].min() > g.loc[~g.test, "ts"].max()
    assert len(np.intersect1d(data.ids("tuning"), data.ids("test"))) == 0


def test_retrieval_splits_queries(tmp_path):
    _, _, ev = retrieval_set(tmp_path / "d")
    data = load_eval(ev)
    q = data.queries["query_id"].to_numpy()
    assert not set(q[data.ids("tuning")]) & set(q[data.ids("test")])
    assert len(data.ids("tuning")) > 20 and len(data.ids("test")) > 20
