"""TF-IDF baseline: learns a keyword data set, fits only on each fold's train part."""

from __future__ import annotations

import numpy as np
import pytest

import workflow_lib.learning.baseline as baseline_mod
from workflow_lib.learning.baseline import fit_predict_proba, tfidf_baseline
from workflow_lib.persistence.reports import validate_report
from workflow_lib.symptoms import SYMPTOMS

KEYWORDS = ["sad", "bored", "hungry", "insomnia", "restless", "tired", "worthless", "unfocused", "dying"]
FILLER = [
    "today",
    "I",
    "went",
    "outside",
    "and",
    "talked",
    "about",
    "the",
    "weather",
    "with",
    "a",
    "friend",
    "for",
    "a",
    "while",
]


def toy_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    posts, labels = {}, {}
    for i in range(n):
        y = (rng.random(9) < 0.3).astype(int)
        words = list(rng.choice(FILLER, size=8))
        words += [KEYWORDS[j] for j in np.flatnonzero(y)]
        rng.shuffle(words)
        pid = f"p{i:03d}"
        posts[pid] = " ".join(words)
        labels[pid] = y
    return posts, labels


def make_folds(ids, k=3):
    folds = []
    for f in range(k):
        held = [p for i, p in enumerate(ids) if i % k == f]
        train = [p for i, p in enumerate(ids) if i % k != f]
        folds.append({"fold": f, "train": train, "heldout": held})
    return folds


def test_scores_high_on_a_keyword_data_set():
    posts, labels = toy_data()
    folds = make_folds(sorted(posts))
    res = tfidf_baseline(
        folds, lambda ids: [posts[i] for i in ids], lambda ids: np.stack([labels[i] for i in ids]), metric="macro_f1"
    )
    assert res["name"] == "tfidf_logreg" and res["metric"] == "macro_f1"
    assert len(res["fold_scores"]) == 3
    assert min(res["fold_scores"]) > 0.9
    assert res["mean"] == pytest.approx(np.mean(res["fold_scores"]))
    assert res["std"] == pytest.approx(np.std(res["fold_scores"]))
    assert res["split"] == "cv heldout folds (train split)"
    validate_report("baseline", res)
    micro = tfidf_baseline(
        folds, lambda ids: [posts[i] for i in ids], lambda ids: np.stack([labels[i] for i in ids]), metric="micro_f1"
    )
    assert micro["metric"] == "micro_f1" and micro["mean"] > 0.9


def test_random_labels_score_low():
    posts, labels = toy_data()
    rng = np.random.default_rng(1)
    noise = {p: (rng.random(9) < 0.3).astype(int) for p in posts}
    res = tfidf_baseline(
        make_folds(sorted(posts)),
        lambda ids: [posts[i] for i in ids],
        lambda ids: np.stack([noise[i] for i in ids]),
        metric="macro_f1",
    )
    assert res["mean"] < 0.6


