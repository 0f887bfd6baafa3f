"""Metrics agree with scikit-learn; thresholds are tuned for F1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    multilabel_confusion_matrix,
    precision_score,
    recall_score,
)

from workflow_lib.learning.metrics import (
    NO_SYMPTOMS,
    f1_from_counts,
    gold_and_decisions,
    multilabel_metrics,
    paper_metrics,
    score,
    tune_thresholds,
    with_no_symptoms,
)
from workflow_lib.symptoms import SYMPTOMS


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 9)) < rng.uniform(0.05, 0.5, 9)).astype(int)
    y[:, 4] = 0  # a symptom with no positives
    p = np.clip(0.35 * y + rng.random((n, 9)) * 0.7, 0, 1)
    return y, p


@pytest.mark.parametrize("thresholds", [0.5, [0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.5, 0.45, 0.55]])
def test_agrees_with_scikit_learn(thresholds):
    y, p = _data()
    t = np.broadcast_to(np.asarray(thresholds, dtype=float), (9,))
    pred = (p >= t).astype(int)
    m = multilabel_metrics(y, p, thresholds)
    kw = {"zero_division": 0}
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["label_accuracy"] == pytest.approx(1 - hamming_loss(y, pred))
    for avg in ("macro", "micro"):
        assert m[f"{avg}_f1"] == pytest.approx(f1_score(y, pred, average=avg, **kw))
        assert m[f"{avg}_precision"] == pytest.approx(precision_score(y, pred, average=avg, **kw))
        assert m[f"{avg}_recall"] == pytest.approx(recall_score(y, pred, average=avg, **kw))
    f1s = f1_score(y, pred, average=None, **kw)
    precs = precision_score(y, pred, average=None, **kw)
    recs = recall_score(y, pred, average=None, **kw)
    cms = multilabel_confusion_matrix(y, pred)
    assert list(m["per_symptom"]) == list(SYMPTOMS)
    for j, name in enumerate(SYMPTOMS):
        s = m["per_symptom"][name]
        assert s["f1"] == pytest.approx(f1s[j])
        assert s["precision"] == pytest.approx(precs[j])
        assert s["recall"] == pytest.approx(recs[j])
        assert s["support"] == int(y[:, j].sum())
        assert s["threshold"] == pytest.approx(t[j])
        (tn, fp), (fn, tp) = cms[j]
        assert s["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
        if y[:, j].any():
            assert s["pr_auc"] == pytest.approx(average_precision_score(y[:, j], p[:, j]))
        else:
            assert s["pr_auc"] is None
    aps = [average_precision_score(y[:, j], p[:, j]) for j in range(9) if y[:, j].any()]
    assert m["macro_pr_auc"] == pytest.approx(np.mean(aps))


def test_plain_json_types():
    y, p = _data(40)
    m = multilabel_metrics(y, p.astype(np.float32))
    assert json.loads(json.dumps(m, allow_nan=False)) == m
    s = m["per_symptom"]["ANHEDONIA"]
    assert type(s["f1"]) is float and type(s["support"]) is int and type(s["confusion_matrix"]["tp"]) is int
    assert type(m["macro_f1"]) is float


def test_zero_division_is_zero_and_perfect_is_one():
    y = np.zeros((4, 9), dtype=int)
    m = multilabel_metrics(y, np.zeros((4, 9)))
    assert m["macro_f1"] == 0.0 and m["micro_precision"] == 0.0 and m["accuracy"] == 1.0
    y[0, 0] = y[1, 3] = 1
    m = multilabel_metrics(y, y.astype(float))
    assert m["micro_f1"] == 1.0 and m["accuracy"] == 1.0
    assert m["macro_f1"] == pytest.approx(2 / 9)  # labels without positives count as 0, like scikit-learn


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(0, 2**31 - 1), st.floats(0.05, 0.95))
def test_macro_micro_f1_property(n, seed, thr):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 9)) < 0.3).astype(int)
    p = rng.random((n, 9))
    pred = (p >= thr).astype(int)
    m = multilabel_metrics(y, p, thr)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))


def test_tune_thresholds_picks_f1_optimum_on_hand_made_case():
    y = np.array([[0, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]])
    p = np.array([[0.10, 0.9, 0.7], [0.30, 0.1, 0.2], [0.35, 0.2, 0.6], [0.80, 0.3, 0.1], [0.05, 0.4, 0.9]])
    t = tune_thresholds(y, p)
    # label 0: positives at 0.30, 0.35, 0.80, negatives at 0.10, 0.05 -> F1 = 1 for t in (0.10, 0.30];
    # the tie goes to the grid point closest to 0.5: 0.30
    assert t[0] == pytest.approx(0.30)
    assert t[1] == 0.5  # no positives
    # label 2: positives at 0.7, 0.6, 0.9; negatives 0.2, 0.1 -> F1 = 1 for t in (0.2, 0.6] -> 0.5
    assert t[2] == pytest.approx(0.5)
    assert multilabel_metrics(y[:, [0, 2]], p[:, [0, 2]], [t[0], t[2]], label_names=["a", "b"])["macro_f1"] == 1.0


def test_tune_thresholds_beats_or_matches_default_and_uses_grid():
    y, p = _data(200, seed=3)
    t = tune_thresholds(y, p)
    assert len(t) == 9 and t[4] == 0.5
    tuned = multilabel_metrics(y, p, t)["per_symptom"]
    plain = multilabel_metrics(y, p, 0.5)["per_symptom"]
    for name in SYMPTOMS:
        assert tuned[name]["f1"] >= plain[name]["f1"] - 1e-12
    coarse = tune_thresholds(y, p, grid=[0.25, 0.75])
    assert set(coarse) <= {0.25, 0.5, 0.75}
    # equal F1 on both sides of 0.5 -> the lower one
    assert tune_thresholds(np.array([[1], [0]]), np.array([[0.9], [0.1]]), grid=[0.4, 0.6]) == [0.4]


def test_score_reads_one_metric():
    y, p = _data(50)
    m = multilabel_metrics(y, p, 0.4)
    for name in ("macro_f1", "micro_f1", "accuracy", "label_accuracy", "macro_pr_auc"):
        assert score(y, p, name, thresholds=0.4) == pytest.approx(m[name])
    assert score(y[:, :2], p[:, :2], "macro_f1") == pytest.approx(
        f1_score(y[:, :2], (p[:, :2] >= 0.5).astype(int), average="macro", zero_division=0)
    )
    with pytest.raises(ValueError, match="unknown metric"):
        score(y, p, "per_symptom")
    with pytest.raises(ValueError, match="shape"):
        score(y, p[:, :3], "macro_f1")


def test_no_symptoms_column():
    y = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 1]])
    assert with_no_symptoms(y).tolist() == [[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0]]
    assert with_no_symptoms(y).dtype == bool


def test_paper_metrics_agree_with_scikit_learn_on_a_hand_made_case():
    names = ["a", "b", "c"]
    y = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]])
    p = np.array(
        [[0.9, 0.2, 0.1], [0.6, 0.1, 0.1], [0.8, 0.3, 0.2], [0.1, 0.1, 0.7], [0.2, 0.2, 0.2], [0.1, 0.6, 0.55]]
    )
    thr = [0.5, 0.25, 0.6]
    pred = (p >= np.array(thr)).astype(int)
    # decisions: a 1 1 1 0 0 0; b 0 0 1 0 0 1; c 0 0 0 1 0 0 -> NO_SYMPTOMS gold 0 1 0 0 1 0, pred 0 0 0 0 1 0
    y10 = np.column_stack([y, (y.sum(axis=1) == 0).astype(int)])
    pred10 = np.column_stack([pred, (pred.sum(axis=1) == 0).astype(int)])
    assert pred10[:, 3].tolist() == [0, 0, 0, 0, 1, 0] and y10[:, 3].tolist() == [0, 1, 0, 0, 1, 0]
    m = paper_metrics(y, p, thr, label_names=names)
    kw = {"zero_division": 0}
    assert m["labels"] == ["a", "b", "c", NO_SYMPTOMS]
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(f1_score(y10, pred10, average=avg, **kw))
    assert m["exact_match"] == pytest.approx(accuracy_score(y, pred))
    assert m["exact_match"] == pytest.approx(5 / 6)  # every row but row 1 (a predicted, no gold symptom)
    # by hand: F1 a = 2·2/(2·2+1+0) = .8, b = 1, c = 1, NO_SYMPTOMS = 2·1/(2+0+1) = 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 1 + 1 + 2 / 3) / 4)
    f1s = f1_score(y10, pred10, average=None, **kw)
    assert [m["per_label"][n]["f1"] for n in m["labels"]] == pytest.approx(list(f1s))
    assert [m["per_label"][n]["support"] for n in m["labels"]] == [2, 2, 1, 2]
    assert m["thresholds"] == thr and m["n_samples"] == 6
    assert json.loads(json.dumps(m, allow_nan=False)) == m


@pytest.mark.parametrize("thresholds", [0.5, [0.3, 0.4, 0.5, 0.6, 0.7, 0.2, 0.5, 0.45, 0.55]])
def test_paper_metrics_agree_with_scikit_learn_on_nine_symptoms(thresholds):
    y, p = _data(150, seed=4)
    y[:20] = 0  # posts without a symptom
    pred = (p >= np.broadcast_to(np.asarray(thresholds, dtype=float), (9,))).astype(int)
    y10, pred10 = with_no_symptoms(y).astype(int), with_no_symptoms(pred).astype(int)
    m = paper_metrics(y, p, thresholds)
    for avg in ("macro", "micro", "weighted"):
        assert m[f"{avg}_f1"] == pytest.approx(f1_score(y10, pred10, average=avg, zero_division=0))
    assert m["exact_match"] == pytest.approx(accuracy_score(y, pred))
    assert m["labels"] == [*SYMPTOMS, NO_SYMPTOMS]


def test_gold_and_decisions_and_f1_from_counts():
    gold, pred = gold_and_decisions([[1, 0], [0, 1]], [[0.5, 0.49], [0.2, 0.9]], [0.5, 0.95])
    assert gold.tolist() == [[True, False], [False, True]]
    assert pred.tolist() == [[True, False], [False, False]]
    assert gold_and_decisions([[1, 0]], [[1, 0]])[1].tolist() == [[True, False]]  # 0/1 decisions pass through
    with pytest.raises(ValueError, match="threshold"):
        gold_and_decisions([[1, 0]], [[1, 0]], [0.5, 0.5, 0.5])
    assert f1_from_counts([2, 0], [1, 0], [0, 0]).tolist() == pytest.approx([0.8, 0.0])
