"""The model-zoo search space: every branch gives a valid model config; the trial key covers
exactly the settings that change the trained model."""

from pathlib import Path

import optuna
import pytest

from workflow_lib.config import ConfigError, Training, deep_merge, keys, load_yaml, plain, resolve
from workflow_lib.config.search_space import (
    CONDITIONS,
    check_search_space,
    effective_config,
    is_active,
    suggest,
    trial_training_config,
)

ZOO = {
    "input_format": {"type": "categorical", "choices": ["multi_label", "binary_pairs"]},
    "pooling": {"type": "categorical", "choices": ["cls", "mean", "attention", "last_2_layer_mix"]},
    "head": {"type": "categorical", "choices": ["linear", "mlp", "mlp_residual", "gated", "multi_sample_dropout"]},
    "dropout": {"type": "float", "low": 0.1, "high": 0.5},
    "loss": {"type": "categorical", "choices": ["bce", "weighted_bce", "focal", "adaptive_focal", "hybrid"]},
    "loss_gamma": {"type": "float", "low": 1.0, "high": 5.0},
    "loss_alpha": {"type": "float", "low": 0.1, "high": 0.9},
    "label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
    "evidence_task": {"type": "categorical", "choices": [False, True]},
    "evidence_head": {
        "type": "categorical",
        "choices": ["start_end_linear", "start_end_mlp", "biaffine", "bio_crf", "sentence_reranker"],
    },
    "head_hidden": {"type": "int", "low": 128, "high": 1024, "log": True},
    "multitask": {"type": "categorical", "choices": ["independent", "coupled"]},
    "coupling": {"type": "categorical", "choices": ["concat", "add", "mean", "weighted_sum", "weighted_mean"]},
    "coupling_pooling": {"type": "categorical", "choices": ["mean", "max", "attention"]},
    "finetune": {"type": "categorical", "choices": ["full", "lora"]},
    "lora_r": {"type": "int", "low": 2, "high": 16, "log": True},
    "lora_alpha": {"type": "float", "low": 4, "high": 32},
    "augment": {"type": "categorical", "choices": ["none", "synonym_swap", "word_swap"]},
    "augment_prob": {"type": "float", "low": 0.0, "high": 0.5},
}

BASE = {"head": "linear", "pooling": "mean", "loss": "bce"}
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def zoo():
    """The smoke config with the fixed training settings BASE (the rest the schema's defaults) and the ZOO
    space, resolved as a job resolves it: what make_objective hands suggest and trial_training_config."""
    raw = deep_merge(load_yaml(REPO / "config" / "config.yaml"), load_yaml(REPO / "config" / "smoke.yaml"))
    raw["training"] = dict(BASE)
    raw["hpo"]["search_space"] = ZOO
    return resolve(raw)


def _params(zoo, **fixed):
    return suggest(optuna.trial.FixedTrial(fixed), zoo.hpo.search_space, zoo.training)


def test_the_zoo_fixture_is_the_zoo_space_over_base(zoo):
    assert list(zoo.hpo.search_space) == list(ZOO)
    assert {k: zoo.training[k] for k in BASE} == BASE
    assert zoo.training == Training.resolve(BASE)


def test_full_zoo_space_is_accepted(smoke_config):
    check_search_space(ZOO, smoke_config["training"])


