"""Uncertainty and fair comparison: every reported number with its interval, every comparison paired.

Pure functions of the arrays they are given (no files, no config, no global random state); each
takes its seed. Results are plain dicts of floats/ints/bools/None, JSON-serialisable with
``allow_nan=False``. Conventions:

* **Resampling unit: the post** (a row of the arrays). A bootstrap resample draws n posts with
  replacement from the n scored posts; resample ``b`` of ``n_resamples`` is row ``b`` of
  :func:`resample_indices` (``numpy.random.default_rng(seed)``), so every function called with the
  same ``(n, n_resamples, seed)`` sees the same resamples: intervals of different metrics, and a
  model and its baseline, are computed on the same draws.
* **Interval**: ``{"estimate", "low", "high", "n_undefined"}``. ``estimate`` is the metric on
  the posts as given (not the bootstrap mean); ``low``/``high`` are the percentile-method
  bounds, the ``alpha/2`` and ``1 - alpha/2`` quantiles of the resampled values
  (``numpy.quantile``, linear interpolation), 95% by default. A resampled value can be
  undefined (PR-AUC of a resample without a positive post): such resamples are left out of the
  quantiles and counted in ``n_undefined``; ``estimate`` None means the metric is undefined on
  the given posts, and low/high are None when no resample is defined.
* **bootstrap meta**: :func:`bootstrap_meta` gives the block a report prints beside intervals
  (method, n_resamples, seed, alpha); config's ``evaluation.bootstrap`` is ``n_resamples``
  (default :data:`DEFAULT_RESAMPLES`).

Functions, and the report field each is meant to feed:

* :func:`bootstrap_ci` -- generic: interval(s) of any ``metric_fn(*arrays)`` (a float or a dict
  of floats); loops over resamples in Python. Any number not covered below (e.g. calibration's
  Brier score and ECE).
* :func:`criteria_intervals` -- vectorised: intervals for the whole criteria metric set on one
  split: macro/micro F1, per-symptom F1 and PR-AUC (average precision), and the paper's
  ten-label macro/micro/weighted F1 and exact match; per symptom its positives and the
  few-positives flag. The evaluation report's test metrics (at the tuned thresholds and at 0.5).
* :func:`mean_intervals` -- intervals of means of per-example contributions, resampling posts
  (examples grouped by post). The evaluation report's evidence metrics.
* :func:`paired_bootstrap_difference` -- model minus baseline in macro (or micro) F1 on the same
  posts: difference, interval, one-sided p-value. The evaluation report's baseline comparison.
* :func:`cv_summary` -- per-fold scores to mean, sd and a t-interval. The selection report's and
  the baseline report's CV scores.
* :func:`corrected_resampled_ttest` -- Nadeau & Bengio's corrected t-test of two models'
  per-fold scores. The selection report's model-vs-baseline (or model-vs-model) CV comparison.
* :func:`select_thresholds` -- per-symptom thresholds from out-of-fold probabilities, 0.5 kept
  unless tuning beats it by more than noise; with :func:`threshold_rule` text. The refit
  metrics' ``thresholds`` block and the report sentence that states the rule.
* :func:`calibration` -- Brier score, expected calibration error and reliability-diagram bins,
  per symptom and averaged. The evaluation page's calibration table and plot.
* :func:`few_positives` -- per label, positives in the scored split and a flag below a
  minimum (default :data:`FEW_POSITIVES`). Carried by every per-symptom report entry.

The paper's point metrics themselves are :func:`workflow_lib.learning.metrics.paper_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from workflow_lib.symptoms import SYMPTOMS

DEFAULT_RESAMPLES = 2000
ALPHA = 0.05
FEW_POSITIVES = 5
CALIBRATION_BINS = 10
THRESHOLD_FOLDS = 5
DEFAULT_THRESHOLD = 0.5
METHOD = "percentile bootstrap, resampling posts with replacement"
_F1_METRICS = ("macro_f1", "micro_f1")


# ------------------------------------------------------------------------------------------------ resampling


def resample_indices(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0):
    """(n_resamples, n) int array: row b holds the posts (row numbers 0..n-1) drawn by resample b."""
    import numpy as np

    if n < 1:
        raise ValueError("nothing to resample: the arrays have no rows (posts)")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1 (config evaluation.bootstrap), got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def resample_counts(indices, n: int):
    """(n_resamples, n) float array: how many times resample b drew post i (each row sums to n)."""
    import numpy as np

    idx = np.asarray(indices)
    b = idx.shape[0]
    flat = (idx + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def bootstrap_meta(n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = ALPHA) -> dict:
    """The block a report prints beside its intervals: {"method", "n_resamples", "seed", "alpha", "level"}."""
    return {
        "method": METHOD,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "alpha": float(alpha),
        "level": 1.0 - float(alpha),
    }


def interval(estimate, replicates, alpha: float = ALPHA) -> dict:
    """An Interval from the metric on the given posts and its resampled values (NaN = undefined)."""
    import numpy as np

    reps = np.asarray(replicates, dtype=np.float64)
    defined = reps[~np.isnan(reps)]
    est = None if estimate is None or math.isnan(estimate) else float(estimate)
    if est is None or not defined.size:
        low = high = None
    else:
        low, high = (float(v) for v in np.quantile(defined, [alpha / 2, 1 - alpha / 2]))
    return {"estimate": est, "low": low, "high": high, "n_undefined": int(reps.size - defined.size)}


def _check_rows(arrays) -> int:
    import numpy as np

    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    lengths = [np.asarray(a).shape[0] if np.ndim(a) else -1 for a in arrays]
    if len(set(lengths)) != 1 or lengths[0] < 0:
        raise ValueError(f"the arrays must share their first dimension (one row per post); got lengths {lengths}")
    return lengths[0]


def _as_float(value) -> float:
    return math.nan if value is None else float(value)


# ------------------------------------------------------------------------------------------------ generic


def bootstrap_ci(
    metric_fn: Callable,
    *arrays,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Percentile-bootstrap interval of ``metric_fn(*arrays)``, resampling rows (posts) of all
    arrays together (paired).

    ``metric_fn`` returns a float, or a dict name -> float for several metrics at once; None or
    NaN means undefined on that resample. Returns an Interval (see the module docstring), or a
    dict name -> Interval when ``metric_fn`` returns a dict. Generic and simple: one Python call
    per resample; :func:`criteria_intervals` is the vectorised path for the criteria metrics.
    """
    import numpy as np

    n = _check_rows(arrays)
    arrs = [np.asarray(a) for a in arrays]
    point = metric_fn(*arrs)
    reps = [metric_fn(*(a[idx] for a in arrs)) for idx in resample_indices(n, n_resamples, seed)]
    if isinstance(point, Mapping):
        return {k: interval(_as_float(v), [_as_float(r[k]) for r in reps], alpha) for k, v in point.items()}
    return interval(_as_float(point), [_as_float(r) for r in reps], alpha)


