"""Contract tests of the report schemas: one valid example each, invalid ones fail naming the key."""

from __future__ import annotations

import copy
import json

import pytest

from workflow_lib.config import ConfigError, load_schema
from workflow_lib.persistence.reports import read_json, validate_report, write_json
from workflow_lib.symptoms import SYMPTOMS

K = "0123456789ab"  # a 12-hex key


def _coverage(split="test"):
    """examples.Examples.coverage() of a prediction under truncation, with its split."""
    return {
        "split": split,
        "policy": "truncate",
        "policy_text": "truncation: each post is cut to its first 128 tokens",
        "max_length": 128,
        "window_overlap": None,
        "max_windows": 1,
        "aggregation": None,
        "n_posts": 100,
        "n_longer_than_window": 40,
        "share_longer_than_window": 0.4,
        "windows_needed": {"mean": 1.8, "p50": 1.0, "p95": 4.0, "max": 9},
        "windows_read": {"mean": 1.0, "max": 1, "total": 100},
        "n_posts_capped": 40,
        "n_evidence_sentences": 60,
        "n_evidence_beyond_read": 9,
        "share_evidence_beyond_read": 0.15,
    }


def _cv_coverage():
    """hpo.pooled_coverage: a trial's folds together."""
    c = _coverage("cv heldout folds (train split)")
    c["windows_needed"] = {"mean": 1.8, "max": 9}
    c["windows_read"] = {"mean": 1.0, "max": 1}
    return {**c, "n_folds": 3}


def _study_summary():
    return {
        "backbone": "minilm",
        "study_key": K,
        "variant": 1,
        "data_key": "aaaaaaaaaaaa",
        "study_name": "minilm-0123456789ab-v1",
        "metric": "macro_f1",
        "direction": "maximize",
        "n_trials": 3,
        "n_folds": 3,
        "storage": "results/hpo/minilm/0123456789ab/v1/study.journal",
        "trials": [
            {
                "number": 0,
                "trial_key": "bbbbbbbbbbbb",
                "state": "COMPLETE",
                "params": {"learning_rate": 3e-5},
                "fold_scores": [0.5, 0.6, 0.55],
                "mean": 0.55,
                "std": 0.04,
                "reused_folds": 0,
                "duration_s": 12.5,
                "input_coverage": _cv_coverage(),
            },
            {
                "number": 1,
                "trial_key": "cccccccccccc",
                "state": "PRUNED",
                "params": {"learning_rate": 1e-3},
                "fold_scores": [0.1, None, None],
                "mean": None,
                "std": None,
                "reused_folds": 1,
                "duration_s": 3.0,
            },
            {
                "number": 2,
                "trial_key": None,
                "state": "RUNNING",
                "params": {},
                "fold_scores": [],
                "mean": None,
                "std": None,
                "reused_folds": 0,
                "duration_s": None,
            },
        ],
        "best_trial": {
            "number": 0,
            "trial_key": "bbbbbbbbbbbb",
            "params": {"learning_rate": 3e-5},
            "mean": 0.55,
            "std": 0.04,
            "fold_scores": [0.5, 0.6, 0.55],
        },
        "counts": {"complete": 1, "pruned": 1, "failed": 0, "running": 1},
        "code_version": "0.1.0+gabcdef1234",
        "split": "cv heldout folds (train split)",
    }


def _lat(p50=5.0):
    return {"mean": p50, "p50": p50, "p95": p50 * 1.2, "p99": p50 * 1.3, "min": p50 * 0.9, "max": p50 * 1.5}


