"""The final stage's test evaluation beyond the point metrics (evaluation report version 3): intervals beside
every test figure, few-positive flags, the baselines fitted on train+validation and scored on the same test posts
with paired differences, the co-best checkpoints' paired differences, the ReDSM5 paper's metrics beside its
published rows, calibration and the CV t-interval. Every block names its split.

Every bootstrap here draws ``evaluation.bootstrap`` resamples of the test posts with ``evaluation.seed``
(uncertainty.resample_indices), so all intervals and paired differences of one report share the same resamples.
The functions take arrays (gold labels, probabilities, thresholds) and return plain dicts; the stage reads files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflow_lib.learning.spans import evidence_metrics
from workflow_lib.learning.uncertainty import (
    FEW_POSITIVES,
    bootstrap_meta,
    calibration,
    criteria_intervals,
    cv_summary,
    few_positives,
    mean_intervals,
    paired_bootstrap_difference,
)

TEST = "test"
PAPER_DEFINITION = (
    "ten labels (nine symptoms + NO_SYMPTOMS: a post with no symptom); macro, micro and weighted F1 over the ten; "
    "exact match over the nine"
)
PUBLISHED_BASELINES = (
    {"model": "bert-base-uncased (512 tokens)", "macro_f1": 0.36, "micro_f1": 0.51},
    {"model": "TF-IDF + LinearSVC", "macro_f1": 0.28, "micro_f1": 0.39},
    {"model": "CNN", "macro_f1": 0.19, "micro_f1": 0.25},
    {"model": "LLaMA-3.2-1B", "macro_f1": 0.489, "micro_f1": 0.544, "note": "epoch chosen on the test split"},
)
PUBLISHED_NOTE = (
    "Bao, Pérez, Parapar (CIKM 2025), one random 80/20 split (train_test_split(test_size=0.2, random_state=42), "
    "297 test posts), threshold 0.5, no validation split. No official split exists: these rows are not on this "
    "report's test posts (data.split.protocol: holdout_80_20 reproduces their procedure)."
)
EVIDENCE_KEYS = ("exact_match", "token_f1", "char_f1", "null_span_accuracy")


@dataclass(frozen=True)
class Bootstrap:
    """The resamples every test interval of one report shares (config ``evaluation``)."""

    n_resamples: int
    seed: int

    @classmethod
    def of(cls, evaluation) -> Bootstrap:
        return cls(evaluation.bootstrap, evaluation.seed)

    @property
    def kwargs(self) -> dict:
        return {"n_resamples": self.n_resamples, "seed": self.seed}


@dataclass(frozen=True)
class Scored:
    """One model's test probabilities and the thresholds it decides at (a baseline: 0.5)."""

    name: str
    probs: Any  # (n_test, 9)
    thresholds: Sequence[float] | float


# ------------------------------------------------------------------------------------------------ intervals