# ------------------------------------------------------------------------------------------------ criteria


def _confusion(weights, gold, pred):
    """Weighted TP, FP, FN per label: (n_resamples, L) each, from weights (n_resamples, n)."""
    import numpy as np

    g, p = gold.astype(np.float64), pred.astype(np.float64)
    tp = weights @ (g * p)
    return tp, weights @ ((1 - g) * p), weights @ (g * (1 - p))


def resampled_f1(weights, gold, pred) -> dict:
    """Per resample (a row of ``weights``, see :func:`resample_counts`): per-label F1
    (n_resamples, L), macro F1, micro F1 and support-weighted F1 (n_resamples,), with
    scikit-learn's zero_division=0. A weights row of ones gives the metrics on the posts as given."""
    import numpy as np

    from workflow_lib.learning.metrics import f1_from_counts

    tp, fp, fn = _confusion(np.atleast_2d(weights), gold, pred)
    f1 = f1_from_counts(tp, fp, fn)
    support = tp + fn
    total = support.sum(axis=1)
    weighted = np.divide((f1 * support).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    return {
        "per_label": f1,
        "macro": f1.mean(axis=1),
        "micro": f1_from_counts(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1)),
        "weighted": weighted,
    }


def resampled_average_precision(weights, gold, prob):
    """Average precision (scikit-learn's average_precision_score with the resample counts as
    sample weights) of one label per resample: (n_resamples,), NaN where the resample has no
    positive post. Ties in ``prob`` form one threshold, as in scikit-learn."""
    import numpy as np

    w = np.atleast_2d(weights)
    order = np.argsort(-np.asarray(prob, dtype=np.float64), kind="mergesort")
    s, g = np.asarray(prob, dtype=np.float64)[order], np.asarray(gold, dtype=bool)[order]
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last row of each run of equal scores
    ws = w[:, order]
    tp = np.cumsum(ws * g, axis=1)[:, ends]
    seen = np.cumsum(ws, axis=1)[:, ends]
    positives = tp[:, -1:]
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    recall = np.divide(tp, positives, out=np.zeros_like(tp), where=positives > 0)
    ap = (np.diff(recall, axis=1, prepend=0.0) * precision).sum(axis=1)
    ap[positives[:, 0] == 0] = np.nan
    return ap