def _benchmark():
    return {
        "benchmark_version": 1,
        "device": "cpu",
        "device_name": "x86_64",
        "threads": 2,
        "peak_memory_mb": 512.0,
        "parameters": 22_000_000,
        "library_versions": {"torch": "2.13.0"},
        "warmup": 3,
        "iterations": 20,
        "inputs": "synthetic",
        "rows_per_post": 1,
        "seed": 0,
        "results": [
            {"batch_size": 1, "seq_length": 128, "latency_ms": _lat(), "throughput_per_s": 190.0, "peak_rss_mb": 400.0}
        ],
        "seconds": 4.2,
        "code_version": "0.1.0",
        "created_at": "2025-01-01T00:00:00+00:00",
        "checkpoint": {"path": "results/refit/bbbbbbbbbbbb", "manifest_sha256": "f" * 64},
        "trial_key": "bbbbbbbbbbbb",
        "backbone": "minilm",
        "data_key": "aaaaaaaaaaaa",
        "study_key": K,
        "variant": 1,
    }


def _baseline():
    return {
        "name": "tfidf_logreg",
        "metric": "macro_f1",
        "fold_scores": [0.3, 0.35, 0.32],
        "mean": 0.3233,
        "std": 0.02,
        "split": "cv heldout folds (train split)",
    }


def _candidate(selected=True, rank=1):
    return {
        "backbone": "minilm",
        "study_key": K,
        "variant": 1,
        "trial_key": "bbbbbbbbbbbb",
        "cv_mean": 0.55,
        "cv_std": 0.04,
        "fold_scores": [0.5, 0.6, 0.55],
        "params": {"learning_rate": 3e-5},
        "latency_p95_ms": 6.0,
        "latency_measured_at": {"batch_size": 1, "seq_length": 128, "exact": True},
        "within_budget": True,
        "rank": rank,
        "selected": selected,
    }


def _selection_report():
    from workflow_lib.learning.uncertainty import corrected_resampled_ttest, cv_summary

    ab = corrected_resampled_ttest([0.5, 0.6, 0.55], [0.3, 0.35, 0.32], n_train=200.0, n_test=100.0)
    return {
        "baselines": [{**_baseline(), "cv_interval": cv_summary([0.3, 0.35, 0.32])}],
        "fold_sizes": {"n_train": 200.0, "n_test": 100.0, "source": "mean fold sizes of the data card"},
        "comparisons": [
            {
                "a": "bbbbbbbbbbbb",
                "b": "baseline:tfidf_logreg",
                "metric": "macro_f1",
                "fold_differences": [0.2, 0.25, 0.23],
                "test": ab,
            }
        ],
        "winner_lead": {
            "runner_up": None,
            "mean_difference": None,
            "p_one_sided": None,
            "more_than_noise": None,
            "vs_baseline": {
                "baseline": "tfidf_logreg",
                "mean_difference": ab["mean_difference"],
                "p_one_sided": ab["p_one_sided"],
                "more_than_noise": ab["p_one_sided"] < 0.05,
            },
            "text": "The selected minilm v1 trial bbbbbbbbbbbb is the only candidate within the rule.",
        },
        "metric": "macro_f1",
        "objective": "macro_f1",
        "co_best": [{"backbone": "minilm", "study_key": K, "variant": 2, "trial_key": "cccccccccccc", "cv_mean": 0.55}],
        "rule": {
            "latency_budget_ms": 50.0,
            "latency_batch_size": 1,
            "latency_seq_length": 128,
            "tie_tolerance": 0.0,
            "baseline": True,
        },
        "candidates": [
            _candidate(),
            {**_candidate(False, None), "trial_key": "dddddddddddd", "within_budget": False, "latency_p95_ms": 90.0},
        ],
        "selected": {
            "backbone": "minilm",
            "study_key": K,
            "variant": 1,
            "trial_key": "bbbbbbbbbbbb",
            "cv_mean": 0.55,
            "cv_std": 0.04,
            "latency_p95_ms": 6.0,
            "params": {"learning_rate": 3e-5},
        },
        "baseline": _baseline(),
        "reason": "best CV score within budget",
        "split": "cv heldout folds (train split)",
        "selection_key": "eeeeeeeeeeee",
        "lineage": {"data_key": "aaaaaaaaaaaa"},
        "code_version": "0.1.0",
        "html": "selection_report.html",
    }


