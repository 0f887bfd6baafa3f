"""Keys are stable, and change exactly when an input that matters changes."""
import copy

import pytest

from workflow_lib import keys
from workflow_lib.search_space import trial_training_config

FP = {"kind": "embedded", "generator_version": "1", "n_posts": 800, "seed": 13}


def test_canonical_json_ignores_key_order():
    assert keys.digest({"a": 1, "b": [1, 2]}) == keys.digest({"b": [1, 2], "a": 1})
    assert len(keys.digest({})) == keys.KEY_LENGTH


def test_data_key_is_stable_across_calls(base_config):
    # A pinned value: a change here invalidates every cache on users' disks, so it must be deliberate.
    k = keys.data_key(FP, base_config["data"])
    assert k == keys.data_key(copy.deepcopy(FP), copy.deepcopy(base_config["data"]))
    assert len(k) == 12 and all(c in "0123456789abcdef" for c in k)


@pytest.mark.parametrize("path,value", [
    (("split", "seed"), 7), (("n_folds",), 5), (("alignment_threshold",), 0.7), (("split", "test_fraction"), 0.2),
])
def test_data_key_changes_with_preprocessing(base_config, path, value):
    cfg = copy.deepcopy(base_config["data"])
    node = cfg
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    assert keys.data_key(FP, cfg) != keys.data_key(FP, base_config["data"])


def test_data_key_changes_with_source_but_not_with_source_location_settings(base_config):
    other = {**FP, "seed": 14}
    assert keys.data_key(other, base_config["data"]) != keys.data_key(FP, base_config["data"])
    cfg = copy.deepcopy(base_config["data"])
    cfg["hub"]["timeout_s"] = 99  # how we reach the source is not what the data is
    assert keys.data_key(FP, cfg) == keys.data_key(FP, base_config["data"])


def _tk(cfg, **params):
    spec = cfg["encoders"]["minilm-l6"]
    return keys.trial_key("d" * 12, spec, trial_training_config(cfg["training"], params))


def test_trial_key_depends_on_params_not_on_study(base_config):
    a = _tk(base_config, learning_rate=1e-4, head="mlp")
    assert a == _tk(base_config, head="mlp", learning_rate=1e-4)
    assert a != _tk(base_config, learning_rate=2e-4, head="mlp")
    # a parameter set equal to the fixed default is the same trained model
    assert _tk(base_config, head="linear") == _tk(base_config)
    # the study definition (n_trials, sampler) does not enter the trial key
    changed = copy.deepcopy(base_config)
    changed["hpo"]["n_trials"] = 50
    changed["hpo"]["sampler"]["seed"] = 1
    assert _tk(changed, head="mlp", learning_rate=1e-4) == a
    # the seed does
    changed["training"]["seed"] = 1
    assert _tk(changed, head="mlp", learning_rate=1e-4) != a


def test_study_key_changes_with_study_definition(base_config):
    spec = base_config["encoders"]["minilm-l6"]
    def sk(c):
        return keys.study_key("d" * 12, spec, c["training"], c["hpo"])
    base = sk(base_config)
    for mutate in (lambda c: c["hpo"].__setitem__("n_trials", 9),
                   lambda c: c["hpo"]["sampler"].__setitem__("seed", 9),
                   lambda c: c["hpo"]["search_space"].pop("batch_size"),
                   lambda c: c["training"].__setitem__("epochs", 9)):
        c = copy.deepcopy(base_config)
        mutate(c)
        assert sk(c) != base
    assert sk(copy.deepcopy(base_config)) == base


def test_selection_key_is_order_independent(base_config):
    c1 = {"backbone": "a", "study_key": "1" * 12, "variant": 1, "trial_key": "2" * 12}
    c2 = {"backbone": "b", "study_key": "3" * 12, "variant": 1, "trial_key": "4" * 12}
    s, b = base_config["selection"], base_config["benchmark"]
    assert keys.selection_key([c1, c2], s, b) == keys.selection_key([c2, c1], s, b)
    assert keys.selection_key([c1], s, b) != keys.selection_key([c1, c2], s, b)
    assert keys.selection_key([c1], {**s, "latency_budget_ms": 10}, b) != keys.selection_key([c1], s, b)


def test_final_key(base_config):
    f = keys.final_key("a" * 12, "b" * 12, base_config["final"], base_config["refit"])
    assert f != keys.final_key("c" * 12, "b" * 12, base_config["final"], base_config["refit"])
    assert f != keys.final_key("a" * 12, "b" * 12, {"epochs": 2}, base_config["refit"])


def test_file_sha256(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert keys.file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_only_keys_module_hashes(repo):
    """Single source of truth: no other module of the project calls hashlib."""
    offenders = []
    for path in list((repo / "workflow_lib").rglob("*.py")) + list((repo / "scripts").glob("*.py")) + \
            list((repo / "rules").glob("*.smk")) + [repo / "Snakefile"]:
        if path.name == "keys.py":
            continue
        if "hashlib" in path.read_text():
            offenders.append(str(path.relative_to(repo)))
    assert offenders == []