@pytest.mark.parametrize(
    "fixed,present,absent",
    [
        # plain criteria model: no evidence, LoRA, focal or augmentation settings are asked for
        (
            dict(
                input_format="multi_label",
                pooling="cls",
                head="linear",
                dropout=0.1,
                loss="bce",
                label_smoothing=0.0,
                evidence_task=False,
                finetune="full",
                augment="none",
            ),
            {
                "input_format",
                "pooling",
                "head",
                "dropout",
                "loss",
                "label_smoothing",
                "evidence_task",
                "finetune",
                "augment",
            },
            {
                "head_hidden",
                "loss_gamma",
                "loss_alpha",
                "evidence_head",
                "multitask",
                "coupling",
                "coupling_pooling",
                "lora_r",
                "lora_alpha",
                "augment_prob",
            },
        ),
        # mlp head -> hidden; focal -> gamma only; lora -> its parameters
        (
            dict(
                input_format="binary_pairs",
                pooling="attention",
                head="mlp",
                head_hidden=256,
                dropout=0.3,
                loss="focal",
                loss_gamma=3.0,
                label_smoothing=0.1,
                evidence_task=False,
                finetune="lora",
                lora_r=4,
                lora_alpha=8.0,
                augment="synonym_swap",
                augment_prob=0.3,
            ),
            {"head_hidden", "loss_gamma", "lora_r", "lora_alpha", "augment_prob"},
            {"loss_alpha", "evidence_head", "multitask", "coupling"},
        ),
        # hybrid -> gamma and alpha; evidence on, independent -> no coupling
        (
            dict(
                input_format="multi_label",
                pooling="last_2_layer_mix",
                head="gated",
                head_hidden=128,
                dropout=0.2,
                loss="hybrid",
                loss_gamma=2.0,
                loss_alpha=0.4,
                label_smoothing=0.0,
                evidence_task=True,
                evidence_head="bio_crf",
                multitask="independent",
                finetune="full",
                augment="none",
            ),
            {"loss_gamma", "loss_alpha", "evidence_head", "multitask"},
            {"coupling", "coupling_pooling", "lora_r"},
        ),
        # coupled -> coupling method and its pooling; the sentence_reranker evidence head has a hidden layer,
        # so head_hidden is asked although the criteria head has none (it shapes the model: trial key)
        (
            dict(
                input_format="multi_label",
                pooling="mean",
                head="multi_sample_dropout",
                head_hidden=512,
                dropout=0.5,
                loss="weighted_bce",
                label_smoothing=0.0,
                evidence_task=True,
                evidence_head="sentence_reranker",
                multitask="coupled",
                coupling="weighted_mean",
                coupling_pooling="max",
                finetune="full",
                augment="none",
            ),
            {"evidence_head", "multitask", "coupling", "coupling_pooling", "head_hidden"},
            {"loss_gamma"},
        ),
    ],
)
def test_every_branch_asks_exactly_its_parameters_and_is_valid(zoo, fixed, present, absent):
    params = _params(zoo, **fixed)
    assert present <= set(params)
    assert not (absent & set(params))
    tcfg = trial_training_config(zoo.training, params)
    assert isinstance(tcfg, Training)
    for k, v in params.items():
        assert tcfg[k] == v


def test_random_sampler_over_the_zoo_gives_valid_configs_and_respects_conditions(zoo):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(60):
        t = study.ask()
        params = suggest(t, zoo.hpo.search_space, zoo.training)
        tcfg = trial_training_config(zoo.training, params)
        for name in params:
            assert is_active(name, tcfg), name
        seen.add((tcfg["evidence_task"], tcfg["multitask"] if tcfg["evidence_task"] else None))
        study.tell(t, 0.0)
    assert (True, "coupled") in seen and (False, None) in seen


def test_inert_settings_do_not_change_the_trial_key(smoke_config):
    spec = smoke_config["encoders"]["tiny-a"]
    base = trial_training_config(smoke_config["training"], {"loss": "bce"})

    def key(**over):
        return keys.trial_key("d" * 12, spec, base.replace(**over))

    k = key()
    assert key(loss_gamma=4.0) == k  # gamma is unused by bce
    assert key(coupling="add") == k  # no evidence task, no coupling
    assert key(lora_r=32) == k  # full fine-tuning
    assert key(augment_prob=0.4) == k  # no augmentation
    assert key(threads=2, eval_batch_size=7) == k  # speed only
    assert key(loss="focal") != k
    assert key(loss="focal", loss_gamma=4.0) != key(loss="focal")
    assert key(evidence_task=True) != k
    assert key(evidence_task=True, coupling="add") == key(evidence_task=True)  # still independent
    assert key(evidence_task=True, multitask="coupled", coupling="add") != key(evidence_task=True, multitask="coupled")
    assert key(input_format="binary_pairs") != k