def _metrics(threshold=0.5):
    per = {
        s: {
            "f1": 0.5,
            "precision": 0.5,
            "recall": 0.5,
            "pr_auc": 0.6,
            "support": 10,
            "threshold": threshold,
            "confusion_matrix": {"tn": 80, "fp": 5, "fn": 5, "tp": 5},
        }
        for s in SYMPTOMS
    }
    per[SYMPTOMS[-1]]["pr_auc"] = None  # no positives -> null is allowed
    return {
        "accuracy": 0.3,
        "label_accuracy": 0.9,
        "macro_f1": 0.5,
        "micro_f1": 0.55,
        "macro_precision": 0.5,
        "macro_recall": 0.5,
        "micro_precision": 0.55,
        "micro_recall": 0.55,
        "per_symptom": per,
    }


def _evidence():
    return {
        "exact_match": 0.4,
        "token_f1": 0.6,
        "char_f1": 0.62,
        "null_span_accuracy": 0.8,
        "n": 100,
        "n_null": 30,
        "n_incomplete_excluded": 2,
    }


def _v3_blocks(n=40, seed=0):
    """The blocks of report version 3, computed by the final stage's own functions on random test arrays and a
    random out-of-fold set (pipeline/thresholds.py, pipeline/evaluation.py)."""
    import numpy as np

    from workflow_lib.pipeline import evaluation as ev
    from workflow_lib.pipeline.thresholds import OutOfFold, thresholds_block

    rng = np.random.default_rng(seed)

    def arrays(rows):
        y = (rng.random((rows, len(SYMPTOMS))) < 0.3).astype(int)
        return y, np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, y.shape), 0, 1)

    y_oof, p_oof = arrays(80)
    thresholds = thresholds_block("oof", oof=OutOfFold([f"p{i}" for i in range(80)], y_oof, p_oof, []))
    y, p = arrays(n)
    model = ev.Scored("model", p, [thresholds["values"][s] for s in SYMPTOMS])
    boot = ev.Bootstrap(100, 0)
    evidence = ({k: list(rng.random(n)) for k in ev.EVIDENCE_KEYS}, list(range(n)))
    intervals = ev.intervals_block(y, model, boot, evidence)
    posts, sentences = ev.baseline_models()
    baselines = [
        ev.baseline_entry(y, model, sentences, rng.random(p.shape), boot, reference=True),
        ev.baseline_entry(y, model, posts, rng.random(p.shape), boot, reference=False),
    ]
    co = ev.co_best_differences(
        y, model, ev.Scored("c", rng.random(p.shape), 0.5), [ev.Scored(b["name"], p, 0.5) for b in baselines], boot
    )
    return {
        "thresholds": thresholds,
        "intervals": intervals,
        "few_positives": ev.few_positives_block(y),
        "baselines": baselines,
        "paper": ev.paper_block(y, model, intervals),
        "calibration": ev.calibration_block(y, p, thresholds),
        "cv_interval": ev.cv_interval([0.5, 0.6, 0.55]),
        "co_best": co,
    }