def criteria_intervals(
    y_true,
    y_prob,
    thresholds: float | Sequence[float] = DEFAULT_THRESHOLD,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
    label_names: Sequence[str] = SYMPTOMS,
    min_positives: int = FEW_POSITIVES,
) -> dict:
    """Intervals for the whole criteria metric set of one split, at the given thresholds.

    y_true (n, L) 0/1, y_prob (n, L) probabilities, thresholds one or L (0.5 or the tuned
    vector). Returns::

        {"bootstrap": bootstrap_meta(...), "n_posts": n, "thresholds": [L floats],
         "macro_f1": Interval, "micro_f1": Interval,
         "paper": {"macro_f1", "micro_f1", "weighted_f1", "exact_match": Interval},
         "per_symptom": {name: {"f1": Interval, "pr_auc": Interval, "n_positives": int,
                                "few_positives": bool, "resamples_without_positive": int}}}

    Estimates equal :func:`~workflow_lib.learning.metrics.multilabel_metrics` (macro/micro F1,
    per-symptom f1 and pr_auc) and :func:`~workflow_lib.learning.metrics.paper_metrics` (the
    ten-label F1s with NO_SYMPTOMS, exact match over the L labels). Per-symptom PR-AUC is
    undefined on a resample without a positive post: those resamples are left out of its
    interval and counted (``n_undefined``; ``resamples_without_positive`` says the same for F1,
    which is defined there, 0 by zero_division=0). All metrics share the same resamples.
    """
    import numpy as np

    from workflow_lib.learning.metrics import gold_and_decisions, with_no_symptoms

    gold, pred = gold_and_decisions(y_true, y_prob, thresholds, label_names)
    prob = np.asarray(y_prob, dtype=np.float64).reshape(gold.shape)
    n = gold.shape[0]
    weights = resample_counts(resample_indices(n, n_resamples, seed), n)
    ones = np.ones((1, n))
    point, reps = resampled_f1(ones, gold, pred), resampled_f1(weights, gold, pred)
    g10, p10 = with_no_symptoms(gold), with_no_symptoms(pred)
    point10, reps10 = resampled_f1(ones, g10, p10), resampled_f1(weights, g10, p10)
    exact = (gold == pred).all(axis=1).astype(np.float64)
    positives_per_resample = weights @ gold.astype(np.float64)
    flags = few_positives(gold, label_names, min_positives)
    per = {}
    for j, name in enumerate(label_names):
        per[name] = {
            "f1": interval(point["per_label"][0, j], reps["per_label"][:, j], alpha),
            "pr_auc": interval(
                resampled_average_precision(ones, gold[:, j], prob[:, j])[0],
                resampled_average_precision(weights, gold[:, j], prob[:, j]),
                alpha,
            ),
            **flags[name],
            "resamples_without_positive": int((positives_per_resample[:, j] == 0).sum()),
        }
    return {
        "bootstrap": bootstrap_meta(n_resamples, seed, alpha),
        "n_posts": int(n),
        "thresholds": [float(t) for t in np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (gold.shape[1],))],
        "macro_f1": interval(point["macro"][0], reps["macro"], alpha),
        "micro_f1": interval(point["micro"][0], reps["micro"], alpha),
        "paper": {
            "macro_f1": interval(point10["macro"][0], reps10["macro"], alpha),
            "micro_f1": interval(point10["micro"][0], reps10["micro"], alpha),
            "weighted_f1": interval(point10["weighted"][0], reps10["weighted"], alpha),
            "exact_match": interval(exact.mean(), weights @ exact / n, alpha),
        },
        "per_symptom": per,
    }