def test_effective_config_drops_exactly_the_inert_settings():
    cfg = effective_config(Training.resolve({"loss": "hybrid", "head": "linear"}))
    assert {"loss_gamma", "loss_alpha"} <= set(cfg)
    assert "head_hidden" not in cfg and "lora_r" not in cfg and "threads" not in cfg
    assert set(CONDITIONS) - set(cfg) >= {"coupling", "evidence_head", "lora_r", "augment_prob"}


def test_space_errors_name_the_parameter_and_the_fix(smoke_config):
    training = smoke_config["training"]
    with pytest.raises(ConfigError, match=r"hpo.search_space.loss_gamma: never used.*training.loss is fixed"):
        check_search_space({"loss_gamma": {"type": "float", "low": 1, "high": 5}}, {**training, "loss": "bce"})
    with pytest.raises(ConfigError, match=r"coupling: depends on 'multitask', which is declared after it"):
        check_search_space(
            {
                "evidence_task": {"type": "categorical", "choices": [True]},
                "coupling": {"type": "categorical", "choices": ["add"]},
                "multitask": {"type": "categorical", "choices": ["coupled"]},
            },
            training,
        )
    with pytest.raises(ConfigError, match=r"hpo.search_space.head: value 'transformer_xl' cannot produce"):
        check_search_space({"head": {"type": "categorical", "choices": ["linear", "transformer_xl"]}}, training)
    with pytest.raises(ConfigError, match=r"loss_gamma: value 9"):
        check_search_space(
            {
                "loss": {"type": "categorical", "choices": ["focal"]},
                "loss_gamma": {"type": "float", "low": 1, "high": 9},
            },
            training,
        )


@pytest.mark.parametrize("recipe", ["back_translation", "embedding_swap", "checklist", "clare", "back_transcription"])
def test_download_recipes_are_refused_with_the_reason(smoke_config, recipe):
    raw = deep_merge(
        smoke_config, {"hpo": {"search_space": {"augment": {"type": "categorical", "choices": ["none", recipe]}}}}
    )
    with pytest.raises(ConfigError, match=rf"augment.*{recipe}.*cannot run here"):
        resolve(raw)


def test_evidence_objective_needs_the_evidence_task_in_every_trial(smoke_config):
    raw = plain(smoke_config)  # the raw config, changed, then resolved
    raw["hpo"]["objective"] = {"criteria_weight": 0.5, "evidence_weight": 0.5}
    with pytest.raises(ConfigError, match=r"hpo.objective.evidence_weight.*evidence_task"):
        resolve(raw)
    raw["training"]["evidence_task"] = True
    assert resolve(raw)["hpo"]["objective"]["evidence_metric"] == "token_f1"
    raw["training"].update(evidence_task=False, criteria_from="sentences")  # evidence from its sentence scores
    assert resolve(raw)["training"]["criteria_from"] == "sentences"


def test_head_hidden_shapes_an_evidence_head_with_a_hidden_layer():
    """head_hidden is the hidden size of the mlp-type criteria heads and of the start_end_mlp, biaffine and
    sentence_reranker evidence heads: with a linear criteria head it still enters the trial key there."""
    linear = Training.resolve({"head": "linear", "evidence_task": True, "evidence_head": "biaffine"})
    assert is_active("head_hidden", linear)
    assert not is_active("head_hidden", linear.replace(evidence_head="start_end_linear"))
    assert not is_active("head_hidden", linear.replace(evidence_task=False))
    assert is_active("head_hidden", linear.replace(evidence_task=False, head="gated"))
