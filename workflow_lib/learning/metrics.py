"""Multi-label metrics for the nine symptoms (plain floats/ints, JSON-serialisable).

A label is predicted present when its probability is >= its threshold. Ratios with a zero
denominator are 0 (scikit-learn's ``zero_division=0``). The caller says which split the
numbers come from; nothing here knows.

Besides the project's own set (:func:`multilabel_metrics`), :func:`paper_metrics` computes the
ReDSM5 paper's set: F1 over ten labels (the nine symptoms plus ``NO_SYMPTOMS``) and exact-match
accuracy over the nine. :func:`gold_and_decisions` and :func:`f1_from_counts` are the shared
building blocks that :mod:`workflow_lib.learning.uncertainty` resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workflow_lib.symptoms import SYMPTOMS

DEFAULT_GRID = tuple(round(0.01 * i, 2) for i in range(1, 100))  # 0.01 .. 0.99
NO_SYMPTOMS = "NO_SYMPTOMS"  # the paper's tenth label: 1 when a post has none of the nine


def _arrays(y_true, y_prob, label_names=None) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if p.ndim == 1:
        p = p[:, None]
    if y.shape != p.shape:
        raise ValueError(f"y_true {y.shape} and y_prob {p.shape} differ in shape")
    if label_names is not None and len(label_names) != y.shape[1]:
        raise ValueError(f"{len(label_names)} label names for {y.shape[1]} label columns")
    return (y > 0.5), p


def _thresholds(thresholds, n_labels: int) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim == 0:
        return np.full(n_labels, float(t))
    if t.shape != (n_labels,):
        raise ValueError(f"need one threshold or {n_labels}, got {t.shape[0]}")
    return t


def _div(a: np.ndarray | float, b: np.ndarray | float):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def _average_precision(y: np.ndarray, p: np.ndarray) -> float | None:
    if not y.any():
        return None
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def multilabel_metrics(
    y_true, y_prob, thresholds: float | Sequence[float] = 0.5, label_names: Sequence[str] = SYMPTOMS
) -> dict:
    """Subset/label accuracy, macro/micro F1, precision, recall, and per-symptom details."""
    return _metrics(y_true, y_prob, thresholds, label_names, with_pr_auc=True)


def _metrics(y_true, y_prob, thresholds, label_names, *, with_pr_auc: bool) -> dict:
    y, p = _arrays(y_true, y_prob, label_names)
    t = _thresholds(thresholds, y.shape[1])
    pred = p >= t[None, :]
    tp = (pred & y).sum(axis=0)
    fp = (pred & ~y).sum(axis=0)
    fn = (~pred & y).sum(axis=0)
    tn = (~pred & ~y).sum(axis=0)
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    n = y.shape[0]
    per = {}
    aps = []
    for j, name in enumerate(label_names):
        ap = _average_precision(y[:, j], p[:, j]) if with_pr_auc else None
        if ap is not None:
            aps.append(ap)
        per[name] = {
            "f1": float(f1[j]),
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "pr_auc": ap,
            "support": int(tp[j] + fn[j]),
            "threshold": float(t[j]),
            "confusion_matrix": {"tn": int(tn[j]), "fp": int(fp[j]), "fn": int(fn[j]), "tp": int(tp[j])},
        }
    return {
        "n_samples": int(n),
        "accuracy": float((pred == y).all(axis=1).mean()) if n else 0.0,
        "label_accuracy": float((pred == y).mean()) if n else 0.0,
        "macro_f1": float(f1.mean()),
        "micro_f1": float(_div(2 * TP, 2 * TP + FP + FN)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "micro_precision": float(_div(TP, TP + FP)),
        "micro_recall": float(_div(TP, TP + FN)),
        "macro_pr_auc": float(np.mean(aps)) if aps else None,  # over labels with positives
        "per_symptom": per,
    }


def _f1_grid(y: np.ndarray, p: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of one label at every threshold of ``grid`` (zero_division=0)."""
    pred = p[:, None] >= grid[None, :]
    tp = (pred & y[:, None]).sum(axis=0)
    fp = pred.sum(axis=0) - tp
    fn = y.sum() - tp
    return _div(2 * tp, 2 * tp + fp + fn)


