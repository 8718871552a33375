"""The executor registry: the CLI makes every executor through get_executor."""
from __future__ import annotations

import pytest

from odbench.bench.executors import EXECUTORS, Executor, ExecutorSettings, get_executor
from odbench.bench.executors.dask import DaskExecutor
from odbench.bench.executors.local import LocalExecutor


def test_every_registered_executor_names_itself_and_follows_the_protocol():
    made = {"local": get_executor("local"), "dask": get_executor("dask", ExecutorSettings(scheduler="tcp://127.0.0.1:1"))}
    assert set(made) == set(EXECUTORS)
    for name, executor in made.items():
        assert isinstance(executor, Executor) and executor.name == name
    assert isinstance(made["local"], LocalExecutor) and isinstance(made["dask"], DaskExecutor)


def test_settings_reach_the_executor():
    ex = get_executor("dask", ExecutorSettings(scheduler="tcp://10.0.0.1:8786", shared_root="/srv/models"))
    assert ex.address == "tcp://10.0.0.1:8786" and ex.shared_root == "/srv/models"


def test_unknown_executor_and_bad_settings_are_clear_errors(monkeypatch):
    with pytest.raises(KeyError, match="unknown executor 'ray'; known: local, dask"):
        get_executor("ray")
    monkeypatch.delenv("ODBENCH_SCHEDULER", raising=False)
    with pytest.raises(ValueError, match="no Dask scheduler address"):
        get_executor("dask")