def _evaluation_report():
    blocks = _v3_blocks()
    return {
        "report_version": 3,
        "final_key": "ffffffffffff",
        "split": "test",
        "n_test_posts": 100,
        "task": {
            "input_format": "multi_label",
            "evidence_task": True,
            "objective": {
                "criteria_weight": 0.5,
                "evidence_weight": 0.5,
                "evidence_metric": "token_f1",
                "metric": "macro_f1",
            },
        },
        "co_best": [
            {
                "backbone": "minilm",
                "study_key": K,
                "variant": 2,
                "trial_key": "cccccccccccc",
                "cv_mean": 0.55,
                "checkpoint": {
                    "path": "results/refit/cccccccccccc/model",
                    "manifest_sha256": "b" * 64,
                    "stage": "refit (train split only)",
                },
                "metrics": {"test": _metrics(0.4), "test_at_0.5": _metrics(0.5), "evidence": _evidence()},
                **blocks["co_best"],
            }
        ],
        "selected": {
            "backbone": "minilm",
            "trial_key": "bbbbbbbbbbbb",
            "study_key": K,
            "variant": 1,
            "selection_key": "eeeeeeeeeeee",
            "params": {"learning_rate": 3e-5},
        },
        "training": {"trained_on": ["train", "validation"], "n_posts": 800, "epochs": 3, "seconds": 100.0},
        "thresholds": blocks["thresholds"],
        "metrics": {"test": _metrics(0.4), "test_at_0.5": _metrics(0.5), "evidence": _evidence()},
        "intervals": blocks["intervals"],
        "few_positives": blocks["few_positives"],
        "baselines": blocks["baselines"],
        "paper": blocks["paper"],
        "calibration": blocks["calibration"],
        "cv": {
            "split": "cv heldout folds (train split)",
            "metric": "macro_f1",
            "objective": "macro_f1",
            "mean": 0.55,
            "std": 0.04,
            "fold_scores": [0.5, 0.6, 0.55],
            "interval": blocks["cv_interval"],
        },
        "lineage": {
            "data_key": "aaaaaaaaaaaa",
            "study_key": K,
            "trial_key": "bbbbbbbbbbbb",
            "selection_key": "eeeeeeeeeeee",
            "final_key": "ffffffffffff",
            "variant": 1,
            "backbone": "minilm",
            "code_version": "0.1.0",
        },
        "checkpoint": {"path": "results/final/ffffffffffff/model", "manifest_sha256": "a" * 64},
        "library_versions": {"torch": "2.13.0"},
        "created_at": "2025-01-01T00:00:00+00:00",
        "input_coverage": _coverage(),
    }


VALID = {
    "study_summary": _study_summary,
    "benchmark": _benchmark,
    "baseline": _baseline,
    "selection_report": _selection_report,
    "evaluation_report": _evaluation_report,
}


def _set(obj, path, value):
    *head, last = path
    for p in head:
        obj = obj[p]
    obj[last] = value


def _del(obj, path):
    *head, last = path
    for p in head:
        obj = obj[p]
    del obj[last]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_example_passes(kind):
    obj = VALID[kind]()
    assert validate_report(kind, obj) is obj


