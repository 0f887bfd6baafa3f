"""TF-IDF + logistic-regression baselines, scored on the same CV folds as the HPO trials.

Two baselines share one model (:func:`_vectorizer`, :func:`_classifier`, fitted by :func:`_fit_proba`):

* post level (:data:`NAME`, :func:`tfidf_baseline`, :func:`fit_predict_proba`): one document per post;
* sentence level (:data:`SENTENCE_NAME`, :func:`tfidf_sentence_baseline`,
  :func:`fit_predict_proba_sentences`): one document per sentence of the train posts (the prepared
  posts' sentences, data/prepare.py); a sentence is positive for a symptom when its label code is 1
  (an aligned status-1 evidence sentence), negative otherwise (-1, a clinician's rejection, and 0,
  unannotated, alike); a post's probability is the maximum over its sentences (0 for a post without
  sentences). A cue in one sentence anywhere in a long post counts as much as in a short one.

Per fold: the vectoriser (vocabulary, idf) and one logistic regression per symptom are fitted on the
fold's train part only, then scored on its held-out part at threshold 0.5 against the post labels. A
symptom with no positive (or no negative) train document in a fold has nothing to learn and predicts
the constant it saw.

The fit_predict_proba functions fit the same models on any train posts (e.g. the whole train split) and
return probabilities for other posts (e.g. the test split), so the baselines can be scored on the posts
the selected model is scored on.
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
SENTENCE_NAME = "tfidf_logreg_sentences"
SENTENCE_MODEL = (
    "TF-IDF (word 1-2 grams, sublinear tf) + one-vs-rest logistic regression (liblinear, class_weight=balanced) "
    "fitted on the sentences of the train posts (a sentence positive for a symptom when it is an aligned "
    "status-1 evidence sentence; rejected and unannotated sentences negative); a post's probability is the "
    "maximum over its sentences, threshold 0.5"
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


def _check_fold(fold: dict) -> tuple[list, list]:
    train_ids, held_ids = list(fold["train"]), list(fold["heldout"])
    k = fold["fold"]
    if not train_ids or not held_ids:
        raise ValueError(f"fold {k}: empty train or heldout part")
    overlap = set(map(str, train_ids)) & set(map(str, held_ids))
    if overlap:
        raise ValueError(
            f"fold {k}: {len(overlap)} post(s) are in both its train and heldout parts, e.g. {sorted(overlap)[:3]}"
        )
    return train_ids, held_ids


def _cross_validate(
    folds: list[dict], predict: Callable, labels_of: Callable, *, metric: str, seed: int, name: str, model: str
) -> dict:
    """Score ``predict(fold, train_ids, heldout_ids, seed) -> (n_heldout, n_labels) 0/1`` on every fold's
    held-out part against ``labels_of``; the result the baseline schema describes."""
    if metric not in _AVERAGES:
        raise ValueError(f"baseline metric {metric!r} is not supported; choose one of {', '.join(_AVERAGES)}")
    if not folds:
        raise ValueError(f"the {name} baseline needs at least one fold")
    t0 = time.perf_counter()
    scores = []
    for fold in sorted(folds, key=lambda f: f["fold"]):
        train_ids, held_ids = _check_fold(fold)
        pred = predict(fold["fold"], train_ids, held_ids, seed)
        y_held = _labels(labels_of, held_ids, "heldout")
        scores.append(float(f1_score(y_held, pred, average=_AVERAGES[metric], zero_division=0)))
    arr = np.asarray(scores)
    return {
        "name": name,
        "metric": metric,
        "fold_scores": scores,
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "split": SPLIT,
        "threshold": THRESHOLD,
        "model": model,
        "n_folds": len(scores),
        "seed": int(seed),
        "seconds": time.perf_counter() - t0,
    }


def tfidf_baseline(folds: list[dict], texts_of: Callable, labels_of: Callable, *, metric: str, seed: int = 0) -> dict:
    """Score the post-level TF-IDF baseline on every fold's held-out part.

    folds: [{"fold": k, "train": [post_ids], "heldout": [post_ids]}];
    texts_of(ids) -> list[str]; labels_of(ids) -> (n, 9) 0/1 array.
    ``metric``: the hpo section's metric (macro_f1 or micro_f1), the one the trials are scored on.
    Returns {"name", "metric", "fold_scores", "mean", "std" (population std over folds),
    "split", "threshold", "model", "n_folds", "seed", "seconds"}.
    """

    def predict(k, train_ids, held_ids, seed):
        train_texts = list(texts_of(train_ids))
        y_train = _labels(labels_of, train_ids, "train")
        held_texts = list(texts_of(held_ids))
        if len(train_texts) != len(train_ids) or len(held_texts) != len(held_ids):
            raise ValueError(f"fold {k}: texts_of must return one text per id")
        return _fit_predict(train_texts, y_train, held_texts, seed)

    return _cross_validate(folds, predict, labels_of, metric=metric, seed=seed, name=NAME, model=MODEL)


# ------------------------------------------------------------------------------------------------ sentence level


def _sentence_codes(sentences: Sequence[Sequence[str]], codes: Sequence, what: str) -> list[np.ndarray]:
    """Check one (n_sentences, n_labels) code array per post, matching its sentences and one another."""
    if len(codes) != len(sentences):
        raise ValueError(f"{what}: {len(codes)} sentence label arrays for {len(sentences)} posts; give one per post")
    out, width = [], None
    for k, (sents, c) in enumerate(zip(sentences, codes)):
        arr = np.asarray(c)
        if arr.ndim != 2 or arr.shape[0] != len(sents) or (width is not None and arr.shape[1] != width):
            raise ValueError(
                f"{what}: post {k} has {len(sents)} sentence(s) but sentence labels of shape {arr.shape}; "
                f"give an (n_sentences, n_labels) array per post{f' with {width} labels' if width else ''}"
            )
        width = arr.shape[1]
        out.append(arr)
    return out


def _max_over_posts(sentence_prob: np.ndarray, owner: np.ndarray, n_posts: int) -> np.ndarray:
    """(n_posts, n_labels): per post the maximum of its sentences' probabilities; 0 for a post without any."""
    out = np.zeros((n_posts, sentence_prob.shape[1]), dtype=np.float64)
    np.maximum.at(out, owner, sentence_prob)
    return out


