"""The smoke preset through real snakemake: every artifact, a no-op rerun, kill-and-resume."""

import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from snakerun import run_snakemake

from workflow_lib.persistence.reports import validate_report
from workflow_lib.symptoms import SYMPTOMS

pytestmark = pytest.mark.integration
N_TRIALS, N_FOLDS, BACKBONES = 3, 2, ("tiny-a", "tiny-b")
OOF = "cv heldout folds (train split)"


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


def _load(p):
    return json.loads(Path(p).read_text())


def _fold_runs(db: Path) -> Counter:
    con = sqlite3.connect(db)
    rows = con.execute(
        "select r.run_uuid, "
        " (select value from tags t where t.run_uuid=r.run_uuid and t.key='pipeline.trial_key'),"
        " (select value from tags t where t.run_uuid=r.run_uuid and t.key='pipeline.fold'),"
        " (select value from tags t where t.run_uuid=r.run_uuid and t.key='pipeline.study_key')"
        " from runs r join tags s on s.run_uuid=r.run_uuid and s.key='pipeline.stage' and s.value='fold'"
    ).fetchall()
    con.close()
    return Counter((tk, fold, sk) for _, tk, fold, sk in rows)


def test_every_artifact_exists_and_validates(smoke_run):
    res = smoke_run["dir"] / "results"
    card = _load(_one(res.glob("data/*/data_card.json")))
    validate_report("data_card", card)
    data_key = card["data_key"]

    summaries = sorted(res.glob("hpo/*/*/v1/study_summary.json"))
    assert sorted(p.parts[-4] for p in summaries) == sorted(BACKBONES)
    fold_files = 0
    for path in summaries:
        s = validate_report("study_summary", _load(path))
        assert s["devices"] == ["cuda" if torch.cuda.is_available() else "cpu"]  # the machine's device
        assert s["data_key"] == data_key
        assert s["counts"]["complete"] + s["counts"]["pruned"] == N_TRIALS
        assert len(s["trials"]) == N_TRIALS
        for t in s["trials"]:
            done = [f for f in t["fold_scores"] if f is not None]
            if t["state"] == "COMPLETE":
                assert len(done) == N_FOLDS
                assert t["mean"] == pytest.approx(sum(done) / N_FOLDS)
            for k in range(len(done)):
                m = _load(path.parent / "trials" / t["trial_key"] / f"fold_{k}" / "metrics.json")
                assert m["score"] == pytest.approx(t["fold_scores"][k])
                assert m["split"].startswith(f"fold {k} heldout")
                cov = m["input_coverage"]  # long-form posts, read whole through windows (the default)
                assert cov["policy"] == "windows" and cov["n_posts"] == m["n_heldout"]
                assert cov["n_longer_than_window"] > 0 and cov["windows_read"]["mean"] > 1.5
                assert cov["n_posts_capped"] == 0 and cov["n_evidence_beyond_read"] == 0
                fold_files += 1
        best = s["best_trial"]
        assert best["mean"] == max(t["mean"] for t in s["trials"] if t["state"] == "COMPLETE")

    # refit: checkpoint verifies against its manifest, thresholds chosen on the trial's out-of-fold probabilities
    from workflow_lib.learning.checkpoint import load_checkpoint

    n_train = card["counts"]["splits"]["train"]["posts"]

    refits = sorted(res.glob("refit/*/metrics.json"))
    assert len(refits) >= len(BACKBONES)  # one per candidate: a backbone's best trial, or each of its tied best
    # trials (ties happen here: the tiny BERTs learn little of the long-form posts in 2 epochs)
    for m in refits:
        metrics = _load(m)
        thr = metrics["thresholds"]
        assert thr["source"] == "oof" and thr["split"] == OOF  # the schema's default source
        assert set(thr["per_symptom"]) == set(thr["values"]) and "rule" in thr
        assert all(thr["values"][s] == e["threshold"] for s, e in thr["per_symptom"].items())
        assert thr["oof"]["n_posts"] == n_train and thr["oof"]["calibration"]["split"] == OOF
        model, tok, info = load_checkpoint(m.parent / "model")
        assert info["meta"]["thresholds"] == thr["values"]  # the checkpoint carries the chosen thresholds
        manifest = _load(m.parent / "model" / "manifest.json")
        assert "model.safetensors" in manifest["files"]
        assert info is not None

    benches = sorted(res.glob("benchmark/*/benchmark.json"))
    assert len(benches) == len(refits)
    for b in benches:
        bench = validate_report("benchmark", _load(b))
        assert {(r["batch_size"], r["seq_length"]) for r in bench["results"]} == {(1, 64), (8, 64)}
        for r in bench["results"]:
            assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p95"] <= r["latency_ms"]["p99"]

    sel_path = _one(res.glob("selection/*/selection_report.json"))
    sel = validate_report("selection_report", _load(sel_path))
    assert {c["backbone"] for c in sel["candidates"]} == set(BACKBONES)
    # both baselines on the same folds; "the baseline" is the best of them
    assert [b["name"] for b in sel["baselines"]] == ["tfidf_logreg", "tfidf_logreg_sentences"]
    assert all(len(b["fold_scores"]) == N_FOLDS and b["cv_interval"]["k"] == N_FOLDS for b in sel["baselines"])
    best = max(sel["baselines"], key=lambda b: b["mean"])
    assert sel["baseline"]["name"] == best["name"] and sel["baseline"]["mean"] == best["mean"]
    assert all(c["cv_interval"]["k"] == N_FOLDS for c in sel["candidates"])
    keys = {c["trial_key"] for c in sel["candidates"]}
    pairs = {(c["a"], c["b"]) for c in sel["comparisons"]}
    assert {(k, f"baseline:{b['name']}") for k in keys for b in sel["baselines"]} <= pairs
    assert len(pairs) == len(sel["comparisons"]) == len(keys) * (len(keys) - 1) // 2 + 2 * len(keys)
    assert sel["fold_sizes"]["n_train"] + sel["fold_sizes"]["n_test"] == n_train
    lead = sel["winner_lead"]
    assert lead["vs_baseline"]["baseline"] == best["name"] and lead["text"]
    best_cv = max(c["cv_mean"] for c in sel["candidates"])
    assert sel["selected"]["cv_mean"] == best_cv
    html = (Path(sel_path).parent / "selection_report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3

    report = validate_report("evaluation_report", _load(_one(res.glob("final/*/evaluation_report.json"))))
    assert report["split"] == "test" and report["report_version"] == 3
    _check_report_contract(report, sel, card)
    # chosen automatically (the GPU when the machine has one), recorded
    assert report["training"]["device"]["type"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert report["selected"]["trial_key"] == sel["selected"]["trial_key"]
    assert report["lineage"]["selection_key"] == sel["selection_key"]
    assert report["lineage"]["data_key"] == data_key
    assert report["training"]["trained_on"] == ["train", "validation"]
    n_test = card["counts"]["splits"]["test"]["posts"]
    assert report["n_test_posts"] == n_test
    cov = report["input_coverage"]
    assert cov["split"] == "test" and cov["n_posts"] == n_test and cov["policy"] == "windows"
    assert cov["windows_read"]["total"] > n_test and cov["n_evidence_beyond_read"] == 0
    assert card["lengths"]["splits"]["test"]["words"]["max"] > 3 * card["lengths"]["splits"]["test"]["words"]["p50"]

    # one log file per job, and every rule logged something
    for rule in (
        "prepare_data",
        "baseline",
        "hpo_worker",
        "hpo_summary",
        "refit",
        "benchmark",
        "select_model",
        "final",
    ):
        logs = list(res.glob(f"logs/{rule}/*.log"))
        assert logs and all(p.stat().st_size > 0 for p in logs), rule

    # MLflow: exactly one fold run per trained fold
    runs = _fold_runs(res / "mlflow.db")
    assert sum(runs.values()) == fold_files
    assert set(runs.values()) == {1}


def _check_report_contract(report, sel, card):
    """Report version 3: every block names its split, every test figure has its interval, the baselines are scored
    on the same test posts, and the thresholds are the refit's."""
    n_test = card["counts"]["splits"]["test"]["posts"]
    iv = report["intervals"]
    assert iv["split"] == "test" and iv["bootstrap"]["n_resamples"] == 2000 and iv["bootstrap"]["seed"] == 0
    thr = [report["thresholds"]["values"][s] for s in SYMPTOMS]
    assert iv["at_tuned_thresholds"]["thresholds"] == thr and set(iv["at_0.5"]["thresholds"]) == {0.5}
    for at, metrics in (("at_tuned_thresholds", "test"), ("at_0.5", "test_at_0.5")):
        for k in ("macro_f1", "micro_f1"):
            i = iv[at][k]
            assert i["estimate"] == pytest.approx(report["metrics"][metrics][k])
            assert i["low"] <= i["estimate"] <= i["high"]
    assert iv["at_tuned_thresholds"]["n_posts"] == n_test
    few = report["few_positives"]
    assert few["split"] == "test" and few["min_positives"] == 5
    support = {s: v["support"] for s, v in report["metrics"]["test"]["per_symptom"].items()}
    assert {s: v["n_positives"] for s, v in few["per_symptom"].items()} == support
    assert [b["name"] for b in report["baselines"]][0] == sel["baseline"]["name"]  # the reference: best on CV
    assert {b["name"] for b in report["baselines"]} == {"tfidf_logreg", "tfidf_logreg_sentences"}
    for b in report["baselines"]:
        assert b["split"] == "test" and b["trained_on"] == ["train", "validation"] and b["threshold"] == 0.5
        assert b["metrics"]["n_samples"] == n_test
        pd = b["paired_difference"]
        assert pd["model"] == pytest.approx(report["metrics"]["test"]["macro_f1"])
        assert pd["baseline"] == pytest.approx(b["metrics"]["macro_f1"])
        assert pd["difference"]["estimate"] == pytest.approx(pd["model"] - pd["baseline"]) and 0 < pd["p_value"] <= 1
    for c in report["co_best"]:
        assert "paired_difference_vs_selected" in c and "paired_difference_vs_baseline" in c
    paper = report["paper"]
    assert (
        paper["split"] == "test"
        and len(paper["published_baselines"]) == 4
        and "297 test posts" in paper["published_note"]
    )
    assert paper["at_0.5"]["labels"][-1] == "NO_SYMPTOMS" and "intervals" in paper["at_tuned_thresholds"]
    cal = report["calibration"]
    assert cal["test"]["split"] == "test" and cal["oof"]["split"] == OOF and 0 <= cal["test"]["ece"] <= 1
    assert report["cv"]["interval"]["k"] == N_FOLDS
    assert report["thresholds"]["source"] == "oof" and report["thresholds"]["oof"]["split"] == OOF


def test_second_run_does_nothing(smoke_run):
    t0 = time.perf_counter()
    dry = run_snakemake(smoke_run["dir"], "-n")
    dry_s = time.perf_counter() - t0
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
    before = {p: p.stat().st_mtime_ns for p in (smoke_run["dir"] / "results").rglob("*.json")}
    again = run_snakemake(smoke_run["dir"])
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    after = {p: p.stat().st_mtime_ns for p in (smoke_run["dir"] / "results").rglob("*.json")}
    assert before == after
    print(f"no-op dry run: {dry_s:.1f}s")
