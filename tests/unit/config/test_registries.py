"""The config schema offers exactly what the code can build: every enum equals its registry, both ways.

A name in the schema but not in the registry passes validation and fails at the first trial; a name in
the registry but not in the schema can never be configured. Either is a bug this file catches.
"""

import numpy as np
import pytest

from workflow_lib.config import load_schema
from workflow_lib.learning import augment
from workflow_lib.learning.models.evidence_heads import EVIDENCE_HEADS
from workflow_lib.learning.models.heads import HEADS
from workflow_lib.learning.models.losses import LOSSES
from workflow_lib.learning.models.model import Coupler
from workflow_lib.learning.models.pooling import POOLING


def _training_enum(name: str) -> list:
    return load_schema("config")["$defs"]["training"]["properties"][name]["enum"]


def _hpo_enum(*path: str) -> list:
    node = load_schema("config")["properties"]["hpo"]
    for p in path:
        node = node["properties"][p]
    return node["enum"]


@pytest.mark.parametrize(
    "setting,registry",
    [
        ("head", HEADS),
        ("pooling", POOLING),
        ("loss", LOSSES),
        ("evidence_head", EVIDENCE_HEADS),
        ("coupling", Coupler.METHODS),
    ],
    ids=["head", "pooling", "loss", "evidence_head", "coupling"],
)
def test_training_enum_equals_registry(setting, registry):
    enum = _training_enum(setting)
    assert len(enum) == len(set(enum)), f"training.{setting}: duplicate names in the schema enum"
    assert set(enum) - set(registry) == set(), f"training.{setting}: in the schema, not registered"
    assert set(registry) - set(enum) == set(), f"training.{setting}: registered, not in the schema"


def test_coupling_pooling_enum_is_the_poolings_a_coupler_can_use():
    # The coupler pools evidence-weighted token states of the last layer only, so a pooling that needs
    # every layer's states cannot serve, and cls would read position 0 alone (ignoring the evidence).
    usable = {n for n, cls in POOLING.items() if not cls.needs_all_hidden_states and n != "cls"}
    assert set(_training_enum("coupling_pooling")) == usable
    assert usable == {"mean", "max", "attention"}


def test_augment_enum_is_none_plus_every_known_recipe():
    enum = _training_enum("augment")
    known = {"none", *augment.RECIPES, *augment.UNAVAILABLE_RECIPES}
    assert len(enum) == len(set(enum))
    assert set(enum) == known
    assert set(augment.RECIPES) & set(augment.UNAVAILABLE_RECIPES) == set()


def test_every_sampler_name_builds_its_own_sampler(base_config):
    import optuna

    from workflow_lib.config import deep_merge, resolve
    from workflow_lib.search.hpo import make_sampler

    built = {}
    for name in _hpo_enum("sampler", "name"):
        cfg = resolve(deep_merge(base_config, {"hpo": {"sampler": {"name": name}}}))
        built[name] = type(make_sampler(cfg))
    assert built == {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}


def test_objective_metric_names_are_metrics_the_code_computes():
    from workflow_lib.learning.metrics import multilabel_metrics
    from workflow_lib.learning.spans import evidence_metrics

    y = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0]])
    criteria = multilabel_metrics(y, y.astype(float))
    assert set(_hpo_enum("metric")) <= set(criteria)
    evidence = evidence_metrics(["a b"], [[(0, 1)]], [[(0, 1)]])
    assert set(_hpo_enum("objective", "evidence_metric")) <= set(evidence)
