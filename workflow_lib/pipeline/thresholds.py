"""The refit's decision thresholds, chosen as config ``thresholds.source`` says, and the ``thresholds`` block its
metrics.json carries (the evaluation report repeats it as used).

* ``oof``: :func:`workflow_lib.learning.uncertainty.select_thresholds` on the out-of-fold probabilities of the
  refit trial's cross-validation models over the whole train split (each fold's ``heldout_post_ids`` and
  ``heldout_probs`` in its metrics.json, :func:`read_out_of_fold`);
* ``validation``: :func:`workflow_lib.learning.metrics.tune_thresholds` on the refit model's validation
  predictions;
* ``fixed``: 0.5 for every symptom.

Nothing here reads the test split: the out-of-fold rows are train-split posts (a fold file naming any other
post is refused) whose gold labels are asked for by their ids only, and the validation rows come from the caller.
The out-of-fold summary (F1 at the chosen thresholds and at 0.5, calibration) is written whenever the fold files
hold the probabilities, whatever the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_lib.learning.uncertainty import calibration, select_thresholds
from workflow_lib.persistence.reports import read_json
from workflow_lib.symptoms import SYMPTOMS

OOF_SPLIT = "cv heldout folds (train split)"
SPLIT_OF = {"oof": OOF_SPLIT, "validation": "validation", "fixed": None}
VALIDATION_RULE = (
    "Each symptom is decided at the threshold that maximises its F1 on the refit model's validation predictions "
    "(grid search 0.01-0.99; ties go to the value nearest 0.5; a symptom without validation positives keeps 0.5). "
    "The tuned value is used as found, without a check that it beats 0.5 by more than noise."
)
FIXED_RULE = "Every symptom is decided at probability 0.5 (thresholds.source: fixed); nothing is tuned."
DEFAULT = 0.5


class ThresholdError(ValueError):
    """The out-of-fold predictions cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class OutOfFold:
    """Every train post's probability from the CV model that did not train on it, in the train split's order."""

    post_ids: list[str]
    labels: Any  # (n, 9) 0/1
    probs: Any  # (n, 9)
    files: list[str]


def _fold_rows(path: str, train: set[str], seen: dict[str, str]) -> dict[str, list[float]] | None:
    """post id -> probabilities of one fold file; None when the file predates the out-of-fold fields."""
    if not Path(path).is_file():
        raise ThresholdError(
            f"{path}: the fold's metrics are missing, so the out-of-fold probabilities are incomplete; "
            "run the study again (snakemake --forcerun hpo_worker) or set thresholds.source: validation"
        )
    fold = read_json(path)
    ids, probs = fold.get("heldout_post_ids"), fold.get("heldout_probs")
    if ids is None or probs is None:
        return None
    if len(ids) != len(probs) or any(len(row) != len(SYMPTOMS) for row in probs):
        raise ThresholdError(
            f"{path}: heldout_probs must hold one row of {len(SYMPTOMS)} probabilities per heldout_post_ids entry "
            f"({len(ids)} ids, {len(probs)} rows); the file is damaged - run the study again"
        )
    rows = {}
    for pid, row in zip(ids, probs):
        if pid not in train:
            raise ThresholdError(
                f"{path}: held-out post {pid!r} is not a train-split post of this data; out-of-fold thresholds are "
                "chosen on the train split only (the study was run on other data? run it again)"
            )
        if pid in seen:
            raise ThresholdError(f"{path}: post {pid!r} is held out by another fold too ({seen[pid]})")
        seen[pid] = path
        rows[pid] = row
    return rows


def read_out_of_fold(
    fold_paths: Sequence[str], train_ids: Sequence[str], labels_of: Callable[[list[str]], Any]
) -> OutOfFold | None:
    """The out-of-fold predictions of one trial from its folds' metrics.json files (``fold_paths``), ordered as
    ``train_ids`` (the train split) with gold labels from ``labels_of(ids)`` (Prepared.labels), called with
    train-split ids only. None when a fold file was written before folds kept their probabilities.

    Raises ThresholdError, naming the file, when a file is missing, damaged, holds a post outside the train
    split or one another fold holds too, or when the folds together miss train posts."""
    import numpy as np

    train = set(train_ids)
    seen: dict[str, str] = {}
    found: dict[str, list[float]] = {}
    for path in fold_paths:
        rows = _fold_rows(str(path), train, seen)
        if rows is None:
            return None
        found.update(rows)
    missing = [pid for pid in train_ids if pid not in found]
    if missing:
        raise ThresholdError(
            f"the folds {', '.join(map(str, fold_paths))} hold out {len(found)} of the {len(train_ids)} train posts "
            f"(missing e.g. {missing[:3]}); every train post needs an out-of-fold probability - run the study again"
        )
    ids = list(train_ids)
    labels = np.asarray(labels_of(ids), dtype=np.float64)
    return OutOfFold(ids, labels, np.asarray([found[i] for i in ids], dtype=np.float64), [str(p) for p in fold_paths])


def _f1s(y, probs, thresholds) -> dict:
    from workflow_lib.learning.metrics import multilabel_metrics

    m = multilabel_metrics(y, probs, thresholds)
    return {"macro_f1": m["macro_f1"], "micro_f1": m["micro_f1"]}


def oof_summary(oof: OutOfFold, thresholds: Sequence[float]) -> dict:
    """The out-of-fold F1s at the chosen thresholds and at 0.5, and the calibration of the probabilities."""
    return {
        "split": OOF_SPLIT,
        "n_posts": len(oof.post_ids),
        "at_tuned_thresholds": _f1s(oof.labels, oof.probs, list(thresholds)),
        "at_0.5": _f1s(oof.labels, oof.probs, DEFAULT),
        "calibration": {**calibration(oof.labels, oof.probs), "split": OOF_SPLIT},
    }