# (kind, edit, path, value-or-DELETE, words that must appear in the message)
DELETE = object()
INVALID = [
    # study_summary
    ("study_summary", ("backbone",), DELETE, ["backbone", "required"]),
    ("study_summary", ("variant",), 0, ["variant", "out of range"]),
    ("study_summary", ("n_trials",), "3", ["n_trials", "expected integer"]),
    ("study_summary", ("trials", 0, "state"), "DONE", ["trials.0.state", "DONE"]),
    ("study_summary", ("trials", 0, "mean"), 1.5, ["trials.0.mean", "out of range"]),
    ("study_summary", ("trials", 0, "fold_scores", 1), -0.1, ["trials.0.fold_scores.1", "out of range"]),
    ("study_summary", ("trials", 1, "reused_folds"), DELETE, ["trials.1", "reused_folds"]),
    ("study_summary", ("direction",), "minimize", ["direction", "maximize"]),
    ("study_summary", ("best_trial", "mean"), None, ["best_trial.mean"]),
    ("study_summary", ("counts", "pruned"), DELETE, ["counts", "pruned"]),
    ("study_summary", ("split",), "test", ["split"]),
    ("study_summary", ("extra_field",), 1, ["extra_field", "unknown key"]),
    ("study_summary", ("study_key",), "NOT-A-KEY", ["study_key"]),
    (
        "study_summary",
        ("trials", 0, "input_coverage", "share_longer_than_window"),
        1.2,
        ["trials.0.input_coverage.share_longer_than_window", "out of range"],
    ),
    ("study_summary", ("trials", 0, "input_coverage", "n_folds"), DELETE, ["trials.0.input_coverage", "n_folds"]),
    ("study_summary", ("trials", 0, "input_coverage", "split"), "test", ["trials.0.input_coverage.split"]),
    # benchmark
    ("benchmark", ("results",), DELETE, ["results", "required"]),
    ("benchmark", ("results",), [], ["results", "at least 1"]),
    ("benchmark", ("results", 0, "latency_ms", "p95"), DELETE, ["results.0.latency_ms", "p95"]),
    ("benchmark", ("results", 0, "latency_ms", "p50"), -1.0, ["results.0.latency_ms.p50", "out of range"]),
    ("benchmark", ("results", 0, "throughput_per_s"), 0, ["results.0.throughput_per_s", "out of range"]),
    ("benchmark", ("threads",), "2", ["threads", "expected integer"]),
    ("benchmark", ("checkpoint", "manifest_sha256"), "xyz", ["checkpoint.manifest_sha256"]),
    ("benchmark", ("variant",), 0, ["variant", "out of range"]),
    ("benchmark", ("surprise",), True, ["surprise", "unknown key"]),
    # baseline
    ("baseline", ("mean",), 1.2, ["mean", "out of range"]),
    ("baseline", ("fold_scores",), DELETE, ["fold_scores", "required"]),
    # selection_report
    ("selection_report", ("selected",), DELETE, ["selected", "required"]),
    ("selection_report", ("candidates", 0, "cv_mean"), 1.01, ["candidates.0.cv_mean", "out of range"]),
    ("selection_report", ("candidates", 0, "rank"), 0, ["candidates.0.rank", "out of range"]),
    ("selection_report", ("candidates", 1, "within_budget"), "no", ["candidates.1.within_budget", "boolean"]),
    ("selection_report", ("candidates", 0, "benchmark"), {}, ["candidates.0", "benchmark", "unknown key"]),
    ("selection_report", ("rule", "latency_budget_ms"), 0, ["rule.latency_budget_ms", "out of range"]),
    ("selection_report", ("baseline", "std"), -0.1, ["baseline.std", "out of range"]),
    ("selection_report", ("selection_key",), DELETE, ["selection_key", "required"]),
    ("selection_report", ("html",), DELETE, ["html", "required"]),
    # evaluation_report
    (
        "evaluation_report",
        ("metrics", "test", "per_symptom", "FATIGUE"),
        DELETE,
        ["metrics.test.per_symptom", "FATIGUE"],
    ),
    (
        "evaluation_report",
        ("metrics", "test_at_0.5", "per_symptom", "NOT_A_SYMPTOM"),
        {},
        ["metrics.test_at_0.5.per_symptom", "NOT_A_SYMPTOM", "unknown key"],
    ),
    ("evaluation_report", ("thresholds", "values", "ANHEDONIA"), DELETE, ["thresholds.values", "ANHEDONIA"]),
    (
        "evaluation_report",
        ("thresholds", "values", "SLEEP_ISSUES"),
        1.5,
        ["thresholds.values.SLEEP_ISSUES", "out of range"],
    ),
    ("evaluation_report", ("metrics", "test", "macro_f1"), 2.0, ["metrics.test.macro_f1", "out of range"]),
    (
        "evaluation_report",
        ("metrics", "test", "per_symptom", "ANHEDONIA", "confusion_matrix", "tp"),
        -1,
        ["per_symptom.ANHEDONIA.confusion_matrix.tp", "out of range"],
    ),
    (
        "evaluation_report",
        ("metrics", "test", "per_symptom", "ANHEDONIA", "support"),
        1.5,
        ["per_symptom.ANHEDONIA.support", "expected integer"],
    ),
    ("evaluation_report", ("split",), "validation", ["split", "test"]),
    ("evaluation_report", ("training", "trained_on"), ["train"], ["training.trained_on"]),
    ("evaluation_report", ("thresholds", "split"), "test", ["thresholds.split"]),
    ("evaluation_report", ("lineage", "selection_key"), DELETE, ["lineage", "selection_key"]),
    ("evaluation_report", ("checkpoint", "manifest_sha256"), DELETE, ["checkpoint", "manifest_sha256"]),
    ("evaluation_report", ("report_version",), 1, ["report_version"]),
    ("evaluation_report", ("metrics", "evidence", "token_f1"), 1.2, ["metrics.evidence.token_f1", "out of range"]),
    ("evaluation_report", ("metrics", "evidence", "n_null"), DELETE, ["metrics.evidence", "n_null"]),
    ("evaluation_report", ("co_best", 0, "checkpoint"), DELETE, ["co_best.0", "checkpoint"]),
    (
        "evaluation_report",
        ("co_best", 0, "metrics", "evidence", "exact_match"),
        -1,
        ["co_best.0.metrics.evidence.exact_match", "out of range"],
    ),
    ("evaluation_report", ("task", "input_format"), "pairs", ["task.input_format", "pairs"]),
    ("evaluation_report", ("co_best",), DELETE, ["co_best", "required"]),
    (
        "evaluation_report",
        ("input_coverage", "n_evidence_beyond_read"),
        -1,
        ["input_coverage.n_evidence_beyond_read", "out of range"],
    ),
    (
        "evaluation_report",
        ("input_coverage", "windows_needed", "p95"),
        DELETE,
        ["input_coverage.windows_needed", "p95"],
    ),
    ("evaluation_report", ("input_coverage", "policy"), "chunks", ["input_coverage.policy", "chunks"]),
    (
        "evaluation_report",
        ("co_best", 0, "input_coverage"),
        {"policy": "truncate"},
        ["co_best.0.input_coverage", "n_posts"],
    ),
    ("selection_report", ("co_best", 0, "trial_key"), "xyz", ["co_best.0.trial_key"]),
    # report version 3: every new block names its split and holds its figures' intervals
    ("evaluation_report", ("report_version",), 2, ["report_version"]),
    ("evaluation_report", ("thresholds", "source"), "tuned", ["thresholds.source", "tuned"]),
    ("evaluation_report", ("thresholds", "rule"), DELETE, ["thresholds", "rule"]),
    ("evaluation_report", ("thresholds", "oof", "split"), "test", ["thresholds.oof.split"]),
    ("evaluation_report", ("thresholds", "per_symptom", "FATIGUE", "adopted"), "no", ["per_symptom.FATIGUE.adopted"]),
    ("evaluation_report", ("intervals",), DELETE, ["intervals", "required"]),
    ("evaluation_report", ("intervals", "split"), "validation", ["intervals.split"]),
    (
        "evaluation_report",
        ("intervals", "at_0.5", "per_symptom", "FATIGUE"),
        DELETE,
        ["intervals.at_0.5.per_symptom", "FATIGUE"],
    ),
    ("evaluation_report", ("intervals", "at_tuned_thresholds", "macro_f1", "low"), DELETE, ["macro_f1", "low"]),
    ("evaluation_report", ("intervals", "evidence", "token_f1"), DELETE, ["intervals.evidence", "token_f1"]),
    ("evaluation_report", ("few_positives", "split"), "train", ["few_positives.split"]),
    ("evaluation_report", ("baselines", 0, "trained_on"), ["train"], ["baselines.0.trained_on"]),
    ("evaluation_report", ("baselines", 0, "split"), "validation", ["baselines.0.split"]),
    (
        "evaluation_report",
        ("baselines", 0, "paired_difference", "p_value"),
        0,
        ["baselines.0.paired_difference.p_value", "out of range"],
    ),
    ("evaluation_report", ("baselines", 0, "name"), "svm", ["baselines.0.name", "svm"]),
    ("evaluation_report", ("paper", "split"), "validation", ["paper.split"]),
    ("evaluation_report", ("paper", "at_0.5", "intervals"), DELETE, ["paper.at_0.5", "intervals"]),
    ("evaluation_report", ("paper", "published_note"), DELETE, ["paper", "published_note"]),
    ("evaluation_report", ("calibration", "test", "ece"), 1.5, ["calibration.test", "ece"]),
    ("evaluation_report", ("calibration", "test"), DELETE, ["calibration", "test"]),
    (
        "evaluation_report",
        ("co_best", 0, "paired_difference_vs_selected", "difference"),
        DELETE,
        ["co_best.0.paired_difference_vs_selected", "difference"],
    ),
    ("selection_report", ("comparisons", 0, "b"), "xyz", ["comparisons.0.b"]),
    ("selection_report", ("comparisons", 0, "test", "p_one_sided"), 1.5, ["comparisons.0.test.p_one_sided"]),
    ("selection_report", ("winner_lead", "text"), DELETE, ["winner_lead", "text"]),
    ("selection_report", ("winner_lead", "more_than_noise"), "yes", ["winner_lead.more_than_noise"]),
    ("selection_report", ("baselines", 0, "cv_interval", "sd"), DELETE, ["baselines.0.cv_interval"]),
    ("selection_report", ("winner_lead",), DELETE, ["winner_lead", "required"]),
    ("benchmark", ("rows_per_post",), 0, ["rows_per_post", "out of range"]),
]


