"""Keys are stable, and change exactly when an input that matters changes."""

import copy

import pytest

from workflow_lib.config import Data, deep_merge, keys, plain, resolve
from workflow_lib.config.search_space import trial_training_config

FP = {"kind": "embedded", "generator_version": "2", "n_posts": 800, "seed": 13}


def test_canonical_json_ignores_key_order():
    assert keys.digest({"a": 1, "b": [1, 2]}) == keys.digest({"b": [1, 2], "a": 1})
    assert len(keys.digest({})) == keys.KEY_LENGTH


def test_data_key_is_stable_across_calls(base_config):
    k = keys.data_key(FP, base_config["data"])
    assert k == keys.data_key(copy.deepcopy(FP), copy.deepcopy(base_config["data"]))
    assert len(k) == 12 and all(c in "0123456789abcdef" for c in k)


# PINNED KEYS. Every key names a directory of cached results on users' disks: a change to any value
# below invalidates every user's cached results (data, trials, studies, refits, selections, finals),
# so it must be deliberate - say so in the commit and the release notes, then update the literals.
# Values computed for the report contract of issue 18 through the functions the Snakefile uses (Plan and keys.*):
# every key moved, deliberately - the data key gained the prepared format (keys.PREPARED_FORMAT = 2: posts carry
# sentences and sentence labels, status-0 rows aligned) and always holds data.split.protocol, so every downstream
# key follows; the refit key covers thresholds (the checkpoint carries its thresholds), the final key thresholds
# and evaluation (the report's intervals).
# Issue 17 moved every key again, deliberately: the embedded data default is generator 3 (the real evidence density;
# a new data key), the main job decides from sentences (criteria_from: sentences, max) and the zoo searches the
# sentence settings.
PRESETS = {"main": (), "smoke": ("smoke.yaml",), "zoo": ("zoo.yaml",)}
PARAMS = {  # one trial's sampled parameters per preset (the zoo set reaches the conditional settings)
    "main": {"learning_rate": 1.0e-3, "batch_size": 8},
    "smoke": {"learning_rate": 1.0e-3, "head": "mlp"},
    "zoo": {
        "input_format": "binary_pairs",
        "pooling": "attention",
        "head": "gated",
        "head_hidden": 256,
        "loss": "hybrid",
        "loss_gamma": 2.0,
        "loss_alpha": 0.25,
        "evidence_head": "biaffine",
        "multitask": "coupled",
        "coupling": "weighted_sum",
        "coupling_pooling": "attention",
        "finetune": "lora",
        "lora_r": 4,
        "lora_alpha": 8.0,
        "augment": "deletion",
        "augment_prob": 0.2,
    },
}
PINNED = {
    "main": {
        "data_key": "472afabebbdd",
        "study": {"minilm-l6": "a4817e6e4cb4"},
        "trial_default": {"minilm-l6": "c711afa147b1"},
        "trial_params": {"minilm-l6": "863626fe9ff0"},
        "refit": "903d04824292",
        "selection": "e36695c3deff",
        "final": "54942ff75812",
        "final_co_best": "296e8e9419a5",
    },
    "smoke": {
        "data_key": "9de232f7c16b",
        "study": {"tiny-a": "3e7c45a17790", "tiny-b": "c5ea86479758"},
        "trial_default": {"tiny-a": "b415c5eaeb86", "tiny-b": "50fed8925194"},
        "trial_params": {"tiny-a": "791b9ad81b0a", "tiny-b": "04f5220feb71"},
        "refit": "2c60f487bd41",
        "selection": "6fd1f5246a2d",
        "final": "cfc90340ec7d",
        "final_co_best": "ae6cba4d1834",
    },
    "zoo": {
        "data_key": "f8cc1868a3ae",
        "study": {"tiny-a": "9239048c76e7"},
        "trial_default": {"tiny-a": "3bf45d4bb4d9"},
        "trial_params": {"tiny-a": "97d827ddce58"},
        "refit": "fe9ea99d2d0d",
        "selection": "4a019dadc383",
        "final": "ef37d11e729f",
        "final_co_best": "0e92b3a0f19e",
    },
}


