"""The refit's thresholds (pipeline/thresholds.py): each source, the block it writes, and that the out-of-fold
rule reads the train split only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workflow_lib.config import Data
from workflow_lib.learning.metrics import multilabel_metrics, tune_thresholds
from workflow_lib.learning.uncertainty import calibration, select_thresholds
from workflow_lib.persistence.paths import Layout
from workflow_lib.pipeline.thresholds import (
    OOF_SPLIT,
    ThresholdError,
    check_source,
    evidence_threshold_block,
    read_evidence_counts,
    read_out_of_fold,
    thresholds_block,
)
from workflow_lib.symptoms import SYMPTOMS


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from workflow_lib.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare(Data.resolve({"source": "embedded", "embedded": {"n_posts": 200, "seed": 5}, "n_folds": 2}), out, "k")
    return out


@pytest.fixture
def prepared(data_dir):
    from workflow_lib.data.prepare import load_prepared

    return load_prepared(data_dir)


def _probs(labels, seed):
    """Probabilities that know the labels a little: positives lean high, with noise."""
    rng = np.random.default_rng(seed)
    return np.clip(0.25 + 0.35 * labels + rng.normal(0, 0.2, labels.shape), 0.001, 0.999).round(6)


def write_folds(prepared, study_dir, trial_key="t" * 12, *, with_probs=True, folds=None) -> list[str]:
    """Each fold's metrics.json as train_fold writes it: the held-out posts and their probabilities."""
    paths = []
    for fold in folds or prepared.folds:
        held = list(fold["heldout"])
        metrics = {"fold": fold["fold"], "n_heldout": len(held)}
        if with_probs:
            metrics["heldout_post_ids"] = held
            metrics["heldout_probs"] = _probs(prepared.labels(held), fold["fold"]).tolist()
        path = Layout.fold_metrics(str(study_dir), trial_key, fold["fold"])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(metrics))
        paths.append(path)
    return paths


class Poisoned(dict):
    """A test post's record that fails the test on any read."""

    def __getitem__(self, key):
        raise AssertionError(f"the threshold rule read a test post's {key!r}")

    get = __getitem__


def test_oof_thresholds_are_select_thresholds_on_the_train_splits_out_of_fold_rows(prepared, tmp_path):
    paths = write_folds(prepared, tmp_path)
    oof = read_out_of_fold(paths, prepared.splits["train"], prepared.labels)
    train = prepared.splits["train"]
    assert oof.post_ids == train  # every train post once, in the train split's order
    assert np.array_equal(oof.labels, prepared.labels(train))
    by_id = {}
    for p in paths:
        m = json.loads(open(p).read())
        by_id.update(zip(m["heldout_post_ids"], m["heldout_probs"]))
    assert np.allclose(oof.probs, [by_id[i] for i in train])

    block = thresholds_block("oof", oof=oof)
    expected = select_thresholds(prepared.labels(train), oof.probs)
    assert block["source"] == "oof" and block["split"] == OOF_SPLIT
    assert block["values"] == dict(zip(SYMPTOMS, expected["thresholds"]))
    assert block["rule"] == expected["rule"] and block["per_symptom"] == expected["per_symptom"]
    o = block["oof"]
    assert o["split"] == OOF_SPLIT and o["n_posts"] == len(train)
    at_half = multilabel_metrics(oof.labels, oof.probs, 0.5)
    assert o["at_0.5"] == {"macro_f1": at_half["macro_f1"], "micro_f1": at_half["micro_f1"]}
    assert (
        o["at_tuned_thresholds"]["macro_f1"]
        == multilabel_metrics(oof.labels, oof.probs, expected["thresholds"])["macro_f1"]
    )
    assert o["calibration"] == {**calibration(oof.labels, oof.probs), "split": OOF_SPLIT}


def test_the_threshold_rule_never_reads_a_test_post(prepared, tmp_path):
    paths = write_folds(prepared, tmp_path)
    before = thresholds_block("oof", oof=read_out_of_fold(paths, prepared.splits["train"], prepared.labels))
    for pid in prepared.splits["test"]:  # any read of a test post now fails the test
        prepared.records[pid] = Poisoned(prepared.records[pid])
    after = thresholds_block("oof", oof=read_out_of_fold(paths, prepared.splits["train"], prepared.labels))
    assert after == before
    # and a fold file that holds a test post is refused, naming the file and the post
    test_post = prepared.splits["test"][0]
    bad = [dict(f) for f in prepared.folds]
    bad[0] = {**bad[0], "heldout": [*bad[0]["heldout"], test_post]}
    prepared.records[test_post] = dict(prepared.records[test_post])  # readable, so the file can be written
    paths = write_folds(prepared, tmp_path / "bad", folds=bad)
    with pytest.raises(ThresholdError, match=rf"fold_0/metrics.json: held-out post '{test_post}' is not a train-split"):
        read_out_of_fold(paths, prepared.splits["train"], prepared.labels)


