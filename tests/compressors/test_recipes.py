"""Recipes (compressors/recipes.py): every step is buildable as written, before any build starts."""
from __future__ import annotations

import dataclasses

import pytest

from odbench.compressors import COMPRESSORS, NEEDS_TORCH, get_compressor
from odbench.compressors.recipes import LABEL_TAGS, RECIPES, Step
from odbench.models import ZOO

RECIPE_IDS = [f"{model}:{name}" for model, name in RECIPES]


@pytest.mark.parametrize("key", list(RECIPES), ids=RECIPE_IDS)
def test_each_step_names_a_registered_compressor_with_its_own_config_type(key):
    for step in RECIPES[key]:
        assert step.compressor in COMPRESSORS, step
        assert type(step.config) is get_compressor(step.compressor).Config, step
        assert dataclasses.is_dataclass(step.config) and step.config.__dataclass_params__.frozen


@pytest.mark.parametrize("key", list(RECIPES), ids=RECIPE_IDS)
def test_step_keys_are_unique_and_parents_come_first(key):
    seen: set[str] = set()
    for step in RECIPES[key]:
        assert step.key not in seen, f"duplicate step {step.key!r}"
        assert step.parent is None or step.parent in seen, f"{step.key!r} needs {step.parent!r} built before it"
        seen.add(step.key)


def test_every_zoo_model_and_plain_onnx_have_a_default_and_a_full_recipe():
    owners = set(ZOO) | {"onnx", "onnx-eval"}
    assert {m for m, _ in RECIPES} == owners
    for owner in owners:
        default, full = RECIPES[(owner, "default")], RECIPES[(owner, "full")]
        assert default and full[: len(default)] == default  # full = default + the slow extras


def test_a_plain_onnx_file_gets_graph_only_steps():
    """A user's ONNX file has no torch model: a training compressor there could never build."""
    for name in ("default", "full"):
        assert not [s.key for s in RECIPES[("onnx", name)] if s.compressor in NEEDS_TORCH]


def test_a_foreign_models_default_needs_no_training_and_full_labels_what_was_not_fine_tuned():
    """Pruning and SVD change a user's model and nothing retrains it: never in the default, and every table says so."""
    for owner in ("onnx", "onnx-eval"):
        default, full = RECIPES[(owner, "default")], RECIPES[(owner, "full")]
        assert {s.compressor for s in default} <= {"inc-int8", "int8-mixed", "embedding-quant"}
        assert not [s for s in default if s.label]
        extra = full[len(default):]
        assert {s.compressor for s in extra} == {"prune-magnitude", "lowrank-svd"}
        assert all(s.label == "no fine-tuning" and LABEL_TAGS[s.label] == "noft" for s in extra)
    static = [s for s in RECIPES[("onnx-eval", "default")] if s.compressor == "inc-int8" and s.config.approach == "static"]
    assert static and not [s for s in RECIPES[("onnx", "default")] if s.compressor == "inc-int8" and s.config.approach == "static"]


def test_steps_are_immutable_and_compare_by_value():
    step = RECIPES[("onnx", "default")][0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.key = "other"  # type: ignore[misc]
    assert Step(step.key, step.compressor, step.config) == step
