"""The resolved config's typed, frozen sections: they hold exactly the schema's settings, cannot change,
and serialise like the plain dicts the schema completed (so keys and reports do not move)."""

import copy
import json
import pickle

import pytest
import yaml

from workflow_lib import config as config_lib
from workflow_lib.config import ConfigError, load_schema
from workflow_lib.config.keys import canonical_json
from workflow_lib.config.sections import Config, Encoder, FrozenList, Section, Training, freeze, plain, section_types

MAIN = "config/config.yaml"


def _schema_settings(cls) -> set[str]:
    return set(cls.subschema()["properties"])


@pytest.mark.parametrize("cls", section_types(), ids=lambda c: c.__name__)
def test_each_section_names_exactly_the_schema_settings(cls):
    assert set(cls.__annotations__) == _schema_settings(cls)


def test_config_names_every_top_level_section():
    assert set(Config.__annotations__) == set(load_schema("config")["properties"])
    assert set(Config.NESTED) <= set(Config.__annotations__)


def test_resolve_gives_typed_sections_all_the_way_down():
    cfg = config_lib.load(MAIN)
    assert type(cfg) is Config
    assert type(cfg.training) is Training and type(cfg["training"]) is Training
    assert type(cfg.hpo.objective).__name__ == "Objective"
    assert type(cfg.data.split).__name__ == "Split"
    assert all(type(spec) is Encoder for spec in cfg.encoders.values())
    assert cfg.training.batch_size == cfg["training"]["batch_size"]
    assert isinstance(cfg.training.lora_target_modules, FrozenList)


def test_sections_are_frozen_everywhere():
    cfg = config_lib.load(MAIN)
    with pytest.raises(TypeError, match="frozen"):
        cfg.training["epochs"] = 9
    with pytest.raises(TypeError, match="frozen"):
        cfg.training.epochs = 9
    with pytest.raises(TypeError, match="frozen"):
        cfg.hpo.search_space.pop("learning_rate", None)
    with pytest.raises(TypeError, match="frozen"):
        cfg.training.lora_target_modules.append("key")
    with pytest.raises(TypeError, match="frozen"):
        cfg.data.split.update(seed=1)
    assert copy.deepcopy(cfg) is cfg


def test_sections_serialise_and_compare_as_the_plain_dicts():
    cfg = config_lib.load(MAIN)
    raw = plain(cfg)
    assert type(raw) is dict and type(raw["training"]) is dict and type(raw["training"]["lora_target_modules"]) is list
    assert cfg == raw and cfg.training == raw["training"]
    assert canonical_json(cfg) == canonical_json(raw)
    assert json.loads(json.dumps(cfg)) == raw
    back = pickle.loads(pickle.dumps(cfg))
    assert back == cfg and type(back.training) is Training
    assert yaml.safe_load(yaml.safe_dump(plain(cfg.training))) == raw["training"]


def test_a_missing_setting_names_what_the_section_has():
    training = Training.resolve({})
    with pytest.raises(AttributeError, match="no setting 'epoch'.*epochs"):
        training.epoch  # noqa: B018


def test_training_resolve_fills_the_schema_defaults_and_names_bad_keys():
    schema = load_schema("config")["$defs"]["training"]["properties"]
    training = Training.resolve({"epochs": 2})
    assert training.epochs == 2
    assert training.batch_size == schema["batch_size"]["default"]
    with pytest.raises(ConfigError, match=r"'batchsize' -> 'batch_size'"):
        Training.resolve({"batchsize": 8})
    with pytest.raises(ConfigError, match="embedding_swap.*cannot run here"):
        Training.resolve({"augment": "embedding_swap"})


def test_a_trial_is_the_study_training_with_its_params_validated_once():
    base = Training.resolve({"epochs": 2})
    trial = base.with_params({"learning_rate": 1e-4, "head": "mlp"})
    assert type(trial) is Training
    assert trial.learning_rate == 1e-4 and trial.head == "mlp" and trial.epochs == 2
    assert base.learning_rate != 1e-4  # the study's section is untouched
    with pytest.raises(ConfigError, match="(?s)invalid trial configuration.*head"):
        base.with_params({"head": "nope"})
    assert base.replace(evidence_task=True).evidence_task is True


def test_encoder_resolve_fills_max_length():
    spec = Encoder.resolve({"source": "tiny", "tiny": {}})
    assert spec.max_length == load_schema("config")["$defs"]["backbone"]["properties"]["max_length"]["default"]
    assert spec.tiny.hidden_size == 32
    with pytest.raises(ConfigError, match="max_length"):
        Encoder.resolve({"source": "tiny", "tiny": {}, "max_length": 2})


