"""The one run-mode function, variants scanned from disk, search space sampling."""

import optuna
import pytest

from workflow_lib.config import Hpo, Run
from workflow_lib.config.search_space import suggest, trial_training_config
from workflow_lib.pipeline.runmode import run_mode, study_variant


def _cfg(**modes):
    """The resolved run section with these modes (the schema fills the others)."""
    return Run.resolve({"mode": modes})


def test_defaults_and_inheritance():
    assert run_mode(_cfg(), "hpo") == "reuse_if_exists"
    assert run_mode(_cfg(hpo="force_new", benchmark=None), "benchmark") == "force_new"
    assert run_mode(_cfg(hpo="force_new", benchmark="reuse_if_exists"), "benchmark") == "reuse_if_exists"
    assert run_mode(_cfg(hpo="force_new"), "final") == "reuse_if_exists"
    with pytest.raises(ValueError, match="unknown stage"):
        run_mode(_cfg(), "refit_all")


def test_variant_from_disk(tmp_path):
    from workflow_lib.persistence.paths import existing_variants

    bdir = tmp_path / "hpo" / "tiny-a"
    found = existing_variants(bdir)
    assert found == []
    assert study_variant(_cfg(), found, "aaa") == 1
    assert study_variant(_cfg(hpo="force_new"), found, "aaa") == 1
    (bdir / "aaa" / "v1").mkdir(parents=True)
    (bdir / "bbb" / "v2").mkdir(parents=True)  # a second study (other search space) of the backbone
    (bdir / "aaa" / "v3").mkdir()  # a forced new variant of the first
    (bdir / "aaa" / "notes").mkdir()
    found = existing_variants(bdir)
    assert found == [(1, "aaa"), (2, "bbb"), (3, "aaa")]
    assert study_variant(_cfg(), found, "aaa") == 3  # newest of this definition
    assert study_variant(_cfg(), found, "bbb") == 2
    assert study_variant(_cfg(hpo="resume_if_incomplete"), found, "bbb") == 2
    assert study_variant(_cfg(), found, "ccc") == 4  # a new definition: a new variant
    assert study_variant(_cfg(hpo="force_new"), found, "aaa") == 4
    # a job process never creates a variant: it resolves to the one the main process made
    assert study_variant(_cfg(hpo="force_new"), found, "aaa", main_process=False) == 3


def test_force_tokens_only_move_for_force_new_and_never_in_a_dry_run(tmp_path, repo):
    import os

    from workflow_lib import config
    from workflow_lib.pipeline.runmode import force_token, forced_rules_hint, prepare_force_tokens

    def with_modes(**modes):
        return config.load(
            repo / "config" / "config.yaml", overrides={"results_dir": str(tmp_path), "run": {"mode": modes}}
        )

    cfg = with_modes(final="force_new")
    assert prepare_force_tokens(cfg, touch=False) == []
    tokens = {s: force_token(str(tmp_path), s) for s in ("benchmark", "selection", "final")}
    assert all(os.stat(p).st_mtime == 0 for p in tokens.values())  # new tokens force nothing
    assert prepare_force_tokens(cfg, touch=True) == ["final"]
    assert os.stat(tokens["final"]).st_mtime > 1e9
    assert os.stat(tokens["selection"]).st_mtime == 0 and os.stat(tokens["benchmark"]).st_mtime == 0
    # benchmark inherits hpo's force_new
    cfg2 = with_modes(hpo="force_new", benchmark=None)
    assert prepare_force_tokens(cfg2, touch=True) == ["benchmark"]
    assert forced_rules_hint("final") == "final"


def test_only_runmode_reads_run_mode(repo):
    hits = []
    for path in (
        list((repo / "workflow_lib").rglob("*.py"))
        + list((repo / "scripts").glob("*.py"))
        + list((repo / "rules").glob("*.smk"))
        + [repo / "Snakefile"]
    ):
        if path.name != "runmode.py" and '"mode"' in path.read_text():
            hits.append(path.name)
    assert hits == []


SPACE = Hpo.resolve(
    {
        "search_space": {  # resolved: the schema fills each range's log
            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
            "head": {"type": "categorical", "choices": ["linear", "mlp"]},
            "head_hidden": {"type": "int", "low": 64, "high": 512, "step": 64, "when": {"head": ["mlp"]}},
        }
    }
).search_space


@pytest.mark.parametrize(
    "fixed,expected_keys",
    [
        ({"learning_rate": 1e-4, "head": "linear"}, {"learning_rate", "head"}),
        ({"learning_rate": 1e-4, "head": "mlp", "head_hidden": 128}, {"learning_rate", "head", "head_hidden"}),
    ],
)
def test_suggest_branches_give_valid_configs(base_config, fixed, expected_keys):
    params = suggest(optuna.trial.FixedTrial(fixed), SPACE, base_config.training)
    assert set(params) == expected_keys
    tcfg = trial_training_config(base_config["training"], params)
    assert tcfg["head"] == fixed["head"]
    if fixed["head"] == "linear":
        assert tcfg["head_hidden"] == base_config["training"]["head_hidden"]


def test_suggest_with_real_sampler_stays_in_bounds(base_config):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        p = suggest(t, SPACE, base_config.training)
        assert 1e-5 <= p["learning_rate"] <= 1e-3
        assert ("head_hidden" in p) == (p["head"] == "mlp")
        study.tell(t, 0.0)


def test_force_new_training_starts_afresh_other_modes_resume():
    from workflow_lib.pipeline.runmode import resumes_training

    assert resumes_training(_cfg(), "final")
    assert resumes_training(_cfg(final="resume_if_incomplete"), "final")
    assert not resumes_training(_cfg(final="force_new"), "final")
