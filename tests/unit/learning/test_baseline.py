"""TF-IDF baseline: learns a keyword data set, fits only on each fold's train part."""

from __future__ import annotations

import numpy as np
import pytest

import workflow_lib.learning.baseline as baseline_mod
from workflow_lib.learning.baseline import (
    fit_predict_proba,
    fit_predict_proba_sentences,
    tfidf_baseline,
    tfidf_sentence_baseline,
)
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


# ------------------------------------------------------------------------------------------------ sentence level
# Two symptoms, each cued by two words written as one sentence ("Awake night.") in positive posts and as two
# sentences ("Awake. Night.") in negative posts, at a random place among 10-30 filler sentences: the posts'
# words and word pairs are the same either way (the tokenizer drops the full stop), so only the sentences
# tell the classes apart.
CUES = [("awake", "night"), ("hungry", "always")]
FILLER_SENTENCES = [
    "I went to work again.",
    "My sister called about the weekend.",
    "The bus was late.",
    "We watched a film.",
    "The rain did not stop.",
    "I cooked pasta for dinner.",
    "The cat sat on the mat.",
    "Traffic was terrible.",
]


def sentence_data(n=120, seed=0):
    """{post_id: (sentences, codes (n_sentences, 2), labels (2,))}; hard negatives coded -1."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        y = (rng.random(len(CUES)) < 0.4).astype(int)
        blocks = [[(s, None, 0)] for s in rng.choice(FILLER_SENTENCES, size=int(rng.integers(10, 31)))]
        for j, (a, b) in enumerate(CUES):  # (sentence, symptom, code); a negative's two sentences stay adjacent
            cue = (
                [(f"{a.capitalize()} {b}.", j, 1)]
                if y[j]
                else [(f"{a.capitalize()}.", j, -1), (f"{b.capitalize()}.", j, 0)]
            )
            blocks.insert(int(rng.integers(0, len(blocks) + 1)), cue)
        rows = [row for block in blocks for row in block]
        codes = np.zeros((len(rows), len(CUES)), dtype=np.int8)
        for k, (_, j, code) in enumerate(rows):
            if j is not None:
                codes[k, j] = code
        out[f"p{i:03d}"] = ([str(r[0]) for r in rows], codes, y)
    return out


def _callbacks(data):
    return (
        lambda ids: [data[i][0] for i in ids],
        lambda ids: [data[i][1] for i in ids],
        lambda ids: np.stack([data[i][2] for i in ids]),
    )


def test_sentence_data_hides_the_cue_from_the_post_level():
    data = sentence_data(n=10)
    for sentences, codes, y in data.values():
        words = " ".join(sentences).lower().replace(".", "").split()
        for a, b in CUES:  # the two words adjacent in every post, one sentence or two
            assert words.count(a) == words.count(b) == 1 and words.index(b) == words.index(a) + 1
        for j in range(len(CUES)):
            assert (codes[:, j] == 1).sum() == y[j] and (codes[:, j] == -1).sum() == 1 - y[j]


def test_the_sentence_baseline_finds_a_cue_anywhere_in_a_long_post_where_the_post_level_cannot():
    data = sentence_data()
    folds = make_folds(sorted(data))
    sentences_of, codes_of, labels_of = _callbacks(data)
    sent = tfidf_sentence_baseline(folds, sentences_of, codes_of, labels_of, metric="macro_f1", seed=0)
    post = tfidf_baseline(folds, lambda ids: [" ".join(s) for s in sentences_of(ids)], labels_of, metric="macro_f1")
    assert sent["name"] == "tfidf_logreg_sentences" and sent["model"] == baseline_mod.SENTENCE_MODEL
    assert sent["split"] == post["split"] and sent["threshold"] == 0.5 and sent["n_folds"] == 3
    assert sent["mean"] == pytest.approx(np.mean(sent["fold_scores"]))
    assert sent["std"] == pytest.approx(np.std(sent["fold_scores"]))
    assert min(sent["fold_scores"]) > 0.95
    assert post["mean"] < 0.7 and sent["mean"] > post["mean"] + 0.25
    validate_report("baseline", sent)
    assert set(sent) == set(post)  # the post-level result's shape


def test_the_post_probability_is_the_maximum_over_its_sentences():
    data = sentence_data(n=60)
    ids = sorted(data)
    train = [data[i][0] for i in ids]
    codes = [data[i][1] for i in ids]
    test = [["Awake night.", "The bus was late.", "Hungry.", "Always."], ["Traffic was terrible."], []]
    prob = fit_predict_proba_sentences(train, codes, test, seed=0)
    one_each = fit_predict_proba_sentences(train, codes, [[s] for s in test[0]], seed=0)
    assert prob.shape == (3, 2) and prob.dtype == np.float64
    assert (prob[0] == one_each.max(axis=0)).all()  # the same fitted model, each sentence alone
    assert prob[0, 0] > 0.5 > prob[0, 1] and prob[1].max() < 0.5
    assert (prob[2] == 0).all()  # a post without sentences
    assert (fit_predict_proba_sentences(train, codes, test, seed=0) == prob).all()


def test_only_code_1_is_positive():
    train = [["so sad today", "nice weather"], ["sad and alone", "a walk"], ["not sad at all", "the park"]]
    codes = [np.array([[1], [0]]), np.array([[1], [0]]), np.array([[-1], [0]])]
    flipped = [codes[0], codes[1], np.array([[1], [0]])]
    test = [["not sad at all"]]
    rejected = fit_predict_proba_sentences(train, codes, test)[0, 0]
    accepted = fit_predict_proba_sentences(train, flipped, test)[0, 0]
    assert rejected < accepted  # the same sentence learned as negative when rejected (-1)


def test_sentence_baseline_fits_only_on_the_train_posts_sentences(monkeypatch):
    data = sentence_data(n=45)
    for pid in sorted(data):  # every sentence names its post: a leak is visible
        sentences, codes, y = data[pid]
        data[pid] = ([f"{s[:-1]} post{pid}." for s in sentences], codes, y)
    folds = make_folds(sorted(data))
    fitted_docs, settings = [], []

    class SpyVectorizer(baseline_mod.TfidfVectorizer):
        def fit_transform(self, raw_documents, y=None):
            fitted_docs.append(list(raw_documents))
            return super().fit_transform(raw_documents, y)

    class SpyLogReg(baseline_mod.LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            settings.append((X.shape[0], self.get_params()))
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(baseline_mod, "TfidfVectorizer", SpyVectorizer)
    monkeypatch.setattr(baseline_mod, "LogisticRegression", SpyLogReg)
    tfidf_sentence_baseline(folds, *_callbacks(data), metric="micro_f1", seed=5)
    expected = [[s for pid in f["train"] for s in data[pid][0]] for f in folds]
    assert fitted_docs == expected  # one vocabulary per fold: exactly its train posts' sentences, in order
    for f, docs in zip(folds, fitted_docs):
        held = {f"post{pid}" for pid in f["heldout"]}
        assert not any(d.rsplit(" ", 1)[1].rstrip(".") in held for d in docs)
    sizes = {len(d) for d in fitted_docs}
    assert len(settings) == 3 * len(CUES) and {n for n, _ in settings} <= sizes
    assert all(p["class_weight"] == "balanced" and p["random_state"] == 5 for _, p in settings)


def test_sentence_baseline_rejects_mismatched_labels_and_leaky_folds():
    data = sentence_data(n=30)
    ids = sorted(data)
    sentences_of, codes_of, labels_of = _callbacks(data)
    with pytest.raises(ValueError, match="both its train and heldout"):
        tfidf_sentence_baseline(
            [{"fold": 0, "train": ids[:20], "heldout": ids[15:]}], sentences_of, codes_of, labels_of, metric="macro_f1"
        )
    short = lambda x: [c[:-1] for c in codes_of(x)]  # noqa: E731
    with pytest.raises(
        ValueError, match=r"fold 0: sentence_labels_of: post 0 has \d+ sentence\(s\) but sentence labels"
    ):
        tfidf_sentence_baseline(make_folds(ids), sentences_of, short, labels_of, metric="macro_f1")
    with pytest.raises(ValueError, match="1 sentence label arrays for 2 posts"):
        fit_predict_proba_sentences([["a b"], ["c d"]], [np.array([[1]])], [["a"]])
    with pytest.raises(ValueError, match="at least one train sentence"):
        fit_predict_proba_sentences([[]], [np.zeros((0, 2))], [["a"]])