def test_validation_and_fixed_sources_and_the_oof_summary_with_any_source(prepared, tmp_path):
    oof = read_out_of_fold(write_folds(prepared, tmp_path), prepared.splits["train"], prepared.labels)
    va = prepared.splits["validation"]
    y_val = prepared.labels(va)
    p_val = _probs(y_val, 9)
    block = thresholds_block("validation", oof=oof, y_val=y_val, val_probs=p_val)
    assert block["split"] == "validation" and block["values"] == dict(zip(SYMPTOMS, tune_thresholds(y_val, p_val)))
    assert "validation predictions" in block["rule"] and "per_symptom" not in block
    assert block["oof"]["calibration"]["split"] == OOF_SPLIT  # the out-of-fold calibration, whatever the source
    fixed = thresholds_block("fixed", oof=None)
    assert fixed["split"] is None and set(fixed["values"].values()) == {0.5} and "oof" not in fixed
    assert "0.5" in fixed["rule"]
    with pytest.raises(ValueError, match="thresholds.source 'test' is not one of oof, validation, fixed"):
        thresholds_block("test", oof=oof)


def test_fold_files_without_probabilities_or_with_holes_are_named(prepared, tmp_path):
    train = prepared.splits["train"]
    old = write_folds(prepared, tmp_path / "old", with_probs=False)
    assert read_out_of_fold(old, train, prepared.labels) is None  # written by older code
    check_source("validation", None)  # fine: the other sources do without
    with pytest.raises(ThresholdError, match=r"hold no out-of-fold probabilities.*thresholds.source: validation"):
        check_source("oof", None)
    with pytest.raises(ThresholdError, match="hold no out-of-fold probabilities"):
        thresholds_block("oof", oof=None)

    paths = write_folds(prepared, tmp_path / "ok")
    with pytest.raises(ThresholdError, match=r"fold_7/metrics.json: the fold's metrics are missing"):
        read_out_of_fold([*paths, paths[0].replace("fold_0", "fold_7")], train, prepared.labels)
    with pytest.raises(ThresholdError, match=r"is held out by another fold too"):
        read_out_of_fold([paths[0], paths[0]], train, prepared.labels)
    with pytest.raises(ThresholdError, match=rf"hold out \d+ of the {len(train)} train posts"):
        read_out_of_fold(paths[:1], train, prepared.labels)
    m = json.loads(open(paths[1]).read())
    m["heldout_probs"] = m["heldout_probs"][:-1]
    open(paths[1], "w").write(json.dumps(m))
    with pytest.raises(ThresholdError, match=r"fold_1/metrics.json: heldout_probs must hold one row"):
        read_out_of_fold(paths, train, prepared.labels)


def test_the_refit_rule_declares_every_fold_of_the_candidates_trial(base_config):
    from workflow_lib.pipeline.plan import Plan

    plan = Plan(base_config, main_process=False)
    cand = {"backbone": "minilm-l6", "study_key": "s" * 12, "variant": 2, "trial_key": "t" * 12}
    study_dir = plan.layout.study_dir("minilm-l6", "s" * 12, 2)
    assert plan.fold_metrics(cand) == [
        f"{study_dir}/trials/{'t' * 12}/fold_{k}/metrics.json" for k in range(base_config.data.n_folds)
    ]


# -- the sentence model's evidence threshold --------------------------------------------------------------------------
def _counts(tp, fp, fn, grid=(0.3, 0.5, 0.7)):
    return {"grid": list(grid), "tp": list(tp), "fp": list(fp), "fn": list(fn)}


def test_the_oof_evidence_threshold_maximises_the_pooled_folds_f1():
    # fold 1 alone would pick 0.3, fold 2 alone 0.7; pooled: F1 12/19, 10/13, 6/9 -> 0.5
    folds = [_counts([4, 3, 1], [1, 1, 0], [0, 1, 3]), _counts([2, 2, 2], [6, 1, 0], [0, 0, 0])]
    block = evidence_threshold_block("oof", oof_counts=folds, validation_counts=None, fixed=0.9)
    assert block["value"] == 0.5 and block["source"] == "oof" and block["split"] == OOF_SPLIT
    assert block["f1"] == pytest.approx([12 / 19, 10 / 13, 6 / 9])
    assert "micro F1" in block["rule"] and "held-out sentences" in block["rule"]
    # a tie goes to the value nearest 0.5; the validation source scores the refit's validation counts only
    tie = _counts([1, 1, 1], [1, 1, 1], [1, 1, 1], grid=(0.2, 0.45, 0.6))
    assert evidence_threshold_block("oof", oof_counts=[tie], validation_counts=None, fixed=0.9)["value"] == 0.45
    val = evidence_threshold_block("validation", oof_counts=folds, validation_counts=folds[1], fixed=0.9)
    assert val["value"] == 0.7 and val["split"] == "validation"
    fixed = evidence_threshold_block("fixed", oof_counts=None, validation_counts=None, fixed=0.9)
    assert fixed["value"] == 0.9 and fixed["split"] is None and "nothing is tuned" in fixed["rule"]


def test_fold_files_without_sentence_counts_are_named_with_the_fix(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"heldout_sentence_counts": _counts([1, 1, 1], [0, 0, 0], [0, 0, 0])}))
    b.write_text(json.dumps({"score": 0.5}))
    assert read_evidence_counts([a, b]) is None
    assert len(read_evidence_counts([a, a])) == 2
    with pytest.raises(ThresholdError, match=r"no out-of-fold sentence counts.*forcerun hpo_worker.*source: fixed"):
        evidence_threshold_block("oof", oof_counts=None, validation_counts=None, fixed=0.5)
    b.write_text(json.dumps({"heldout_sentence_counts": _counts([1, 1], [0, 0], [0, 0], grid=(0.1, 0.2))}))
    with pytest.raises(ThresholdError, match=r"b.json: its evidence grid differs"):
        read_evidence_counts([a, b])
