"""The one run-mode function, variants scanned from disk, search space sampling."""
import optuna
import pytest

from workflow_lib.runmode import run_mode, study_variant
from workflow_lib.search_space import suggest, trial_training_config


def _cfg(**modes):
    return {"run": {"mode": modes}}


def test_defaults_and_inheritance():
    assert run_mode(_cfg(), "hpo") == "reuse_if_exists"
    assert run_mode(_cfg(hpo="force_new", benchmark=None), "benchmark") == "force_new"
    assert run_mode(_cfg(hpo="force_new", benchmark="reuse_if_exists"), "benchmark") == "reuse_if_exists"
    assert run_mode(_cfg(hpo="force_new"), "final") == "reuse_if_exists"
    with pytest.raises(ValueError, match="unknown stage"):
        run_mode(_cfg(), "refit_all")


def test_variant_from_disk(tmp_path):
    root = tmp_path / "study"
    assert study_variant(_cfg(), str(root)) == 1
    assert study_variant(_cfg(hpo="force_new"), str(root)) == 1
    (root / "v1").mkdir(parents=True)
    (root / "v3").mkdir()
    (root / "notes").mkdir()
    assert study_variant(_cfg(), str(root)) == 3
    assert study_variant(_cfg(hpo="resume_if_incomplete"), str(root)) == 3
    assert study_variant(_cfg(hpo="force_new"), str(root)) == 4


def test_only_runmode_reads_run_mode(repo):
    hits = []
    for path in list((repo / "workflow_lib").rglob("*.py")) + list((repo / "scripts").glob("*.py")) + \
            list((repo / "rules").glob("*.smk")) + [repo / "Snakefile"]:
        if path.name != "runmode.py" and '"mode"' in path.read_text():
            hits.append(path.name)
    assert hits == []


SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "head": {"type": "categorical", "choices": ["linear", "mlp"]},
    "head_hidden": {"type": "int", "low": 64, "high": 512, "step": 64, "when": {"head": ["mlp"]}},
}


@pytest.mark.parametrize("fixed,expected_keys", [
    ({"learning_rate": 1e-4, "head": "linear"}, {"learning_rate", "head"}),
    ({"learning_rate": 1e-4, "head": "mlp", "head_hidden": 128}, {"learning_rate", "head", "head_hidden"}),
])
def test_suggest_branches_give_valid_configs(base_config, fixed, expected_keys):
    params = suggest(optuna.trial.FixedTrial(fixed), SPACE)
    assert set(params) == expected_keys
    tcfg = trial_training_config(base_config["training"], params)
    assert tcfg["head"] == fixed["head"]
    if fixed["head"] == "linear":
        assert tcfg["head_hidden"] == base_config["training"]["head_hidden"]


def test_suggest_with_real_sampler_stays_in_bounds():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        p = suggest(t, SPACE)
        assert 1e-5 <= p["learning_rate"] <= 1e-3
        assert ("head_hidden" in p) == (p["head"] == "mlp")
        study.tell(t, 0.0)
