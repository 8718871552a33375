"""api/your_data.py: --eval is checked in api.plan, before anything is built."""
from __future__ import annotations

import pytest

from odbench import api
from tests.models.user_fixtures import ranking_set


def test_plan_checks_the_evaluation_set_against_the_model(tmp_path):
    model, _, ev = ranking_set(tmp_path / "d")
    p = api.plan(onnx=[model], eval=ev, runtimes=["onnxruntime"], preset="smoke", out=tmp_path / "run")
    ((path, task),) = p.eval_tasks
    assert path == str(model) and task.primary_metric == "auc" and task.scenario == "rank-8"
    assert not (tmp_path / "run").exists()
    with pytest.raises(api.UsageError, match="--eval needs --onnx"):
        api.plan(models=["ctr-ml100k"], eval=ev, out=tmp_path / "run")
    other, _, _ = ranking_set(tmp_path / "e", seed=1)
    ev.write_text(ev.read_text().replace("label: clicked", "label: nope"))
    with pytest.raises(api.UsageError, match="missing column 'nope'"):
        api.plan(onnx=[other], eval=ev, out=tmp_path / "run")