def test_fits_only_on_fold_train_ids(monkeypatch):
    posts, labels = toy_data(n=90)
    # a word that only occurs in held-out posts of fold 0 must never reach the vocabulary fitted for fold 0
    folds = make_folds(sorted(posts))
    for pid in folds[0]["heldout"]:
        posts[pid] += " heldoutonlytoken"
    fitted_docs, fitted_rows = [], []

    class SpyVectorizer(baseline_mod.TfidfVectorizer):
        def fit_transform(self, raw_documents, y=None):
            fitted_docs.append(list(raw_documents))
            return super().fit_transform(raw_documents, y)

        def fit(self, raw_documents, y=None):  # pragma: no cover - the baseline uses fit_transform
            fitted_docs.append(list(raw_documents))
            return super().fit(raw_documents, y)

    class SpyLogReg(baseline_mod.LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            fitted_rows.append(X.shape[0])
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(baseline_mod, "TfidfVectorizer", SpyVectorizer)
    monkeypatch.setattr(baseline_mod, "LogisticRegression", SpyLogReg)
    text_calls, label_calls = [], []

    def texts_of(ids):
        text_calls.append(list(ids))
        return [posts[i] for i in ids]

    def labels_of(ids):
        label_calls.append(list(ids))
        return np.stack([labels[i] for i in ids])

    tfidf_baseline(folds, texts_of, labels_of, metric="macro_f1")
    train_texts = [[posts[i] for i in f["train"]] for f in folds]
    assert fitted_docs == train_texts  # exactly one vocabulary per fold, fitted on that fold's train part
    assert all("heldoutonlytoken" not in d for d in fitted_docs[0])
    sizes = {len(f["train"]) for f in folds}
    assert fitted_rows and set(fitted_rows) <= sizes  # every classifier saw train rows only
    # per fold: train texts, then held-out texts; labels likewise
    assert text_calls == [ids for f in folds for ids in (f["train"], f["heldout"])]
    assert label_calls == text_calls


def test_symptom_without_positives_in_train_predicts_zero():
    posts, labels = toy_data(n=90)
    ids = sorted(posts)
    folds = make_folds(ids)
    # FATIGUE positive only in fold 0's held-out part -> fold 0 cannot learn it and must predict 0 there
    j = SYMPTOMS.index("FATIGUE")
    held0 = set(folds[0]["heldout"])
    for pid in ids:
        labels[pid] = labels[pid].copy()
        labels[pid][j] = 1 if pid in held0 else 0
    res = tfidf_baseline(
        folds[:1], lambda x: [posts[i] for i in x], lambda x: np.stack([labels[i] for i in x]), metric="macro_f1"
    )
    # FATIGUE: F1 0 on fold 0 (all predicted 0); the other eight are learnable
    assert 0.7 < res["fold_scores"][0] < 8 / 9 + 1e-9


def test_rejects_leaky_folds_and_bad_metric():
    posts, labels = toy_data(n=30)
    ids = sorted(posts)
    leaky = [{"fold": 0, "train": ids[:20], "heldout": ids[15:]}]
    with pytest.raises(ValueError, match="both its train and heldout"):
        tfidf_baseline(
            leaky, lambda x: [posts[i] for i in x], lambda x: np.stack([labels[i] for i in x]), metric="macro_f1"
        )
    with pytest.raises(ValueError, match="not supported"):
        tfidf_baseline(
            make_folds(ids),
            lambda x: [posts[i] for i in x],
            lambda x: np.stack([labels[i] for i in x]),
            metric="accuracy",
        )


def test_fit_predict_proba_learns_keywords_on_a_tiny_set():
    train = ["so sad today", "sad and alone", "cannot sleep insomnia", "insomnia again", "nice weather", "a walk"]
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]])
    test = ["feeling sad", "insomnia tonight", "the weather"]
    prob = fit_predict_proba(train, y, test, seed=0)
    assert prob.shape == (3, 2) and prob.dtype == np.float64
    assert ((prob >= 0) & (prob <= 1)).all()
    assert prob[0, 0] > 0.5 > prob[0, 1]  # "sad" -> label 0
    assert prob[1, 1] > 0.5 > prob[1, 0]  # "insomnia" -> label 1
    assert prob[2].max() < 0.5
    assert (fit_predict_proba(train, y, test, seed=0) == prob).all()


def test_fit_predict_proba_constant_labels_and_bad_shape():
    train = ["apple berry", "cherry date", "egg fig"]
    y = np.array([[0, 1, 1], [0, 1, 0], [0, 1, 1]])
    prob = fit_predict_proba(train, y, ["apple", "zebra"])
    assert (prob[:, 0] == 0).all() and (prob[:, 1] == 1).all()  # nothing to learn: the constant seen
    with pytest.raises(ValueError, match="one row per train text"):
        fit_predict_proba(train, y[:2], ["apple"])


def test_fit_predict_proba_uses_the_cv_baselines_model(monkeypatch):
    # one place builds the model: the CV baseline's decisions are fit_predict_proba's probabilities at 0.5,
    # and both fit the same classifier settings
    posts, labels = toy_data(n=60)
    ids = sorted(posts)
    train, held = ids[:40], ids[40:]
    y_train = np.stack([labels[i] for i in train])
    settings = []

    class SpyLogReg(baseline_mod.LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            settings.append(self.get_params())
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(baseline_mod, "LogisticRegression", SpyLogReg)
    prob = fit_predict_proba([posts[i] for i in train], y_train, [posts[i] for i in held], seed=3)
    pred = baseline_mod._fit_predict([posts[i] for i in train], y_train, [posts[i] for i in held], 3)
    assert (pred == (prob >= baseline_mod.THRESHOLD)).all()
    assert len(settings) == 18 and all(s == settings[0] for s in settings)
    assert settings[0]["class_weight"] == "balanced" and settings[0]["solver"] == "liblinear"
    assert settings[0]["random_state"] == 3