# ------------------------------------------------------------------------------------------------ evidence


def mean_intervals(
    contributions: Mapping[str, Sequence[float]],
    post_ids: Sequence | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Intervals of means of per-example contributions, resampling posts.

    ``contributions``: metric name -> one finite value per example (e.g. per (post, symptom)
    example: exact_match, char_f1, token_f1, null_span_accuracy as
    :func:`workflow_lib.learning.spans.evidence_metrics` computes them for that one example);
    ``post_ids``: the post of each example (None: every example is its own post). A resample
    draws posts with replacement and keeps all examples of each drawn post, so the estimate of a
    resample is sum(contributions of the drawn examples) / their number; the estimate equals
    the plain mean over the examples. Returns {name: Interval} plus "n_examples", "n_posts".
    """
    import numpy as np

    values = {k: np.asarray(v, dtype=np.float64) for k, v in contributions.items()}
    shapes = {v.shape for v in values.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        sizes = {k: v.shape for k, v in values.items()}
        raise ValueError(f"contributions must map each metric to one value per example (same length); got {sizes}")
    (n_examples,) = shapes.pop()
    ids = np.arange(n_examples) if post_ids is None else np.asarray(post_ids)
    if ids.shape != (n_examples,):
        raise ValueError(f"post_ids must give one post per example: {ids.shape[0]} ids for {n_examples} examples")
    _, group = np.unique(ids, return_inverse=True)
    n_posts = int(group.max()) + 1 if n_examples else 0
    weights = resample_counts(resample_indices(n_posts, n_resamples, seed), n_posts)
    sizes_per_post = np.bincount(group, minlength=n_posts).astype(np.float64)
    out = {}
    for name, v in values.items():
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise ValueError(f"contribution {name!r} of example {int(bad[0])} is {v[bad[0]]}; give finite values")
        sums = np.bincount(group, weights=v, minlength=n_posts)
        out[name] = interval(v.mean(), (weights @ sums) / (weights @ sizes_per_post), alpha)
    return {**out, "n_examples": int(n_examples), "n_posts": n_posts}


# ------------------------------------------------------------------------------------------------ comparisons


def paired_bootstrap_difference(
    y_true,
    prob_model,
    prob_baseline,
    *,
    thresholds_model: float | Sequence[float] = DEFAULT_THRESHOLD,
    thresholds_baseline: float | Sequence[float] = DEFAULT_THRESHOLD,
    metric: str = "macro_f1",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Model minus baseline in macro (or micro) F1 on the same posts, paired bootstrap.

    Both are decided at their own thresholds (0/1 decisions pass unchanged at 0.5). Each resample
    draws posts once and scores both on them. Returns {"metric", "model", "baseline",
    "difference": Interval, "p_value", "bootstrap": bootstrap_meta(...)}; "model"/"baseline" are
    the metric on the given posts. ``p_value`` is one-sided for "the model is better":
    (1 + #{resamples with difference <= 0}) / (n_resamples + 1), the +1 keeping it above 0
    (identical predictions give 1).
    """
    import numpy as np

    from workflow_lib.learning.metrics import gold_and_decisions

    if metric not in _F1_METRICS:
        raise ValueError(
            f"paired difference metric {metric!r} is not supported; choose one of {', '.join(_F1_METRICS)}"
        )
    gold, pred_m = gold_and_decisions(y_true, prob_model, thresholds_model)
    _, pred_b = gold_and_decisions(y_true, prob_baseline, thresholds_baseline)
    n = gold.shape[0]
    key = metric.split("_")[0]
    weights = resample_counts(resample_indices(n, n_resamples, seed), n)
    ones = np.ones((1, n))
    model, base = resampled_f1(ones, gold, pred_m)[key][0], resampled_f1(ones, gold, pred_b)[key][0]
    diffs = resampled_f1(weights, gold, pred_m)[key] - resampled_f1(weights, gold, pred_b)[key]
    return {
        "metric": metric,
        "model": float(model),
        "baseline": float(base),
        "difference": interval(model - base, diffs, alpha),
        "p_value": float((1 + np.sum(diffs <= 0)) / (n_resamples + 1)),
        "bootstrap": bootstrap_meta(n_resamples, seed, alpha),
    }


def cv_summary(fold_scores: Sequence[float], alpha: float = ALPHA) -> dict:
    """Per-fold scores -> {"k", "mean", "sd" (ddof=1), "low", "high", "df", "level"}: the
    Student-t interval mean ± t(1 - alpha/2, k-1) · sd / sqrt(k). With one fold sd, low and high
    are None. The folds share training posts, so this interval is optimistic (too narrow); compare
    two models with :func:`corrected_resampled_ttest`."""
    import numpy as np
    from scipy import stats

    x = np.asarray(fold_scores, dtype=np.float64)
    k = x.size
    if k == 0:
        raise ValueError("cv_summary needs at least one fold score")
    out = {"k": int(k), "mean": float(x.mean()), "sd": None, "low": None, "high": None, "df": k - 1, "level": 1 - alpha}
    if k > 1:
        sd = float(x.std(ddof=1))
        half = float(stats.t.ppf(1 - alpha / 2, k - 1)) * sd / math.sqrt(k)
        out.update(sd=sd, low=out["mean"] - half, high=out["mean"] + half)
    return out


def corrected_resampled_ttest(
    scores_a: Sequence[float], scores_b: Sequence[float], *, n_train: float, n_test: float
) -> dict:
    """Nadeau & Bengio (2003) corrected resampled t-test of model a vs model b on the same k folds.

    d = a - b per fold; t = mean(d) / sqrt((1/k + n_test/n_train) · var(d, ddof=1)), k-1 degrees
    of freedom. The n_test/n_train term widens the plain paired t-test's 1/k for the overlap of the
    folds' training sets (for k-fold CV, n_test/n_train = 1/(k-1)). n_train, n_test: the posts a
    fold trains on and scores (their mean over the folds when sizes differ).

    Returns {"k", "mean_difference", "sd_difference", "t", "df", "p_two_sided", "p_one_sided"
    (H1: a better than b), "correction" (1/k + n_test/n_train), "t_uncorrected" (the plain paired
    t, for comparison)}. t and the p-values are None when all k differences are equal (sd 0).
    """
    import numpy as np
    from scipy import stats

    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"need the same k >= 2 folds for both models; got {a.shape} and {b.shape}")
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"n_train and n_test must be positive post counts, got {n_train} and {n_test}")
    d = a - b
    k = d.size
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    correction = 1 / k + n_test / n_train
    out = {
        "k": int(k),
        "mean_difference": mean,
        "sd_difference": sd,
        "t": None,
        "df": k - 1,
        "p_two_sided": None,
        "p_one_sided": None,
        "correction": float(correction),
        "t_uncorrected": None,
    }
    if sd > 0:
        t = mean / math.sqrt(correction * sd**2)
        out.update(
            t=t,
            p_two_sided=float(2 * stats.t.sf(abs(t), k - 1)),
            p_one_sided=float(stats.t.sf(t, k - 1)),
            t_uncorrected=mean / (sd / math.sqrt(k)),
        )
    return out