def _preset_keys(repo, preset: str) -> dict:
    """Every key of one preset, computed as the Snakefile computes them (Plan over the resolved config)."""
    from workflow_lib import config
    from workflow_lib.pipeline.plan import Plan

    cfg = config.load(repo / "config" / "config.yaml", *(repo / "config" / f for f in PRESETS[preset]))
    plan = Plan(cfg)
    out = {"data_key": plan.data_key, "study": {}, "trial_default": {}, "trial_params": {}}
    candidates = []
    for b in cfg["backbones"]:
        out["study"][b] = plan.study_key(b)
        out["trial_default"][b] = keys.trial_key(
            plan.data_key, plan.spec(b), trial_training_config(cfg["training"], {})
        )
        out["trial_params"][b] = keys.trial_key(
            plan.data_key, plan.spec(b), trial_training_config(cfg["training"], PARAMS[preset])
        )
        candidates.append(
            {"backbone": b, "study_key": out["study"][b], "variant": 1, "trial_key": out["trial_params"][b]}
        )
    first = cfg["backbones"][0]
    out["refit"] = plan.refit_key(out["trial_params"][first])
    out["selection"] = plan.selection_key(candidates)
    out["final"] = plan.final_key(out["trial_params"][first])
    out["final_co_best"] = plan.final_key(out["trial_params"][first], [out["trial_default"][first]])
    return out


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_keys_are_pinned(repo, preset):
    assert _preset_keys(repo, preset) == PINNED[preset]


def test_seed_from_is_pinned():
    # Pinned like the keys above: augmentation seeds derive from it, so a change alters every augmented trial.
    assert keys.seed_from("fold", 0) == 16459850247467106653
    assert keys.seed_from("abc", 1, 2.5, None) == 5847866767618929547


@pytest.mark.parametrize(
    "path,value",
    [
        (("split", "seed"), 7),
        (("n_folds",), 5),
        (("alignment_threshold",), 0.7),
        (("split", "test_fraction"), 0.2),
    ],
)
def test_data_key_changes_with_preprocessing(base_config, path, value):
    raw = plain(base_config["data"])  # the section as a raw mapping, changed, then resolved
    node = raw
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    assert keys.data_key(FP, Data.resolve(raw)) != keys.data_key(FP, base_config["data"])


def test_data_key_changes_with_source_but_not_with_source_location_settings(base_config):
    other = {**FP, "seed": 14}
    assert keys.data_key(other, base_config["data"]) != keys.data_key(FP, base_config["data"])
    raw = plain(base_config["data"])
    raw["hub"]["timeout_s"] = 99  # how we reach the source is not what the data is
    assert keys.data_key(FP, Data.resolve(raw)) == keys.data_key(FP, base_config["data"])


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
    changed = resolve(deep_merge(base_config, {"hpo": {"n_trials": 50, "sampler": {"seed": 1}}}))
    assert (changed["hpo"]["n_trials"], changed["hpo"]["sampler"]["seed"]) == (50, 1)
    assert _tk(changed, head="mlp", learning_rate=1e-4) == a
    # the seed does
    changed = resolve(deep_merge(changed, {"training": {"seed": 1}}))
    assert _tk(changed, head="mlp", learning_rate=1e-4) != a


def test_study_key_changes_with_study_definition(base_config):
    spec = base_config["encoders"]["minilm-l6"]

    def sk(c):
        return keys.study_key("d" * 12, spec, c["training"], c["hpo"])

    base = sk(base_config)
    for mutate in (
        lambda c: c["hpo"].__setitem__("n_trials", 9),
        lambda c: c["hpo"]["sampler"].__setitem__("seed", 9),
        lambda c: c["hpo"]["search_space"].pop("batch_size"),
        lambda c: c["training"].__setitem__("epochs", 9),
    ):
        c = plain(base_config)  # the raw config, changed, then resolved
        mutate(c)
        assert sk(resolve(c)) != base
    assert sk(copy.deepcopy(base_config)) == base
    assert sk(resolve(plain(base_config))) == base