def _fit_proba_sentences(
    train_sentences: Sequence[Sequence[str]],
    train_codes: list[np.ndarray],
    test_sentences: Sequence[Sequence[str]],
    seed: int,
) -> np.ndarray:
    flat_train = [s for sents in train_sentences for s in sents]
    if not flat_train:
        raise ValueError("the sentence baseline needs at least one train sentence")
    y = (np.concatenate(train_codes) == 1).astype(int)
    flat_test = [s for sents in test_sentences for s in sents]
    owner = np.repeat(np.arange(len(test_sentences)), [len(sents) for sents in test_sentences])
    if not flat_test:
        return np.zeros((len(test_sentences), y.shape[1]), dtype=np.float64)
    return _max_over_posts(_fit_proba(flat_train, y, flat_test, seed), owner, len(test_sentences))


def fit_predict_proba_sentences(
    train_sentences: Sequence[Sequence[str]],
    train_sentence_labels: Sequence,
    test_sentences: Sequence[Sequence[str]],
    *,
    seed: int = 0,
) -> np.ndarray:
    """Fit the sentence-level baseline (:data:`SENTENCE_MODEL`) on the train posts and return the test posts'
    probabilities: a float64 (n_test, n_labels) array in [0, 1], each the maximum over the post's sentences
    (0 for a post without sentences). Decide at :data:`THRESHOLD` (0.5) as the CV baseline does.

    train_sentences: per train post, its sentence texts (Prepared.sentences); train_sentence_labels: per train
    post, an (n_sentences, n_labels) array of codes (Prepared.sentence_labels: 1 evidence, -1 rejected,
    0 unannotated; only 1 is positive); test_sentences: per test post, its sentence texts.
    ``seed``: the logistic regressions' random_state (use the one the CV baseline got, data.split.seed).
    """
    codes = _sentence_codes(train_sentences, train_sentence_labels, "fit_predict_proba_sentences")
    return _fit_proba_sentences([list(s) for s in train_sentences], codes, [list(s) for s in test_sentences], seed)


def tfidf_sentence_baseline(
    folds: list[dict],
    sentences_of: Callable,
    sentence_labels_of: Callable,
    labels_of: Callable,
    *,
    metric: str,
    seed: int = 0,
) -> dict:
    """Score the sentence-level TF-IDF baseline on every fold's held-out part, like :func:`tfidf_baseline`
    (same folds, metric, threshold and result shape; name :data:`SENTENCE_NAME`).

    sentences_of(ids) -> per post its sentence texts (Prepared.sentences);
    sentence_labels_of(ids) -> per post an (n_sentences, 9) code array (Prepared.sentence_labels);
    labels_of(ids) -> (n, 9) 0/1 post labels (Prepared.labels), what the held-out posts are scored against.
    Only the train posts' sentences are fitted on; the held-out posts give their sentences to be scored.
    """

    def predict(k, train_ids, held_ids, seed):
        train_sentences = [list(s) for s in sentences_of(train_ids)]
        codes = _sentence_codes(train_sentences, sentence_labels_of(train_ids), f"fold {k}: sentence_labels_of")
        held_sentences = [list(s) for s in sentences_of(held_ids)]
        if len(train_sentences) != len(train_ids) or len(held_sentences) != len(held_ids):
            raise ValueError(f"fold {k}: sentences_of must return one list of sentences per id")
        prob = _fit_proba_sentences(train_sentences, codes, held_sentences, seed)
        return (prob >= THRESHOLD).astype(int)

    return _cross_validate(
        folds, predict, labels_of, metric=metric, seed=seed, name=SENTENCE_NAME, model=SENTENCE_MODEL
    )