def tune_thresholds(y_true, y_prob, grid: Sequence[float] | None = None) -> list[float]:
    """Per label, the grid threshold with the best F1 on the given data.

    Ties go to the threshold closest to 0.5 (then the lower one); a label with no positives
    gets 0.5. Use on predictions the scored model did not train on (out-of-fold or validation).
    """
    y, p = _arrays(y_true, y_prob)
    g = np.asarray(DEFAULT_GRID if grid is None else grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise ValueError("grid must be a non-empty sequence of thresholds")
    dist = np.round(np.abs(g - 0.5), 9)
    out = []
    for j in range(y.shape[1]):
        if not y[:, j].any():
            out.append(0.5)
            continue
        f1 = _f1_grid(y[:, j], p[:, j], g)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        cand = best[dist[best] == dist[best].min()]
        out.append(float(g[cand[np.argmin(g[cand])]]))
    return out


def score(y_true, y_prob, metric: str, thresholds: float | Sequence[float] = 0.5) -> float:
    """One scalar of :func:`multilabel_metrics` (e.g. macro_f1, micro_f1, accuracy); higher is better."""
    y, p = _arrays(y_true, y_prob)
    names = [f"label_{j}" for j in range(y.shape[1])]
    m = _metrics(y, p, thresholds, names, with_pr_auc=(metric == "macro_pr_auc"))
    value = m.get(metric)
    if metric == "per_symptom" or metric == "n_samples" or metric not in m:
        allowed = [k for k, v in m.items() if k not in ("per_symptom", "n_samples")]
        raise ValueError(f"unknown metric {metric!r}; choose one of {allowed}")
    return float(value) if value is not None else 0.0


def gold_and_decisions(
    y_true, y_prob, thresholds: float | Sequence[float] = 0.5, label_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(gold, predicted): two boolean (n, L) arrays; gold is ``y_true > 0.5``, predicted is
    ``y_prob >= threshold`` per label (one threshold or one per label). 0/1 decisions pass through
    unchanged at the default 0.5. Raises ValueError on differing shapes or a wrong threshold count."""
    y, p = _arrays(y_true, y_prob, label_names)
    return y, p >= _thresholds(thresholds, y.shape[1])[None, :]


def f1_from_counts(tp, fp, fn) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) elementwise over arrays of counts of any shape; 0 where the
    denominator is 0 (scikit-learn's ``zero_division=0``)."""
    tp = np.asarray(tp, dtype=np.float64)
    return _div(2 * tp, 2 * tp + np.asarray(fp, dtype=np.float64) + np.asarray(fn, dtype=np.float64))


def with_no_symptoms(labels) -> np.ndarray:
    """Append the paper's ``NO_SYMPTOMS`` column to a boolean (n, L) label or decision matrix:
    True for a row with no True entry (gold: no positive label; predicted: no symptom predicted)."""
    a = np.asarray(labels, dtype=bool)
    return np.concatenate([a, ~a.any(axis=1, keepdims=True)], axis=1)


def paper_metrics(
    y_true, y_prob, thresholds: float | Sequence[float] = 0.5, label_names: Sequence[str] = SYMPTOMS
) -> dict:
    """The ReDSM5 paper's definitions at the given thresholds (0.5 or the tuned vector).

    Ten labels: the nine of ``label_names`` plus ``NO_SYMPTOMS`` (:func:`with_no_symptoms`).
    ``macro_f1`` is the unweighted mean of the ten F1s, ``micro_f1`` the F1 of the pooled counts,
    ``weighted_f1`` the support-weighted mean (scikit-learn's ``average="weighted"``), all with
    zero_division=0. ``exact_match`` is subset accuracy over the nine symptoms only (a post counts
    when all nine decisions equal gold; NO_SYMPTOMS is implied by them).

    Returns {"labels": [ten names], "macro_f1", "micro_f1", "weighted_f1", "exact_match",
    "n_samples", "thresholds": [one per symptom], "per_label": {name: {"f1", "support"}}}.
    """
    y, pred = gold_and_decisions(y_true, y_prob, thresholds, label_names)
    names = [*label_names, NO_SYMPTOMS]
    y10, pred10 = with_no_symptoms(y), with_no_symptoms(pred)
    tp = (pred10 & y10).sum(axis=0)
    fp = (pred10 & ~y10).sum(axis=0)
    fn = (~pred10 & y10).sum(axis=0)
    f1 = f1_from_counts(tp, fp, fn)
    support = y10.sum(axis=0)
    n = y.shape[0]
    return {
        "labels": names,
        "macro_f1": float(f1.mean()),
        "micro_f1": float(f1_from_counts(tp.sum(), fp.sum(), fn.sum())),
        "weighted_f1": float(_div((f1 * support).sum(), support.sum())),
        "exact_match": float((pred == y).all(axis=1).mean()) if n else 0.0,
        "n_samples": int(n),
        "thresholds": [float(t) for t in _thresholds(thresholds, y.shape[1])],
        "per_label": {name: {"f1": float(f1[j]), "support": int(support[j])} for j, name in enumerate(names)},
    }