def test_selection_key_is_order_independent(base_config):
    c1 = {"backbone": "a", "study_key": "1" * 12, "variant": 1, "trial_key": "2" * 12}
    c2 = {"backbone": "b", "study_key": "3" * 12, "variant": 1, "trial_key": "4" * 12}
    s, b = base_config["selection"], base_config["benchmark"]
    assert keys.selection_key([c1, c2], s, b) == keys.selection_key([c2, c1], s, b)
    assert keys.selection_key([c1], s, b) != keys.selection_key([c1, c2], s, b)
    assert keys.selection_key([c1], {**s, "latency_budget_ms": 10}, b) != keys.selection_key([c1], s, b)


def test_final_key(base_config):
    c = base_config

    def fk(tk="a" * 12, final=c.final, thresholds=c.thresholds, evaluation=c.evaluation, co_best=()):
        return keys.final_key(tk, "b" * 12, final, c.refit, thresholds, evaluation, co_best)

    f = fk()
    assert f != fk("c" * 12)
    assert f != fk(final={"epochs": 2})
    # the thresholds the report decides at, and the bootstrap behind its intervals, are part of the report
    assert f != fk(thresholds={"source": "validation"})
    assert f != fk(evaluation={**c.evaluation, "bootstrap": 500})
    assert f != fk(evaluation={**c.evaluation, "seed": 1})
    assert f != fk(co_best=["d" * 12]) and fk(co_best=["d" * 12, "e" * 12]) == fk(co_best=["e" * 12, "d" * 12])


def test_refit_key_covers_how_the_thresholds_are_chosen(base_config):
    c = base_config
    args = ("a" * 12, c.refit, c.hpo.metric, c.hpo.objective)
    assert c.thresholds.source == "oof"  # the schema's default
    by_source = {s: keys.refit_key(*args, {"source": s}) for s in ("oof", "validation", "fixed")}
    assert len(set(by_source.values())) == 3
    assert by_source["oof"] == keys.refit_key(*args, c.thresholds)
    # the evaluation section is not: it changes the test intervals, never the refit checkpoint
    changed = resolve(deep_merge(c, {"evaluation": {"bootstrap": 100}}))
    from workflow_lib.pipeline.plan import Plan

    assert Plan(changed).refit_key("a" * 12) == Plan(c).refit_key("a" * 12)
    assert Plan(changed).final_key("a" * 12) != Plan(c).final_key("a" * 12)


def test_data_key_covers_the_prepared_format_and_every_split_setting(base_config, monkeypatch):
    data = base_config.data
    # the payload, spelled out: the protocol enters even when stratified (no special case any more)
    assert data.split.protocol == "stratified"
    assert keys.data_key(FP, data) == keys.digest(
        {
            "kind": "data",
            "format": keys.PREPARED_FORMAT,
            "source": FP,
            "settings": {
                "alignment_threshold": data.alignment_threshold,
                "max_post_chars": data.max_post_chars,
                "split": plain(data.split),
                "n_folds": data.n_folds,
            },
        }
    )
    holdout = Data.resolve({**plain(data), "split": {**plain(data.split), "protocol": "holdout_80_20"}})
    assert keys.data_key(FP, holdout) != keys.data_key(FP, data)
    # prepared posts of another shape are other data: a folder older code wrote is never reused
    before = keys.data_key(FP, data)
    monkeypatch.setattr(keys, "PREPARED_FORMAT", keys.PREPARED_FORMAT + 1)
    assert keys.data_key(FP, data) != before


def test_file_sha256(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert keys.file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_only_keys_module_hashes(repo):
    """Single source of truth: no other module of the project calls hashlib."""
    offenders = []
    for path in (
        list((repo / "workflow_lib").rglob("*.py"))
        + list((repo / "scripts").glob("*.py"))
        + list((repo / "rules").glob("*.smk"))
        + [repo / "Snakefile"]
    ):
        if path.name == "keys.py":
            continue
        if "hashlib" in path.read_text():
            offenders.append(str(path.relative_to(repo)))
    assert offenders == []