@pytest.mark.parametrize(
    "kind,path,value,words", INVALID, ids=[f"{k}-{'.'.join(map(str, p))}" for k, p, _v, _w in INVALID]
)
def test_invalid_example_fails_naming_the_key(kind, path, value, words):
    obj = VALID[kind]()
    if value is DELETE:
        _del(obj, path)
    else:
        _set(obj, path, value)
    with pytest.raises(ConfigError) as exc:
        validate_report(kind, obj)
    msg = str(exc.value)
    assert f"invalid {kind} report" in msg
    for w in words:
        assert w in msg, f"{w!r} not in:\n{msg}"


def test_evaluation_schema_lists_exactly_the_nine_symptoms():
    schema = load_schema("evaluation_report")
    per = schema["$defs"]["multilabel_metrics"]["properties"]["per_symptom"]
    assert per["required"] == list(SYMPTOMS)
    assert list(per["properties"]) == list(SYMPTOMS)
    assert per["additionalProperties"] is False
    assert schema["$defs"]["thresholds"]["required"] == list(SYMPTOMS)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown report kind 'nope'"):
        validate_report("nope", {})


def test_write_json_validates_and_writes_atomically(tmp_path):
    import numpy as np

    path = tmp_path / "sub" / "benchmark.json"
    obj = _benchmark()
    obj["parameters"] = np.int64(5)
    obj["peak_memory_mb"] = np.float32(1.5)
    write_json(path, obj, kind="benchmark")
    back = read_json(path, kind="benchmark")
    assert back["parameters"] == 5 and back["peak_memory_mb"] == 1.5
    text = path.read_text()
    assert text.endswith("\n") and text.index('"backbone"') < text.index('"benchmark_version"')  # sorted keys
    assert json.loads(text) == back
    assert [p.name for p in path.parent.iterdir()] == ["benchmark.json"]  # no temp file left behind

    # an invalid report is never written, and an existing good one is untouched
    bad = copy.deepcopy(obj)
    del bad["results"]
    with pytest.raises(ConfigError, match="results"):
        write_json(path, bad, kind="benchmark")
    assert read_json(path)["parameters"] == 5
    assert [p.name for p in path.parent.iterdir()] == ["benchmark.json"]