def evidence_contributions(pred) -> tuple[dict[str, list[float]], list[int]] | None:
    """Per scored evidence row its exact_match, token_f1, char_f1 and null_span_accuracy (spans.evidence_metrics
    of that row alone) and the post (index) it belongs to; the rows the report's evidence metrics average over
    (rows with complete gold spans). None without evidence predictions."""
    ex = pred.examples
    if pred.spans is None or not ex.has_evidence or not ex.n_posts:
        return None
    rows_per_post = len(ex) // ex.n_posts
    keep = [i for i in range(len(ex)) if bool(ex.complete[i])]
    if not keep:
        return None
    values: dict[str, list[float]] = {k: [] for k in EVIDENCE_KEYS}
    for i in keep:
        one = evidence_metrics([ex.texts[i]], [ex.gold_spans[i]], [pred.spans[i]])
        for k in EVIDENCE_KEYS:
            values[k].append(float(one[k]))
    return values, [i // rows_per_post for i in keep]


def intervals_block(y, model: Scored, boot: Bootstrap, evidence=None) -> dict:
    """The report's ``intervals``: criteria_intervals at the thresholds used and at 0.5, and the evidence
    metrics' intervals (``evidence``: :func:`evidence_contributions`) when the model binds evidence."""
    out = {
        "split": TEST,
        "bootstrap": bootstrap_meta(boot.n_resamples, boot.seed),
        "at_tuned_thresholds": criteria_intervals(y, model.probs, model.thresholds, **boot.kwargs),
        "at_0.5": criteria_intervals(y, model.probs, 0.5, **boot.kwargs),
    }
    if evidence is not None:
        contributions, posts = evidence
        out["evidence"] = mean_intervals(contributions, posts, **boot.kwargs)
    return out


def few_positives_block(y) -> dict:
    """Per symptom its positive test posts and whether they are fewer than :data:`FEW_POSITIVES`."""
    return {"split": TEST, "min_positives": FEW_POSITIVES, "per_symptom": few_positives(y, min_positives=FEW_POSITIVES)}


def paired(y, first: Scored, second: Scored, boot: Bootstrap) -> dict:
    """first − second in macro-F1 on the test posts, each at its own thresholds (paired bootstrap)."""
    return paired_bootstrap_difference(
        y,
        first.probs,
        second.probs,
        thresholds_model=first.thresholds,
        thresholds_baseline=second.thresholds,
        metric="macro_f1",
        **boot.kwargs,
    )


# ------------------------------------------------------------------------------------------------ baselines


@dataclass(frozen=True)
class Baseline:
    name: str
    model: str
    fit: Callable  # (prepared, fit_ids, test_ids, seed) -> (n_test, 9) probabilities


def _fit_posts(prepared, fit_ids, test_ids, seed):
    from workflow_lib.learning.baseline import fit_predict_proba

    return fit_predict_proba(prepared.texts(fit_ids), prepared.labels(fit_ids), prepared.texts(test_ids), seed=seed)


def _fit_sentences(prepared, fit_ids, test_ids, seed):
    from workflow_lib.learning.baseline import fit_predict_proba_sentences

    return fit_predict_proba_sentences(
        prepared.sentences(fit_ids), prepared.sentence_labels(fit_ids), prepared.sentences(test_ids), seed=seed
    )


def baseline_models() -> list[Baseline]:
    """The baselines the final report holds the model against: post level, then sentence level."""
    from workflow_lib.learning import baseline as b

    return [Baseline(b.NAME, b.MODEL, _fit_posts), Baseline(b.SENTENCE_NAME, b.SENTENCE_MODEL, _fit_sentences)]


def reference_baseline(selection_report: Mapping, names: Sequence[str]) -> str:
    """The baseline the model is held against first: the best on CV in the selection report (chosen before the
    test split is read); the first of ``names`` when the selection compared none."""
    listed = [b for b in selection_report.get("baselines") or [] if b.get("name") in names]
    if not listed:
        return names[0]
    return max(listed, key=lambda b: (b["mean"], -names.index(b["name"])))["name"]


def baseline_entry(y, model: Scored, base: Baseline, probs, boot: Bootstrap, *, reference: bool) -> dict:
    """One baseline fitted on train+validation, decided at 0.5 on the test posts: its metrics with intervals,
    and the paired difference model − baseline in macro-F1."""
    from workflow_lib.learning.baseline import THRESHOLD
    from workflow_lib.learning.metrics import multilabel_metrics

    return {
        "name": base.name,
        "model": base.model,
        "reference": reference,
        "trained_on": ["train", "validation"],
        "split": TEST,
        "threshold": THRESHOLD,
        "metrics": multilabel_metrics(y, probs, THRESHOLD),
        "intervals": criteria_intervals(y, probs, THRESHOLD, **boot.kwargs),
        "paired_difference": paired(y, model, Scored(base.name, probs, THRESHOLD), boot),
    }


def baselines_block(
    prepared, fit_ids, test_ids, y, model: Scored, boot: Bootstrap, *, seed: int, reference: str
) -> tuple[list[dict], list[Scored]]:
    """Every baseline fitted on ``fit_ids`` (train+validation) and scored on ``test_ids``, the ``reference`` one
    first; with their test probabilities for the co-best comparisons."""
    models = sorted(baseline_models(), key=lambda b: b.name != reference)
    entries, scored = [], []
    for base in models:
        probs = base.fit(prepared, fit_ids, test_ids, seed)
        entries.append(baseline_entry(y, model, base, probs, boot, reference=base.name == reference))
        scored.append(Scored(base.name, probs, 0.5))
    return entries, scored


def co_best_differences(y, selected: Scored, co: Scored, baselines: Sequence[Scored], boot: Bootstrap) -> dict:
    """A co-best checkpoint's paired test differences: selected − co-best, co-best − the reference baseline
    (the first), and co-best − each baseline by name."""
    per = {b.name: paired(y, co, b, boot) for b in baselines}
    out = {"paired_difference_vs_selected": paired(y, selected, co, boot), "paired_difference_vs_baselines": per}
    if baselines:
        out["paired_difference_vs_baseline"] = per[baselines[0].name]
    return out


# ------------------------------------------------------------------------------------------------ paper, calibration, cv


def paper_block(y, model: Scored, intervals: Mapping) -> dict:
    """The ReDSM5 paper's definitions on the test posts at 0.5 and at the thresholds used, each with its
    intervals (criteria_intervals' "paper" block), beside the published rows (another split)."""
    from workflow_lib.learning.metrics import paper_metrics

    return {
        "definition": PAPER_DEFINITION,
        "split": TEST,
        "at_0.5": {**paper_metrics(y, model.probs, 0.5), "intervals": intervals["at_0.5"]["paper"]},
        "at_tuned_thresholds": {
            **paper_metrics(y, model.probs, model.thresholds),
            "intervals": intervals["at_tuned_thresholds"]["paper"],
        },
        "published_baselines": [dict(b) for b in PUBLISHED_BASELINES],
        "published_note": PUBLISHED_NOTE,
    }


def calibration_block(y, probs, refit_thresholds: Mapping) -> dict:
    """Calibration of the final model's test probabilities, and the refit trial's out-of-fold one when the
    refit computed it."""
    out = {"test": {**calibration(y, probs), "split": TEST}}
    oof = (refit_thresholds.get("oof") or {}).get("calibration")
    if oof:
        out["oof"] = dict(oof)
    return out


def cv_interval(fold_scores: Sequence) -> dict | None:
    """The selected trial's CV t-interval (uncertainty.cv_summary) over its scored folds; None without any."""
    scores = [s for s in fold_scores if s is not None]
    return cv_summary(scores) if scores else None


# ------------------------------------------------------------------------------------------------ tracking


def mlflow_metrics(report: Mapping) -> dict[str, float]:
    """The final run's metrics: test F1s with their interval bounds, the reference baseline and the paired
    difference, calibration, the paper's metrics (each baseline's macro-F1 too)."""
    iv = report["intervals"]["at_tuned_thresholds"]
    test = report["metrics"]["test"]
    out = {"test_accuracy": test["accuracy"]}
    for k in ("macro_f1", "micro_f1"):
        out[f"test_{k}"] = test[k]
        out[f"test_{k}_low"], out[f"test_{k}_high"] = iv[k]["low"], iv[k]["high"]
    for b in report["baselines"]:
        out[f"baseline_{b['name']}_test_macro_f1"] = b["metrics"]["macro_f1"]
    if report["baselines"]:
        ref = report["baselines"][0]
        pd = ref["paired_difference"]
        out["baseline_test_macro_f1"] = ref["metrics"]["macro_f1"]
        out["model_minus_baseline_macro_f1"] = pd["difference"]["estimate"]
        out["model_minus_baseline_macro_f1_low"] = pd["difference"]["low"]
        out["model_minus_baseline_macro_f1_high"] = pd["difference"]["high"]
        out["model_minus_baseline_macro_f1_p"] = pd["p_value"]
    cal = report["calibration"]["test"]
    out["test_brier"], out["test_ece"] = cal["brier"], cal["ece"]
    paper = report["paper"]
    for at, suffix in (("at_0.5", "_at_0.5"), ("at_tuned_thresholds", "")):
        for k in ("macro_f1", "micro_f1", "weighted_f1", "exact_match"):
            out[f"paper_{k}{suffix}"] = paper[at][k]
    if "evidence" in report["metrics"]:
        out.update({f"test_evidence_{k}": v for k, v in report["metrics"]["evidence"].items() if isinstance(v, float)})
    return {k: float(v) for k, v in out.items() if v is not None}
