"""The model-zoo preset end to end: one study over every head, pooling, loss, both input formats,
both multi-task modes, LoRA and augmentation, through refit, benchmark, selection and final."""

import json
from pathlib import Path

import pytest
from snakerun import run_snakemake

from workflow_lib.persistence.reports import validate_report

pytestmark = pytest.mark.integration


def _one(root: Path, pattern: str) -> dict:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return json.loads(found[0].read_text())


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("zoo")
    proc = run_snakemake(workdir, preset="zoo.yaml", timeout=1200)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return workdir / "results"


def test_zoo_study_samples_every_kind_of_model_and_finishes(zoo_run):
    summary = _one(zoo_run, "hpo/tiny-a/*/v1/study_summary.json")
    validate_report("study_summary", summary)
    assert summary["counts"]["complete"] == summary["n_trials"]
    params = [t["params"] for t in summary["trials"]]
    seen = {
        k: {p[k] for p in params if k in p}
        for k in (
            "criteria_from",
            "input_format",
            "multitask",
            "finetune",
            "augment",
            "long_posts",
            "window_aggregation",
        )
    }
    assert seen["criteria_from"] == {"post", "sentences"}
    assert seen["input_format"] == {"multi_label", "binary_pairs"}
    assert seen["long_posts"] == {"windows", "truncate"} and len(seen["window_aggregation"]) >= 2
    assert seen["multitask"] == {"independent", "coupled"}
    assert seen["finetune"] == {"full", "lora"}
    assert seen["augment"] - {"none"}, "no trial augmented its training folds"
    # conditional parameters only where they apply
    for p in params:
        sentences = p["criteria_from"] == "sentences"  # the span task and binary_pairs are for post-level trials
        assert ("sentence_aggregation" in p) == ("hard_negative_weight" in p) == sentences
        assert ("input_format" in p) == ("evidence_task" in p) == ("pooling" in p) == (not sentences)
        assert ("coupling" in p) == (p.get("multitask") == "coupled")
        assert ("lora_r" in p) == (p["finetune"] == "lora")
        assert ("loss_alpha" in p) == (p["loss"] == "hybrid")
        assert ("augment_prob" in p) == (p["augment"] != "none")
    # folds of augmented trials record the original and augmented sentences
    augmented = [json.loads(f.read_text()) for f in zoo_run.glob("hpo/tiny-a/*/v1/trials/*/fold_*/metrics.json")]
    changes = [c for m in augmented for c in m.get("augmentation", {}).get("changes", [])]
    assert changes and all(c["original"] != c["augmented"] for c in changes)
    for m in augmented:  # long-form posts: windows read them whole, truncation reports what it cut
        cov = m["input_coverage"]
        assert cov["n_longer_than_window"] > 0
        if cov["policy"] == "windows" and cov["max_windows"] is None:
            assert cov["windows_read"]["mean"] > 1 and cov["n_posts_capped"] == 0 and cov["n_evidence_beyond_read"] == 0
        else:
            assert cov["n_posts_capped"] > 0
        assert set(m["evidence_metrics"]) >= {"exact_match", "token_f1", "char_f1", "null_span_accuracy"}
        assert m["score"] == pytest.approx(0.5 * m["metrics"]["macro_f1"] + 0.5 * m["evidence_metrics"]["token_f1"])


def test_zoo_reports_carry_both_tasks(zoo_run):
    sel = _one(zoo_run, "selection/*/selection_report.json")
    validate_report("selection_report", sel)
    assert "evidence token_f1" in sel["objective"]
    assert all(c["cv_criteria_mean"] is not None for c in sel["candidates"])
    chosen = next(c for c in sel["candidates"] if c["selected"])  # (tied best trials each get a refit)
    refit = json.loads((zoo_run / "refit" / chosen["refit_key"] / "metrics.json").read_text())
    assert set(refit["validation"]["evidence"]) >= {"exact_match", "token_f1", "char_f1", "null_span_accuracy"}
    report = _one(zoo_run, "final/*/evaluation_report.json")
    validate_report("evaluation_report", report)
    # evidence from the span task, or from the sentence model's sentence scores
    assert report["task"]["evidence_task"] is (report["task"]["criteria_from"] == "post")
    ev = report["metrics"]["evidence"]
    assert ev["n"] >= report["n_test_posts"] and 0 <= ev["token_f1"] <= 1
    assert report["task"]["input_format"] == sel["selected"]["params"].get("input_format", "multi_label")
    bench = json.loads((zoo_run / "benchmark" / chosen["refit_key"] / "benchmark.json").read_text())
    assert bench["rows_per_post"] == (9 if report["task"]["input_format"] == "binary_pairs" else 1)