def test_freeze_of_a_plain_mapping_is_a_generic_section():
    s = freeze({"a": {"b": [1, 2]}})
    assert type(s) is Section and type(s.a) is Section and s.a.b == [1, 2]


def test_a_job_receives_the_config_resolved_once_and_frozen(monkeypatch):
    """What every stage gets: jobs.start resolves Snakemake's merged config once into a frozen Config; what the
    stages derive from it (a trial's training, a merge with overrides) never changes it."""
    import logging
    import sys
    import threading
    from types import SimpleNamespace

    from workflow_lib.config.search_space import trial_training_config
    from workflow_lib.pipeline import jobs

    smoke = "config/smoke.yaml"
    raw = config_lib.deep_merge(config_lib.load_yaml(MAIN), config_lib.load_yaml(smoke))  # as --configfile merges
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # start installs its own; restored after the test
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        cfg, threads = jobs.start(SimpleNamespace(log=[], rule="hpo", threads=1, config=raw, wildcards=None))
    finally:  # start points root logging at the job's log; give pytest its handlers back
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
    assert type(cfg) is Config and threads == 1
    assert cfg == config_lib.load(MAIN, smoke)
    assert raw == config_lib.deep_merge(config_lib.load_yaml(MAIN), config_lib.load_yaml(smoke))  # untouched
    for change in (
        lambda: cfg.hpo.objective.__setitem__("evidence_weight", 1.0),
        lambda: cfg.encoders["tiny-a"].__setitem__("max_length", 8),
        lambda: cfg.encoders["tiny-a"].tiny.update(hidden_size=64),
        lambda: cfg.checkpoints.setdefault("enabled", False),
        lambda: cfg.backbones.append("tiny-c"),
    ):
        with pytest.raises(TypeError, match="frozen"):
            change()
    trial = trial_training_config(cfg.training, {"learning_rate": 4.2e-4})
    assert type(trial) is Training and trial.learning_rate == 4.2e-4 and cfg.training.learning_rate != 4.2e-4
    with pytest.raises(TypeError, match="frozen"):
        trial["epochs"] = 9
    # a resolved config merged with overrides is a raw config again (plain dicts); resolving it changes nothing
    merged = config_lib.deep_merge(cfg, {"hpo": {"n_trials": 7}})
    assert type(merged["training"]) is dict and type(merged["hpo"]["sampler"]) is dict
    assert config_lib.resolve(merged).hpo.n_trials == 7 and cfg.hpo.n_trials != 7
    assert config_lib.resolve(cfg) == cfg


def test_an_integral_float_becomes_the_int_its_setting_is_annotated():
    """The schema's "integer" accepts 256.0 (YAML 2.56e2, a JSON tool's 256.0); freezing makes it the int the
    section's annotation says, so nothing downstream re-casts it and keys hash it as the int."""
    from workflow_lib.config.sections import Evaluation, Final

    training = Training.resolve({"batch_size": 16.0, "max_windows": 4.0, "learning_rate": 1.0})
    assert training.batch_size == 16 and type(training.batch_size) is int
    assert type(training.max_windows) is int  # int | None
    assert type(training.learning_rate) is float  # annotated float: stays a float
    assert type(Final.resolve({"epochs": 3.0}).epochs) is int and Final.resolve({}).epochs is None
    assert type(Evaluation.resolve({"bootstrap": 500.0}).bootstrap) is int
    cfg = config_lib.load(MAIN, overrides={"evaluation": {"bootstrap": 1000.0, "seed": 2.0}, "data": {"n_folds": 3.0}})
    assert (type(cfg.evaluation.bootstrap), type(cfg.evaluation.seed), type(cfg.data.n_folds)) == (int, int, int)
    assert canonical_json(cfg.evaluation) == '{"bootstrap":1000,"seed":2}'
    with pytest.raises(ConfigError, match="bootstrap"):  # not integral: the schema refuses it
        config_lib.load(MAIN, overrides={"evaluation": {"bootstrap": 2.5}})


def test_thresholds_and_evaluation_sections_default_from_the_schema():
    cfg = config_lib.load(MAIN)
    assert cfg.thresholds == {"source": "oof"} and cfg.evaluation == {"bootstrap": 2000, "seed": 0}
    assert type(cfg.thresholds).__name__ == "Thresholds" and type(cfg.evaluation).__name__ == "Evaluation"
    with pytest.raises(ConfigError, match="thresholds.source"):
        config_lib.load(MAIN, overrides={"thresholds": {"source": "test"}})
