"""The final report's blocks beyond the point metrics (pipeline/evaluation.py): each present, naming its split,
computed on the same bootstrap resamples; the baselines fitted on train+validation and scored on the test posts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from workflow_lib.config import Data
from workflow_lib.config.sections import Evaluation
from workflow_lib.learning.baseline import NAME, SENTENCE_NAME, fit_predict_proba, fit_predict_proba_sentences
from workflow_lib.learning.metrics import multilabel_metrics, paper_metrics
from workflow_lib.learning.spans import evidence_metrics
from workflow_lib.learning.uncertainty import (
    FEW_POSITIVES,
    bootstrap_meta,
    criteria_intervals,
    paired_bootstrap_difference,
)
from workflow_lib.pipeline import evaluation as ev
from workflow_lib.symptoms import SYMPTOMS

BOOT = ev.Bootstrap(200, 3)
OOF = "cv heldout folds (train split)"


def _arrays(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(SYMPTOMS))) < 0.3).astype(int)
    y[:, -1] = 0
    y[:2, -1] = 1  # a symptom with 2 positives: flagged
    p = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, y.shape), 0, 1)
    return y, p


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from workflow_lib.data.prepare import load_prepared, prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare(Data.resolve({"source": "embedded", "embedded": {"n_posts": 60, "seed": 5}, "n_folds": 2}), out, "k")
    return load_prepared(out)


def test_bootstrap_comes_from_the_evaluation_section():
    assert ev.Bootstrap.of(Evaluation.resolve({"bootstrap": 500, "seed": 4})) == ev.Bootstrap(500, 4)
    assert ev.Bootstrap.of(Evaluation.resolve({})) == ev.Bootstrap(2000, 0)  # the schema's defaults


def test_intervals_at_the_thresholds_used_and_at_half_name_the_test_split():
    y, p = _arrays()
    thr = [0.4] * len(SYMPTOMS)
    block = ev.intervals_block(y, ev.Scored("model", p, thr), BOOT)
    assert block["split"] == "test" and block["bootstrap"] == bootstrap_meta(200, 3)
    assert block["at_tuned_thresholds"] == criteria_intervals(y, p, thr, n_resamples=200, seed=3)
    assert block["at_0.5"] == criteria_intervals(y, p, 0.5, n_resamples=200, seed=3)
    assert block["at_tuned_thresholds"]["thresholds"] == thr
    assert block["at_tuned_thresholds"]["macro_f1"]["estimate"] == pytest.approx(
        multilabel_metrics(y, p, thr)["macro_f1"]
    )
    assert "evidence" not in block
    few = ev.few_positives_block(y)
    assert few["split"] == "test" and few["min_positives"] == FEW_POSITIVES
    assert few["per_symptom"][SYMPTOMS[-1]] == {"n_positives": 2, "few_positives": True}


@dataclass
class _Examples:
    texts: list
    gold_spans: list
    complete: list
    n_posts: int
    has_evidence: bool = True

    def __len__(self):
        return len(self.texts)


@dataclass
class _Prediction:
    examples: _Examples
    spans: list | None = field(default=None)


def test_evidence_intervals_average_the_rows_the_evidence_metrics_average():
    texts = ["I feel sad today. Nothing else.", "Tired all day. Slept well.", "x y z", "Worthless, I said."]
    gold = [[(0, 17)], [(0, 14)], [(0, 1)], []]
    pred = [[(0, 17)], [(15, 26)], [], [(0, 10)]]
    ex = _Examples(texts, gold, [True, True, False, True], n_posts=2)  # two rows per post; row 2 incomplete
    contributions, posts = ev.evidence_contributions(_Prediction(ex, pred))
    assert posts == [0, 0, 1]
    expected = evidence_metrics(
        [texts[i] for i in (0, 1, 3)], [gold[i] for i in (0, 1, 3)], [pred[i] for i in (0, 1, 3)]
    )
    for k in ev.EVIDENCE_KEYS:
        assert np.mean(contributions[k]) == pytest.approx(expected[k])
    y, p = _arrays(2)
    block = ev.intervals_block(y, ev.Scored("model", p, 0.5), BOOT, (contributions, posts))
    assert block["evidence"]["n_examples"] == 3 and block["evidence"]["n_posts"] == 2
    assert block["evidence"]["token_f1"]["estimate"] == pytest.approx(expected["token_f1"])
    assert ev.evidence_contributions(_Prediction(ex, None)) is None  # no evidence predictions


def test_baselines_fit_on_train_and_validation_and_score_the_test_posts(prepared):
    fit_ids = prepared.splits["train"] + prepared.splits["validation"]
    test_ids = prepared.splits["test"]
    y = prepared.labels(test_ids)
    p_posts = fit_predict_proba(prepared.texts(fit_ids), prepared.labels(fit_ids), prepared.texts(test_ids), seed=42)
    p_sent = fit_predict_proba_sentences(
        prepared.sentences(fit_ids), prepared.sentence_labels(fit_ids), prepared.sentences(test_ids), seed=42
    )
    model = ev.Scored("model", p_sent, 0.5)  # a "model" equal to the sentence baseline: difference 0, p = 1
    entries, scored = ev.baselines_block(prepared, fit_ids, test_ids, y, model, BOOT, seed=42, reference=SENTENCE_NAME)
    assert [e["name"] for e in entries] == [SENTENCE_NAME, NAME] and [s.name for s in scored] == [SENTENCE_NAME, NAME]
    assert [e["reference"] for e in entries] == [True, False]
    sent, post = entries
    for e in entries:
        assert e["trained_on"] == ["train", "validation"] and e["split"] == "test" and e["threshold"] == 0.5
    assert np.allclose(scored[1].probs, p_posts) and np.allclose(scored[0].probs, p_sent)
    assert post["metrics"] == multilabel_metrics(y, p_posts, 0.5)
    assert post["intervals"] == criteria_intervals(y, p_posts, 0.5, n_resamples=200, seed=3)
    assert post["paired_difference"] == paired_bootstrap_difference(y, p_sent, p_posts, n_resamples=200, seed=3)
    assert sent["paired_difference"]["difference"]["estimate"] == 0 and sent["paired_difference"]["p_value"] == 1

    # co-best: selected - co-best, and co-best - each baseline (the reference one first)
    co = ev.Scored("c" * 12, p_posts, 0.5)
    diffs = ev.co_best_differences(y, model, co, scored, BOOT)
    assert diffs["paired_difference_vs_selected"] == paired_bootstrap_difference(
        y, p_sent, p_posts, n_resamples=200, seed=3
    )
    assert set(diffs["paired_difference_vs_baselines"]) == {NAME, SENTENCE_NAME}
    assert diffs["paired_difference_vs_baseline"] == diffs["paired_difference_vs_baselines"][SENTENCE_NAME]
    assert diffs["paired_difference_vs_baselines"][NAME]["difference"]["estimate"] == 0


def test_the_reference_baseline_is_the_best_on_cv_chosen_before_the_test_read():
    names = [NAME, SENTENCE_NAME]
    sel = {"baselines": [{"name": NAME, "mean": 0.3}, {"name": SENTENCE_NAME, "mean": 0.8}]}
    assert ev.reference_baseline(sel, names) == SENTENCE_NAME
    sel = {"baselines": [{"name": NAME, "mean": 0.5}, {"name": SENTENCE_NAME, "mean": 0.5}]}
    assert ev.reference_baseline(sel, names) == NAME  # a tie: the first listed
    assert ev.reference_baseline({"baselines": []}, names) == NAME  # selection compared none
    assert ev.reference_baseline({}, names) == NAME


def test_paper_block_holds_the_papers_definitions_and_published_rows():
    y, p = _arrays()
    thr = [0.45] * len(SYMPTOMS)
    model = ev.Scored("model", p, thr)
    intervals = ev.intervals_block(y, model, BOOT)
    paper = ev.paper_block(y, model, intervals)
    assert paper["split"] == "test" and paper["definition"].startswith("ten labels (nine symptoms + NO_SYMPTOMS")
    assert paper["at_0.5"] == {**paper_metrics(y, p, 0.5), "intervals": intervals["at_0.5"]["paper"]}
    assert paper["at_tuned_thresholds"]["macro_f1"] == paper_metrics(y, p, thr)["macro_f1"]
    assert paper["at_tuned_thresholds"]["intervals"] == intervals["at_tuned_thresholds"]["paper"]
    assert [r["model"] for r in paper["published_baselines"]] == [
        "bert-base-uncased (512 tokens)",
        "TF-IDF + LinearSVC",
        "CNN",
        "LLaMA-3.2-1B",
    ]
    assert paper["published_baselines"][3] == {
        "model": "LLaMA-3.2-1B",
        "macro_f1": 0.489,
        "micro_f1": 0.544,
        "note": "epoch chosen on the test split",
    }
    assert "297 test posts" in paper["published_note"] and "holdout_80_20" in paper["published_note"]


def test_calibration_of_the_test_split_and_of_the_refits_out_of_fold_predictions():
    y, p = _arrays()
    oof = {"split": OOF, "brier": 0.1, "ece": 0.05, "n_bins": 10, "per_symptom": {}}
    cal = ev.calibration_block(y, p, {"oof": {"calibration": oof}})
    assert cal["test"]["split"] == "test" and cal["oof"] == oof
    assert "oof" not in ev.calibration_block(y, p, {"source": "fixed", "values": {}})
    assert ev.cv_interval([0.5, None, 0.6])["k"] == 2 and ev.cv_interval([None]) is None


def test_mlflow_metrics_name_the_contracts_figures():
    y, p = _arrays()
    model = ev.Scored("model", p, 0.5)
    intervals = ev.intervals_block(y, model, BOOT)
    base = ev.baseline_entry(y, model, ev.baseline_models()[0], np.clip(p[::-1], 0, 1), BOOT, reference=True)
    report = {
        "metrics": {"test": multilabel_metrics(y, p, 0.5)},
        "intervals": intervals,
        "baselines": [base],
        "calibration": ev.calibration_block(y, p, {}),
        "paper": ev.paper_block(y, model, intervals),
    }
    m = ev.mlflow_metrics(report)
    for name in (
        "test_macro_f1",
        "test_macro_f1_low",
        "test_macro_f1_high",
        "test_micro_f1",
        "test_micro_f1_low",
        "test_micro_f1_high",
        "baseline_test_macro_f1",
        "model_minus_baseline_macro_f1",
        "model_minus_baseline_macro_f1_low",
        "model_minus_baseline_macro_f1_high",
        "model_minus_baseline_macro_f1_p",
        "test_brier",
        "test_ece",
        "paper_macro_f1_at_0.5",
        "paper_micro_f1_at_0.5",
        "paper_macro_f1",
        f"baseline_{NAME}_test_macro_f1",
    ):
        assert isinstance(m[name], float), name
    assert m["model_minus_baseline_macro_f1"] == pytest.approx(m["test_macro_f1"] - m["baseline_test_macro_f1"])
    assert m["test_macro_f1_low"] <= m["test_macro_f1"] <= m["test_macro_f1_high"]
