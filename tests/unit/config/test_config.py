"""Config validation: defaults filled, every bad key named with the allowed values."""

import copy

import pytest

from workflow_lib import config
from workflow_lib.config import ConfigError


def test_shipped_configs_validate(base_config, smoke_config):
    assert base_config["backbones"] == ["minilm-l6"]
    assert smoke_config["backbones"] == ["tiny-a", "tiny-b"]
    # defaults from the schema
    assert base_config["training"]["eval_batch_size"] == 64
    assert base_config["tracking"]["enabled"] is True
    assert base_config["run"]["mode"]["benchmark"] is None
    assert smoke_config["training"]["freeze_layers"] == 0


def test_null_search_space_entry_removes_a_parameter(repo):
    cfg = config.load(repo / "config" / "config.yaml", overrides={"hpo": {"search_space": {"head": None}}})
    assert "head" not in cfg["hpo"]["search_space"]
    assert "learning_rate" in cfg["hpo"]["search_space"]


def _load(repo, overrides):
    return config.load(repo / "config" / "config.yaml", overrides=overrides)


@pytest.mark.parametrize(
    "overrides,needles",
    [
        ({"training": {"lr": 1e-4}}, ["training", "'lr'", "learning_rate"]),
        ({"trainig": {}}, ["'trainig'", "training"]),
        ({"training": {"epochs": "three"}}, ["training.epochs", "integer", "'three'"]),
        ({"training": {"dropout": 1.5}}, ["training.dropout", "out of range"]),
        ({"training": {"head": "transformer"}}, ["training.head", "'transformer'", "linear", "mlp"]),
        (
            {"hpo": {"search_space": {"head": {"type": "categorical", "choices": []}}}},
            ["hpo.search_space.head.choices", "at least 1"],
        ),
        (
            {"hpo": {"search_space": {"head": {"type": "categorical", "choices": ["linear", "lstm"]}}}},
            ["hpo.search_space.head", "'lstm'", "cannot produce a valid model"],
        ),
        (
            {"hpo": {"search_space": {"dropout": {"type": "float", "low": 0.5, "high": 0.1}}}},
            ["hpo.search_space.dropout", "low 0.5 is above high 0.1"],
        ),
        (
            {"hpo": {"search_space": {"dropout": {"type": "float", "low": 0.1, "high": 0.99}}}},
            ["hpo.search_space.dropout", "0.99", "cannot produce a valid model"],
        ),
        (
            {"hpo": {"search_space": {"optimizer": {"type": "categorical", "choices": ["adam"]}}}},
            ["hpo.search_space.optimizer", "not a training setting"],
        ),
        (
            {"hpo": {"search_space": {"learning_rate": {"type": "float", "low": 0, "high": 1e-3, "log": True}}}},
            ["hpo.search_space.learning_rate", "log scale"],
        ),
        ({"backbones": ["bert-large"]}, ["backbones", "'bert-large'", "minilm-l6"]),
        ({"run": {"mode": {"hpo": "always"}}}, ["run.mode.hpo", "force_new"]),
        ({"data": {"source": "local"}}, ["data.local_path", "posts.csv"]),
        ({"encoders": {"x": {"source": "package"}}}, ["encoders.x", "'package' is a required property"]),
    ],
)
def test_bad_config_names_key_and_fix(repo, overrides, needles):
    with pytest.raises(ConfigError) as exc:
        _load(repo, overrides)
    msg = str(exc.value)
    for needle in needles:
        assert needle in msg, msg


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        config.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")


def test_deep_merge_like_snakemake():
    base = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    out = config.deep_merge(base, {"a": {"c": 3}, "l": [3]})
    assert out == {"a": {"b": 1, "c": 3}, "l": [3]}
    assert base == {"a": {"b": 1, "c": 2}, "l": [1, 2]}


def test_resolve_does_not_mutate_input(base_config):
    raw = {"encoders": copy.deepcopy(base_config["encoders"]), "backbones": ["minilm-l6"], "training": {}, "hpo": {}}
    before = copy.deepcopy(raw)
    out = config.resolve(raw)
    assert raw == before
    assert out["training"]["epochs"] == 3
