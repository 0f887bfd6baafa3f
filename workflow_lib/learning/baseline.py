"""TF-IDF + logistic-regression baseline, scored on the same CV folds as the HPO trials.

Per fold: the vectoriser (vocabulary, idf) and one logistic regression per
symptom are fitted on the fold's train part only, then scored on its held-out
part at threshold 0.5. A symptom with no positive (or no negative) post in a
fold's train part has nothing to learn and predicts the constant it saw.

:func:`fit_predict_proba` fits the same model on any train texts (e.g. the whole
train split) and returns probabilities for other texts (e.g. the test split), so the
baseline can be scored on the posts the selected model is scored on. One place builds
the model (:func:`_vectorizer`, :func:`_classifier`); the CV baseline and
fit_predict_proba both go through :func:`_fit_proba`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

NAME = "tfidf_logreg"
SPLIT = "cv heldout folds (train split)"
THRESHOLD = 0.5
MODEL = (
    "TF-IDF (word 1-2 grams, sublinear tf) + one-vs-rest logistic regression "
    "(liblinear, class_weight=balanced), threshold 0.5"
)
_AVERAGES = {"macro_f1": "macro", "micro_f1": "micro"}


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, lowercase=True, strip_accents="unicode", min_df=1, dtype=np.float64
    )


def _classifier(seed: int) -> LogisticRegression:
    return LogisticRegression(solver="liblinear", class_weight="balanced", random_state=seed, max_iter=1000)


def _fit_proba(train_texts: Sequence[str], y_train: np.ndarray, other_texts: Sequence[str], seed: int) -> np.ndarray:
    """Fit on the train texts, return (len(other_texts), n_labels) probabilities of the positive class.

    A label with no positive train post gets probability 0, one with only positives gets 1.
    """
    vec = _vectorizer()
    x_train = vec.fit_transform(train_texts)
    x_other = vec.transform(other_texts)
    prob = np.zeros((len(other_texts), y_train.shape[1]), dtype=np.float64)
    for j in range(y_train.shape[1]):
        col = y_train[:, j]
        positives = int(col.sum())
        if positives == 0:
            continue  # nothing to learn: predict 0
        if positives == len(col):
            prob[:, j] = 1.0
            continue
        prob[:, j] = _classifier(seed).fit(x_train, col).predict_proba(x_other)[:, 1]
    return prob


def _fit_predict(
    train_texts: Sequence[str], y_train: np.ndarray, heldout_texts: Sequence[str], seed: int
) -> np.ndarray:
    return (_fit_proba(train_texts, y_train, heldout_texts, seed) >= THRESHOLD).astype(int)


def fit_predict_proba(train_texts: Sequence[str], y_train, test_texts: Sequence[str], *, seed: int = 0) -> np.ndarray:
    """Fit the CV baseline's model (:data:`MODEL`, same settings) on ``train_texts`` with labels
    ``y_train`` ((n_train, n_labels), 0/1) and return the probabilities for ``test_texts``:
    a float64 (n_test, n_labels) array in [0, 1]. Decide at :data:`THRESHOLD` (0.5) to score it as
    the CV baseline is scored. ``seed``: the logistic regressions' random_state (use the one the
    CV baseline got, data.split.seed).
    """
    y = np.asarray(y_train)
    if y.ndim != 2 or y.shape[0] != len(train_texts):
        raise ValueError(
            f"y_train must be an (n_train, n_labels) 0/1 array with one row per train text; "
            f"got shape {y.shape} for {len(train_texts)} texts"
        )
    if not len(train_texts):
        raise ValueError("fit_predict_proba needs at least one train text")
    return _fit_proba(list(train_texts), (y > 0).astype(int), list(test_texts), seed)


def _labels(labels_of, ids, what: str) -> np.ndarray:
    y = np.asarray(labels_of(list(ids)))
    if y.ndim != 2 or y.shape[0] != len(ids):
        raise ValueError(
            f"labels_of({what} ids) must return an (n_posts, n_labels) array with one row per id; "
            f"got shape {y.shape} for {len(ids)} ids"
        )
    return (y > 0).astype(int)


def tfidf_baseline(folds: list[dict], texts_of: Callable, labels_of: Callable, *, metric: str, seed: int = 0) -> dict:
    """Score the TF-IDF baseline on every fold's held-out part.

    folds: [{"fold": k, "train": [post_ids], "heldout": [post_ids]}];
    texts_of(ids) -> list[str]; labels_of(ids) -> (n, 9) 0/1 array.
    ``metric``: the hpo section's metric (macro_f1 or micro_f1), the one the trials are scored on.
    Returns {"name", "metric", "fold_scores", "mean", "std" (population std over folds),
    "split", "threshold", "model", "n_folds", "seed", "seconds"}.
    """
    if metric not in _AVERAGES:
        raise ValueError(f"baseline metric {metric!r} is not supported; choose one of {', '.join(_AVERAGES)}")
    if not folds:
        raise ValueError("tfidf_baseline needs at least one fold")
    t0 = time.perf_counter()
    scores = []
    for fold in sorted(folds, key=lambda f: f["fold"]):
        train_ids, held_ids = list(fold["train"]), list(fold["heldout"])
        k = fold["fold"]
        if not train_ids or not held_ids:
            raise ValueError(f"fold {k}: empty train or heldout part")
        overlap = set(map(str, train_ids)) & set(map(str, held_ids))
        if overlap:
            raise ValueError(
                f"fold {k}: {len(overlap)} post(s) are in both its train and heldout parts, e.g. {sorted(overlap)[:3]}"
            )
        train_texts = list(texts_of(train_ids))
        y_train = _labels(labels_of, train_ids, "train")
        held_texts = list(texts_of(held_ids))
        y_held = _labels(labels_of, held_ids, "heldout")
        if len(train_texts) != len(train_ids) or len(held_texts) != len(held_ids):
            raise ValueError(f"fold {k}: texts_of must return one text per id")
        pred = _fit_predict(train_texts, y_train, held_texts, seed)
        scores.append(float(f1_score(y_held, pred, average=_AVERAGES[metric], zero_division=0)))
    arr = np.asarray(scores)
    return {
        "name": NAME,
        "metric": metric,
        "fold_scores": scores,
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "split": SPLIT,
        "threshold": THRESHOLD,
        "model": MODEL,
        "n_folds": len(scores),
        "seed": int(seed),
        "seconds": time.perf_counter() - t0,
    }