def check_source(source: str, oof: OutOfFold | None) -> None:
    """Raise ThresholdError when ``source`` needs out-of-fold probabilities that the fold files do not hold."""
    if source == "oof" and oof is None:
        raise ThresholdError(
            "thresholds.source is oof but the trial's fold metrics hold no out-of-fold probabilities (written by "
            "older code); run the study again (snakemake --forcerun hpo_worker) or set thresholds.source: validation"
        )


def thresholds_block(source: str, *, oof: OutOfFold | None, y_val=None, val_probs=None) -> dict:
    """The refit's ``thresholds`` block: {"source", "split", "values" (symptom -> threshold), "rule"}, with
    "per_symptom" and "bootstrap" (select_thresholds' decisions) for source oof and "oof" (:func:`oof_summary`)
    whenever ``oof`` is given. ``y_val``/``val_probs``: the refit's validation labels and probabilities (source
    validation)."""
    from workflow_lib.learning.metrics import tune_thresholds

    check_source(source, oof)
    extra: dict = {}
    if source == "oof":
        chosen = select_thresholds(oof.labels, oof.probs)
        values, rule = chosen["thresholds"], chosen["rule"]
        extra = {"per_symptom": chosen["per_symptom"], "bootstrap": chosen["bootstrap"]}
    elif source == "validation":
        values, rule = tune_thresholds(y_val, val_probs), VALIDATION_RULE
    elif source == "fixed":
        values, rule = [DEFAULT] * len(SYMPTOMS), FIXED_RULE
    else:
        raise ValueError(f"thresholds.source {source!r} is not one of {', '.join(SPLIT_OF)}")
    block = {
        "source": source,
        "split": SPLIT_OF[source],
        "values": dict(zip(SYMPTOMS, (float(v) for v in values))),
        "rule": rule,
        **extra,
    }
    if oof is not None:
        block["oof"] = oof_summary(oof, values)
    return block


# -- the sentence model's evidence threshold ------------------------------------------------------------------------
EVIDENCE_RULE = (
    "The sentence model's evidence threshold maximises sentence-level micro F1 (every sentence-symptom cell with a "
    "known label) over the grid 0.05-0.95 (step 0.05; ties go to the value nearest 0.5) on {where}. A predicted "
    "symptom's evidence is its sentences at or above it, else its most probable sentence."
)
EVIDENCE_WHERE = {
    "oof": "the cross-validation models' held-out sentences of the whole train split (fold counts pooled)",
    "validation": "the refit model's validation sentences",
}


def read_evidence_counts(fold_paths: Sequence[str]) -> list[dict] | None:
    """Every fold's ``heldout_sentence_counts`` (hpo.train_fold: the sentence model's sentence-level counts on its
    held-out posts over the evidence grid); None when a fold file has none (a post-level model, or older code)."""
    counts = []
    for path in fold_paths:
        found = read_json(str(path)).get("heldout_sentence_counts")
        if found is None:
            return None
        if counts and found["grid"] != counts[0]["grid"]:
            raise ThresholdError(f"{path}: its evidence grid differs from {fold_paths[0]}'s; run the study again")
        counts.append(found)
    return counts


def _best_on_grid(counts: Sequence[dict]) -> tuple[float, list[float]]:
    """(threshold of the best pooled F1, the pooled F1 at every grid value) from sentence counts that add up."""
    grid = counts[0]["grid"]
    f1 = []
    for k in range(len(grid)):
        tp, fp, fn = (sum(c[key][k] for c in counts) for key in ("tp", "fp", "fn"))
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    best = max(range(len(grid)), key=lambda k: (round(f1[k], 12), -abs(grid[k] - DEFAULT)))
    return float(grid[best]), f1


def check_evidence_source(source: str, counts: Sequence[dict] | None) -> None:
    """Raise ThresholdError when ``source`` (oof or validation) has no sentence counts to choose the sentence
    model's evidence threshold on."""
    if source != "fixed" and not counts:
        raise ThresholdError(
            f"thresholds.source is {source} but there are no {'out-of-fold' if source == 'oof' else 'validation'} "
            "sentence counts to choose the sentence model's evidence threshold on (fold metrics written by older "
            "code?); run the study again (snakemake --forcerun hpo_worker) or set thresholds.source: fixed"
        )


def evidence_threshold_block(
    source: str, *, oof_counts: Sequence[dict] | None, validation_counts: dict | None, fixed: float
) -> dict:
    """The sentence model's evidence threshold as ``thresholds.source`` says, as the refit's ``thresholds.evidence``
    block {"value", "source", "split", "rule", "grid", "f1"}: out of fold (the folds' pooled sentence counts,
    :func:`read_evidence_counts`), on the refit's validation sentences (``validation_counts``), or ``fixed``
    (training.evidence_threshold) with source fixed."""
    if source == "fixed":
        return {
            "value": float(fixed),
            "source": "fixed",
            "split": None,
            "rule": "The evidence threshold is training.evidence_threshold (thresholds.source: fixed); nothing is tuned.",
        }
    counts = oof_counts if source == "oof" else [validation_counts] if validation_counts else None
    check_evidence_source(source, counts)
    value, f1 = _best_on_grid(counts)
    return {
        "value": value,
        "source": source,
        "split": SPLIT_OF[source],
        "rule": EVIDENCE_RULE.format(where=EVIDENCE_WHERE[source]),
        "grid": list(counts[0]["grid"]),
        "f1": f1,
    }