def test_write_json_turns_nan_into_null_then_the_schema_decides(tmp_path):
    obj = _study_summary()
    obj["trials"][1]["std"] = float("nan")  # nullable: fine
    write_json(tmp_path / "s.json", obj, kind="study_summary")
    assert read_json(tmp_path / "s.json")["trials"][1]["std"] is None
    obj["best_trial"]["mean"] = float("nan")  # required number: rejected, naming the key
    with pytest.raises(ConfigError, match="best_trial.mean"):
        write_json(tmp_path / "s2.json", obj, kind="study_summary")
    assert not (tmp_path / "s2.json").exists()


def test_read_json_names_a_corrupt_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        read_json(p)


def test_metrics_module_output_fits_the_evaluation_schema():
    """The model layer's multilabel_metrics (n_samples, macro_pr_auc included) is what the report embeds."""
    import numpy as np

    from workflow_lib.learning import metrics

    rng = np.random.default_rng(0)
    y = (rng.random((40, 9)) < 0.3).astype(int)
    y[:, -1] = 0  # a symptom without positives: pr_auc null
    p = rng.random((40, 9))
    rep = _evaluation_report()
    rep["metrics"] = {
        "test": metrics.multilabel_metrics(y, p, [0.4] * 9),
        "test_at_0.5": metrics.multilabel_metrics(y, p, 0.5),
    }
    validate_report("evaluation_report", rep)