# ------------------------------------------------------------------------------------------------ thresholds


def threshold_rule(
    n_folds: int = THRESHOLD_FOLDS, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, alpha: float = ALPHA
) -> str:
    """The sentence a report prints verbatim to state how :func:`select_thresholds` decided."""
    level = f"{100 * (1 - alpha):g}%"
    return (
        f"Each symptom is decided at probability {DEFAULT_THRESHOLD} unless tuning beats it by more than noise. "
        f"A threshold is tuned for F1 on the out-of-fold probabilities of the train split (grid search; ties go "
        f"to the value nearest {DEFAULT_THRESHOLD}). Its gain is measured without optimism by cross-fitting: the "
        f"posts are split into {n_folds} folds stratified by the symptom, each fold is decided at a threshold "
        f"tuned on the other folds, and the gain is the F1 of these decisions minus the F1 at "
        f"{DEFAULT_THRESHOLD}. The tuned threshold is adopted only if the lower end of the {level} paired "
        f"percentile-bootstrap interval of that gain ({n_resamples} resamples of posts, seed {seed}) is above 0. "
        f"A symptom with fewer than 2 positive (or negative) posts keeps {DEFAULT_THRESHOLD}."
    )


def _cross_fitted_decisions(gold, prob, grid, n_folds: int, seed: int):
    """Decisions for one label where each post's threshold was tuned on the other folds."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from workflow_lib.learning.metrics import tune_thresholds

    pred = np.zeros(gold.size, dtype=bool)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fit, held in folds.split(np.zeros((gold.size, 1)), gold):
        t = tune_thresholds(gold[fit, None], prob[fit, None], grid)[0]
        pred[held] = prob[held] >= t
    return pred


def _threshold_entry(gold, prob, tuned: float, weights, grid, n_folds: int, seed: int, alpha: float) -> dict:
    """One symptom's decision (see :func:`select_thresholds`)."""
    import numpy as np

    n_pos, n_neg = int(gold.sum()), int((~gold).sum())
    folds = min(n_folds, n_pos, n_neg)
    ones = np.ones((1, gold.size))
    g = gold[:, None]

    def f1(w, pred):
        return resampled_f1(w, g, pred[:, None])["per_label"][:, 0]

    at_half, at_tuned = f1(ones, prob >= DEFAULT_THRESHOLD)[0], f1(ones, prob >= tuned)[0]
    entry = {
        "threshold": DEFAULT_THRESHOLD,
        "tuned_threshold": float(tuned),
        "f1_at_tuned": float(at_tuned),
        "f1_at_0.5": float(at_half),
        "apparent_gain": float(at_tuned - at_half),
        "f1_cross_fitted": None,
        "gain": interval(None, [], alpha),
        "adopted": False,
        "reason": "",
        "n_positives": n_pos,
        "n_folds": int(folds),
    }
    if folds < 2:
        entry["reason"] = "fewer than 2 positive or negative posts: kept 0.5"
        return entry
    cross = _cross_fitted_decisions(gold, prob, grid, folds, seed)
    cross_f1 = f1(ones, cross)[0]
    gain = interval(cross_f1 - at_half, f1(weights, cross) - f1(weights, prob >= DEFAULT_THRESHOLD), alpha)
    adopted = gain["low"] is not None and gain["low"] > 0 and tuned != DEFAULT_THRESHOLD
    entry.update(
        threshold=float(tuned) if adopted else DEFAULT_THRESHOLD,
        f1_cross_fitted=float(cross_f1),
        gain=gain,
        adopted=bool(adopted),
        reason="gain interval above 0: tuned threshold adopted" if adopted else "gain within noise: kept 0.5",
    )
    return entry


