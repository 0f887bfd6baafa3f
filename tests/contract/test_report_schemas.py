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
    return {
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


def _evaluation_report():
    return {
        "report_version": 2,
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
        "thresholds": {
            "source": "tuned on the validation split, refit model",
            "split": "validation",
            "values": dict.fromkeys(SYMPTOMS, 0.4),
        },
        "metrics": {"test": _metrics(0.4), "test_at_0.5": _metrics(0.5), "evidence": _evidence()},
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