def test_trial_without_key_yet_is_accepted():
    obj = _study_summary()
    obj["trials"][2]["trial_key"] = ""
    obj["trials"][2]["state"] = "WAITING"
    validate_report("study_summary", obj)


@pytest.mark.parametrize("source", ["oof", "validation", "fixed"])
def test_every_threshold_source_writes_a_block_the_evaluation_schema_accepts(source):
    """The refit's thresholds block (pipeline/thresholds.py), for each thresholds.source, as the report embeds it."""
    import numpy as np

    from workflow_lib.pipeline.thresholds import OutOfFold, thresholds_block

    rng = np.random.default_rng(1)
    y = (rng.random((50, len(SYMPTOMS))) < 0.3).astype(int)
    p = np.clip(0.2 + 0.5 * y + rng.normal(0, 0.2, y.shape), 0, 1)
    oof = OutOfFold([f"p{i}" for i in range(50)], y, p, []) if source != "fixed" else None
    block = thresholds_block(source, oof=oof, y_val=y[:20], val_probs=p[:20])
    rep = _evaluation_report()
    rep["thresholds"] = block
    validate_report("evaluation_report", rep)
    assert ("oof" in block) is (oof is not None)
    rep["thresholds"] = {**block, "split": "test"}  # thresholds are never chosen on the test split
    with pytest.raises(ConfigError, match="thresholds.split"):
        validate_report("evaluation_report", rep)


def test_the_selection_functions_output_fits_the_selection_schema():
    """select() with baselines and fold sizes (what the selection stage writes) validates; every comparison holds
    the corrected t-test."""
    from workflow_lib.config import Selection
    from workflow_lib.search.selection import select

    def cand(key, scores):
        return {
            "backbone": "minilm",
            "study_key": K,
            "variant": 1,
            "trial_key": key,
            "cv_mean": sum(scores) / len(scores),
            "cv_std": 0.01,
            "fold_scores": scores,
            "params": {},
        }

    report = select(
        [cand("a" * 12, [0.5, 0.6, 0.58]), cand("b" * 12, [0.4, 0.45, 0.5])],
        Selection.resolve({}),
        metric="macro_f1",
        baselines=[_baseline(), {**_baseline(), "name": "tfidf_logreg_sentences", "mean": 0.4}],
        fold_sizes=(200.0, 100.0),
    )
    report.update(selection_key=K, lineage={}, code_version="0.1.0", html="selection_report.html")
    validate_report("selection_report", report)
    assert len(report["comparisons"]) == 1 + 2 * 2 and report["winner_lead"]["runner_up"] == "b" * 12