def select_thresholds(
    y_true,
    oof_prob,
    *,
    label_names: Sequence[str] = SYMPTOMS,
    grid: Sequence[float] | None = None,
    n_folds: int = THRESHOLD_FOLDS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict:
    """Per-symptom decision thresholds from out-of-fold probabilities over the whole train split:
    0.5 unless tuning improves that symptom's F1 by more than the noise.

    y_true (n, L) 0/1 and oof_prob (n, L): every post's probability from the CV model that did not
    train on it. Per symptom:

    1. ``tuned_threshold``: :func:`~workflow_lib.learning.metrics.tune_thresholds` on all n posts
       (grid search for F1, ties to the value nearest 0.5). Its in-sample F1 (``f1_at_tuned``) is
       optimistic: the search picked the best of ~100 thresholds on these very posts, so
       ``apparent_gain`` over ``f1_at_0.5`` is positive even on noise.
    2. The gain without that optimism, by cross-fitting: the posts are split into ``n_folds``
       folds stratified by the symptom (seeded); the posts of each fold are decided at a threshold
       tuned on the other folds, so no post's decision used its own label. ``gain`` is the F1 of
       these decisions (``f1_cross_fitted``) minus ``f1_at_0.5``, on all n posts.
    3. Its noise: the paired percentile bootstrap of that gain over posts (both decision vectors
       fixed, the same resamples for both; the seed and the resamples are shared by all symptoms).
       The tuned threshold is **adopted** only if the lower bound of the (1 - alpha) interval is
       above 0, i.e. the gain is positive at one-sided level alpha/2.

    Why this rule: the in-bag alternative (re-tune inside every bootstrap resample and compare
    with 0.5 on the same resample) measures the maximum over the grid, which is never below the
    value at 0.5, so its interval cannot guard against optimism; evaluating each resample's tuned
    threshold on its out-of-bag posts is honest but scores ~37% of the posts, widening the interval
    and starving rare symptoms. Cross-fitting scores every post out-of-sample, once, and the
    bootstrap of two fixed decision vectors is the standard paired comparison.

    A symptom with fewer than 2 positive (or negative) posts keeps 0.5 (folds = min(n_folds,
    positives, negatives) otherwise). Returns::

        {"rule": threshold_rule(...), "thresholds": [L floats to use],
         "bootstrap": bootstrap_meta(...), "n_posts": n, "n_folds": n_folds,
         "per_symptom": {name: {"threshold", "tuned_threshold", "f1_at_tuned", "f1_at_0.5",
                                "apparent_gain", "f1_cross_fitted", "gain": Interval,
                                "adopted", "reason", "n_positives", "n_folds"}}}

    ``gain["estimate"]``/``f1_cross_fitted`` are None for a symptom that kept 0.5 for lack of
    positives. Reads nothing but its arguments.
    """
    import numpy as np

    from workflow_lib.learning.metrics import DEFAULT_GRID, gold_and_decisions, tune_thresholds

    gold, _ = gold_and_decisions(y_true, oof_prob, DEFAULT_THRESHOLD, label_names)
    prob = np.asarray(oof_prob, dtype=np.float64).reshape(gold.shape)
    g = DEFAULT_GRID if grid is None else grid
    tuned = tune_thresholds(gold, prob, g)
    n = gold.shape[0]
    weights = resample_counts(resample_indices(n, n_resamples, seed), n)
    per = {
        name: _threshold_entry(gold[:, j], prob[:, j], tuned[j], weights, g, n_folds, seed, alpha)
        for j, name in enumerate(label_names)
    }
    return {
        "rule": threshold_rule(n_folds, n_resamples, seed, alpha),
        "thresholds": [per[name]["threshold"] for name in label_names],
        "bootstrap": bootstrap_meta(n_resamples, seed, alpha),
        "n_posts": int(n),
        "n_folds": int(n_folds),
        "per_symptom": per,
    }


# ------------------------------------------------------------------------------------------------ calibration


def reliability_bins(gold, prob, n_bins: int = CALIBRATION_BINS) -> list[dict]:
    """Reliability-diagram data of one label: ``n_bins`` equal-width bins of [0, 1]; bin k holds
    k/n_bins <= p < (k+1)/n_bins (p = 1 in the last bin). Per bin {"lower", "upper", "count",
    "mean_predicted", "observed_frequency"}; the last two are None for an empty bin."""
    import numpy as np

    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(gold, dtype=np.float64)
    k = np.clip(np.floor(p * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(k, minlength=n_bins)
    sum_p = np.bincount(k, weights=p, minlength=n_bins)
    sum_y = np.bincount(k, weights=y, minlength=n_bins)
    return [
        {
            "lower": b / n_bins,
            "upper": (b + 1) / n_bins,
            "count": int(counts[b]),
            "mean_predicted": float(sum_p[b] / counts[b]) if counts[b] else None,
            "observed_frequency": float(sum_y[b] / counts[b]) if counts[b] else None,
        }
        for b in range(n_bins)
    ]


def expected_calibration_error(bins: Sequence[Mapping]) -> float:
    """Count-weighted mean over bins of |mean predicted - observed frequency| (empty bins weigh 0)."""
    total = sum(b["count"] for b in bins)
    return (
        sum(b["count"] * abs(b["mean_predicted"] - b["observed_frequency"]) for b in bins if b["count"]) / total
        if total
        else 0.0
    )


def calibration(y_true, y_prob, n_bins: int = CALIBRATION_BINS, label_names: Sequence[str] = SYMPTOMS) -> dict:
    """Brier score and expected calibration error (ECE) per symptom and averaged, with the
    reliability-diagram bins a page plots.

    Brier: mean of (p - y)^2 over posts. ECE: :func:`expected_calibration_error` over
    :func:`reliability_bins` (``n_bins`` equal-width bins, default 10, count-weighted). The
    averages are unweighted means over the labels. Returns {"n_bins", "brier", "ece",
    "per_symptom": {name: {"brier", "ece", "n_positives", "bins": [reliability bins]}}}.
    """
    import numpy as np

    from workflow_lib.learning.metrics import gold_and_decisions

    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    gold, _ = gold_and_decisions(y_true, y_prob, DEFAULT_THRESHOLD, label_names)
    prob = np.asarray(y_prob, dtype=np.float64).reshape(gold.shape)
    if gold.shape[0] == 0:
        raise ValueError("calibration needs at least one post")
    per = {}
    for j, name in enumerate(label_names):
        bins = reliability_bins(gold[:, j], prob[:, j], n_bins)
        per[name] = {
            "brier": float(np.mean((prob[:, j] - gold[:, j]) ** 2)),
            "ece": float(expected_calibration_error(bins)),
            "n_positives": int(gold[:, j].sum()),
            "bins": bins,
        }
    return {
        "n_bins": int(n_bins),
        "brier": float(np.mean([v["brier"] for v in per.values()])),
        "ece": float(np.mean([v["ece"] for v in per.values()])),
        "per_symptom": per,
    }


# ------------------------------------------------------------------------------------------------ few positives


def few_positives(y_true, label_names: Sequence[str] = SYMPTOMS, min_positives: int = FEW_POSITIVES) -> dict:
    """Per label {"n_positives": int, "few_positives": bool}: True when the scored split has fewer
    than ``min_positives`` positive posts, so its per-label numbers rest on a handful of posts.
    y_true (n, L) 0/1 (or boolean); label_names one per column (add NO_SYMPTOMS for ten labels)."""
    import numpy as np

    y = np.asarray(y_true)
    if y.ndim != 2 or y.shape[1] != len(label_names):
        raise ValueError(f"y_true must be (n_posts, {len(label_names)}) for labels {list(label_names)}; got {y.shape}")
    counts = (y > 0.5).sum(axis=0)
    return {
        name: {"n_positives": int(counts[j]), "few_positives": bool(counts[j] < min_positives)}
        for j, name in enumerate(label_names)
    }
