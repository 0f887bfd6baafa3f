"""The sentence model (training.criteria_from: sentences) shipped: its rows carry each predicted symptom's scored
evidence sentences at the checkpoint's evidence threshold (Predictor, CSV, the MLflow pyfunc model), its evaluation
page marks them by symptom beside the gold sentences with the evidence threshold and the sentence metrics, and its
model card says how its decisions and evidence are made."""

from __future__ import annotations

import csv
import json
import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers.predict import FINAL_KEY, POSTS, TINY, median_thresholds
from workflow_lib.config import Training
from workflow_lib.learning.checkpoint import save_checkpoint
from workflow_lib.learning.inference import predict as inference_predict
from workflow_lib.learning.models.model import build_model
from workflow_lib.shipping import predictor as P
from workflow_lib.symptoms import SYMPTOMS

SENTENCES = Training.resolve({"criteria_from": "sentences", "eval_batch_size": 4, "precision": "fp32"})
EVIDENCE_THRESHOLD = 0.3


def _sentence_model():
    """A tiny sentence model whose post and sentence probabilities are spread out (random weight noise)."""
    torch.manual_seed(5)
    model, tok = build_model(TINY, SENTENCES)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model.eval(), tok


def _save(folder, model, tok, thresholds, **meta):
    save_checkpoint(
        folder,
        model,
        tok,
        backbone_spec=TINY,
        train_cfg=SENTENCES,
        meta={"stage": "final", "final_key": FINAL_KEY, "thresholds": thresholds, **meta},
    )
    return folder


@pytest.fixture(scope="module")
def sentence_model(tmp_path_factory):
    """The model saved as a final checkpoint (evidence threshold 0.3), and at 0.0 and 1.0 beside it."""
    model, tok = _sentence_model()
    probs = inference_predict(model, tok, P.post_records(POSTS), SENTENCES, max_length=TINY.max_length).probs
    thresholds = median_thresholds(probs)
    root = tmp_path_factory.mktemp("sentences")
    folders = {
        t: _save(root / f"at_{t}" / "final" / FINAL_KEY / "model", model, tok, thresholds, evidence_threshold=t)
        for t in (EVIDENCE_THRESHOLD, 0.0, 1.0)
    }
    return {"model": model, "tok": tok, "thresholds": thresholds, "folders": folders, "root": root}


@pytest.fixture(scope="module")
def rows(sentence_model):
    pr = P.Predictor.load(sentence_model["folders"][EVIDENCE_THRESHOLD], threads=1)
    return pr.predict(POSTS, progress=False)


def _sentence_scores(m, posts=POSTS):
    """Every read sentence of every post with its nine probabilities (the final stage's own prediction)."""
    pred = inference_predict(m["model"], m["tok"], P.post_records(posts), SENTENCES, max_length=TINY.max_length)
    return pred, pred.sentence_scores()


# ------------------------------------------------------------------------------------------------ predictor


def test_every_predicted_symptom_gets_its_scored_sentences_at_the_checkpoints_threshold(sentence_model, rows):
    pr = P.Predictor.load(sentence_model["folders"][EVIDENCE_THRESHOLD], threads=1)
    assert pr.has_evidence and pr.evidence_threshold == EVIDENCE_THRESHOLD
    pred, scores = _sentence_scores(sentence_model)
    probs = np.array([[r["probabilities"][s] for s in SYMPTOMS] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(probs, pred.probs)  # the final stage's probabilities, bit for bit
    n_predicted = n_several = 0
    for row, post, sentences in zip(rows, POSTS, scores):
        text = post["text"]
        assert row["evidence_scope"] == "symptom" and row["evidence_threshold"] == EVIDENCE_THRESHOLD
        assert list(row["evidence"]) == row["predicted"]  # one entry per predicted symptom, none for the others
        for symptom in row["predicted"]:
            n_predicted += 1
            entries = row["evidence"][symptom]
            assert entries, f"{row['post_id']} {symptom}: a predicted symptom without evidence"
            for e in entries:
                assert set(e) == {"start", "end", "text", "score"} and isinstance(e["score"], float)
                assert 0 <= e["start"] < e["end"] <= len(text) and e["text"] == text[e["start"] : e["end"]]
            # the sentence scores of this symptom, by span: the entries are the passing ones, or the top one
            by_span = {(s["start"], s["end"]): s["probabilities"][symptom] for s in sentences}
            assert all(e["score"] == pytest.approx(by_span[(e["start"], e["end"])]) for e in entries)
            passing = [span for span, p in by_span.items() if p >= EVIDENCE_THRESHOLD]
            if passing:
                assert [(e["start"], e["end"]) for e in entries] == passing
                assert all(e["score"] >= EVIDENCE_THRESHOLD for e in entries)
            else:
                assert len(entries) == 1 and entries[0]["score"] == pytest.approx(max(by_span.values()))
            n_several += len(entries) > 1
    assert n_predicted > 0 and n_several > 0  # the fixture decides symptoms and some have several sentences
    assert json.loads(json.dumps(rows)) == rows  # JSON as it is


def test_the_evidence_threshold_of_the_checkpoint_changes_the_evidence(sentence_model, rows):
    every = P.Predictor.load(sentence_model["folders"][0.0], threads=1).predict(POSTS, progress=False)
    top = P.Predictor.load(sentence_model["folders"][1.0], threads=1).predict(POSTS, progress=False)
    _, scores = _sentence_scores(sentence_model)
    for low, mid, high, sentences in zip(every, rows, top, scores):
        assert low["decisions"] == mid["decisions"] == high["decisions"]  # decisions do not depend on it
        assert (low["evidence_threshold"], high["evidence_threshold"]) == (0.0, 1.0)
        for symptom in mid["predicted"]:
            assert len(low["evidence"][symptom]) == len(sentences)  # every read sentence passes 0
            assert len(high["evidence"][symptom]) == 1  # none passes 1: the top sentence alone
            assert len(high["evidence"][symptom]) <= len(mid["evidence"][symptom]) <= len(low["evidence"][symptom])
    assert [r["evidence"] for r in every] != [r["evidence"] for r in rows] != [r["evidence"] for r in top]


def test_a_checkpoint_without_evidence_threshold_marks_at_the_training_one_with_a_warning(
    sentence_model, tmp_path, caplog
):
    m = sentence_model
    folder = _save(tmp_path / "model", m["model"], m["tok"], m["thresholds"])
    with caplog.at_level(logging.WARNING, logger="workflow_lib.shipping.predictor"):
        pr = P.Predictor.load(folder, threads=1)
    assert any("no evidence threshold (meta.evidence_threshold)" in r.getMessage() for r in caplog.records)
    assert pr.evidence_threshold == SENTENCES.evidence_threshold
    assert pr.predict(POSTS[:2], progress=False)[0]["evidence_threshold"] == SENTENCES.evidence_threshold
    bad = _save(tmp_path / "bad" / "model", m["model"], m["tok"], m["thresholds"], evidence_threshold="high")
    with pytest.raises(P.PredictError, match=r"meta.evidence_threshold is 'high', not a probability in \[0, 1\]"):
        P.Predictor.load(bad)


def test_a_post_level_models_rows_have_no_evidence():
    from tests.helpers.predict import spread_model

    model, tok, cfg = spread_model("plain")
    pred = inference_predict(model, tok, P.post_records(POSTS), cfg, max_length=TINY.max_length)
    rows = P.prediction_rows(P.post_records(POSTS), pred, [0.0] * len(SYMPTOMS), cfg.input_format)
    assert all(r["predicted"] == list(SYMPTOMS) for r in rows)  # every symptom decided, still no evidence
    assert all(not {"evidence", "evidence_scope", "evidence_threshold"} & set(r) for r in rows)


def test_csv_keeps_the_scored_evidence_as_json(rows, tmp_path):
    P.write_predictions(rows, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        flat = list(csv.DictReader(fh))
    assert list(flat[0]) == P.csv_header()
    assert [json.loads(f["evidence"]) for f in flat] == [r["evidence"] for r in rows]
    assert any(e["score"] for f in flat for entries in json.loads(f["evidence"]).values() for e in entries)


def test_the_cli_writes_the_sentence_evidence(sentence_model, tmp_path, capsys):
    from workflow_lib.shipping import cli

    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert cli.main([str(sentence_model["folders"][EVIDENCE_THRESHOLD]), str(posts), "-o", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(r["evidence_threshold"] == EVIDENCE_THRESHOLD and r["evidence_scope"] == "symptom" for r in written)
    assert all(list(r["evidence"]) == r["predicted"] for r in written)
    assert capsys.readouterr().out.startswith(f"redsm5-predict: {len(POSTS)} posts in ")


# ------------------------------------------------------------------------------------------------ MLflow pyfunc


def _fits(value, dtype, where: str) -> None:
    """``value`` is of the MLflow output type ``dtype`` (DataType, Object, Array or AnyType): names what does not."""
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, Array, Object

    if isinstance(dtype, AnyType):
        return
    if isinstance(dtype, Object):
        assert isinstance(value, dict), where
        props = {p.name: p for p in dtype.properties}
        assert set(value) <= set(props), f"{where}: {sorted(set(value) - set(props))} not in the signature"
        for name, prop in props.items():
            assert name in value or not prop.required, f"{where}.{name}: required"
            if name in value:
                _fits(value[name], prop.dtype, f"{where}.{name}")
    elif isinstance(dtype, Array):
        assert isinstance(value, list), where
        for k, item in enumerate(value):
            _fits(item, dtype.dtype, f"{where}[{k}]")
    else:
        kinds = {DataType.long: int, DataType.double: float, DataType.string: str}
        assert isinstance(value, kinds[dtype]) and not isinstance(value, bool), f"{where}: {value!r} is not {dtype}"


def test_the_pyfunc_model_returns_the_sentence_evidence_its_signature_declares(sentence_model, rows):
    pytest.importorskip("mlflow")
    import pandas as pd

    from workflow_lib.shipping import mlflow_model as mm

    model = mm.RedSM5Model()
    model.load_context(SimpleNamespace(artifacts={mm.ARTIFACT: str(sentence_model["folders"][EVIDENCE_THRESHOLD])}))
    frame = pd.DataFrame({"post_id": [p["post_id"] for p in POSTS], "text": [p["text"] for p in POSTS]})
    out = model.predict(None, frame)
    assert [{k: v for k, v in r.items() if k != "code_version"} for r in out] == [
        {k: v for k, v in r.items() if k != "code_version"} for r in rows
    ]
    outputs = mm.signature().outputs.inputs
    for i, row in enumerate(out):
        assert set(row) <= {c.name for c in outputs}
        for col in outputs:
            assert col.name in row or not col.required, f"row {i}: {col.name} required"
            if col.name in row and row[col.name] is not None:
                _fits(row[col.name], col.type, f"row {i}: {col.name}")
    assert any(e.get("score") is not None for r in out for entries in r["evidence"].values() for e in entries)


def test_a_sentence_model_folder_without_its_evidence_threshold_is_not_logged(sentence_model, tmp_path):
    pytest.importorskip("mlflow")
    from workflow_lib.shipping import mlflow_model as mm

    m = sentence_model
    info = mm.check_model_folder(m["folders"][EVIDENCE_THRESHOLD])
    assert info["meta"]["evidence_threshold"] == EVIDENCE_THRESHOLD
    folder = _save(tmp_path / "model", m["model"], m["tok"], m["thresholds"])
    with pytest.raises(ValueError, match=r"checkpoint.json: a sentence model .* without meta.evidence_threshold"):
        mm.check_model_folder(folder)


# ------------------------------------------------------------------------------------------------ page and card
# One test post of the sentence model: FATIGUE found (S0), SLEEP_ISSUES found (S1) and also marked on S0 where the
# gold does not have it, DEPRESSED_MOOD predicted on S2 (its top sentence, below the threshold) while the gold
# marks S3: a false alarm and a miss.
SENTENCE_TEXTS = ["I feel so tired all day.", "I cannot sleep at night.", "We walked the dog.", 'Nothing <3 & "more".']
TEXT = " ".join(SENTENCE_TEXTS)
EVIDENCE_BLOCK = {
    "value": 0.35,
    "source": "oof",
    "split": "cv heldout folds (train split)",
    "rule": "The sentence model's evidence threshold maximises sentence-level micro F1 <on the grid>.",
    "grid": [0.3, 0.35, 0.4],
    "f1": [0.5, 0.625, 0.6],
}


def _span(k, score=None):
    a = TEXT.index(SENTENCE_TEXTS[k])
    entry = {"start": a, "end": a + len(SENTENCE_TEXTS[k]), "text": SENTENCE_TEXTS[k]}
    return entry if score is None else {**entry, "score": score}


def _sentence_metrics():
    per = {
        s: {"precision": 0.1 + 0.05 * j, "recall": 0.2 + 0.05 * j, "f1": 0.15 + 0.05 * j, "support": 3 + j, "n": 40}
        for j, s in enumerate(SYMPTOMS)
    }
    return {
        "threshold": 0.35,
        "per_symptom": per,
        "macro_f1": 0.3512,
        "micro_precision": 0.4321,
        "micro_recall": 0.5432,
        "micro_f1": 0.4812,
        "n_cells": 360,
        "n_sentences": 40,
        "n_sentences_not_read": 2,
    }


def sentence_report():
    from test_model_card import report

    rep = report(evidence=True)
    rep["task"].update(evidence_task=False, criteria_from="sentences", sentence_aggregation="max")
    rep["thresholds"]["evidence"] = dict(EVIDENCE_BLOCK)
    rep["metrics"]["sentences"] = _sentence_metrics()
    return rep


def _page_rows():
    predicted = ["DEPRESSED_MOOD", "SLEEP_ISSUES", "FATIGUE"]
    decisions = {s: int(s in predicted) for s in SYMPTOMS}
    row = {
        "post_id": "p00",
        "split": "test",
        "labels": dict(decisions),
        "probabilities": {s: 0.9 if s in predicted else 0.1 for s in SYMPTOMS},
        "decisions": decisions,
        "predicted": [s for s in SYMPTOMS if decisions[s]],
        "threshold": "tuned",
        "evidence": {
            "DEPRESSED_MOOD": [_span(2, 0.41)],
            "SLEEP_ISSUES": [_span(0, 0.52), _span(1, 0.88)],
            "FATIGUE": [_span(0, 0.91)],
        },
        "evidence_scope": "symptom",
        "evidence_threshold": 0.35,
        "gold_evidence": {"DEPRESSED_MOOD": [_span(3)], "SLEEP_ISSUES": [_span(1)], "FATIGUE": [_span(0)]},
        "gold_evidence_complete": True,
    }
    quiet = {**row, "post_id": "p01", "evidence": {}, "gold_evidence": {}, "predicted": [], "labels": {}}
    quiet.update(decisions=dict.fromkeys(SYMPTOMS, 0), labels=dict.fromkeys(SYMPTOMS, 0))
    return [row, quiet], {"p00": TEXT, "p01": "Nothing to see."}


@pytest.fixture(scope="module")
def sentence_page():
    from workflow_lib.shipping.report_html import evaluation_page

    rows, texts = _page_rows()
    return evaluation_page(sentence_report(), rows, texts).html


def _marks(html_text, kind):
    """(symptom class, text, [tags]) of every mark of ``kind`` (pred/gold) in the example posts."""
    found = re.findall(
        rf'<mark class="span-{kind} sym-([A-Z_]+)" title="[^"]*">(.*?)</mark>((?:<sup class="tag [^"]*"[^>]*>.*?</sup>)*)',
        html_text,
    )
    return [
        (sym, text, re.findall(r'<sup class="tag sym-([A-Z_]+) (hit|miss)"[^>]*>([^<]*)</sup>', tags))
        for sym, text, tags in found
    ]


def test_the_page_marks_predicted_sentences_by_symptom_beside_the_gold_ones(sentence_page):
    from markupsafe import escape

    from workflow_lib.shipping.report_html import SYMPTOM_COLOURS

    post = sentence_page[sentence_page.index("<h3>post p00</h3>") : sentence_page.index("<h3>post p01</h3>")]
    assert _marks(post, "pred") == [
        (  # the surest symptom first, colouring the sentence
            "FATIGUE",
            SENTENCE_TEXTS[0],
            [("FATIGUE", "hit", "FATIGUE 0.910 ✓"), ("SLEEP_ISSUES", "miss", "SLEEP_ISSUES 0.520 ✗")],
        ),
        ("SLEEP_ISSUES", SENTENCE_TEXTS[1], [("SLEEP_ISSUES", "hit", "SLEEP_ISSUES 0.880 ✓")]),
        ("DEPRESSED_MOOD", SENTENCE_TEXTS[2], [("DEPRESSED_MOOD", "miss", "DEPRESSED_MOOD 0.410 ✗")]),
    ]
    assert _marks(post, "gold") == [
        ("FATIGUE", SENTENCE_TEXTS[0], [("FATIGUE", "hit", "FATIGUE ✓")]),
        ("SLEEP_ISSUES", SENTENCE_TEXTS[1], [("SLEEP_ISSUES", "hit", "SLEEP_ISSUES ✓")]),
        ("DEPRESSED_MOOD", str(escape(SENTENCE_TEXTS[3])), [("DEPRESSED_MOOD", "miss", "DEPRESSED_MOOD ✗")]),
    ]
    assert 'title="FATIGUE: p = 0.910 (a gold evidence sentence of it); SLEEP_ISSUES: p = 0.520 (not a gold' in post
    assert 'title="DEPRESSED_MOOD: gold evidence, missed by the model"' in post
    assert 'title="FATIGUE: gold evidence, found by the model (p = 0.910)"' in post
    assert SENTENCE_TEXTS[3] not in sentence_page  # autoescaped
    # one colour per symptom, in the style sheet and the legend
    for symptom, colour in SYMPTOM_COLOURS.items():
        assert f"mark.sym-{symptom}{{background:{colour}33;border-bottom:2px solid {colour}}}" in sentence_page
        assert f'<mark class="sym-{symptom}">{symptom}</mark>' in sentence_page
    assert len(set(SYMPTOM_COLOURS.values())) == len(SYMPTOMS)
    assert "<h3>post p01</h3>" in sentence_page and "span-pred" not in sentence_page.split("<h3>post p01</h3>")[1]


def test_the_page_states_the_evidence_threshold_and_the_sentence_metrics(sentence_page):
    text = sentence_page
    assert '<h3 id="evidence-threshold">Evidence threshold (cv heldout folds (train split))</h3>' in text
    assert (
        "Evidence threshold <strong>0.35</strong>, source <code>oof</code>: chosen on sentence-level micro F1 over "
        "the cross-validation models&#39; held-out sentences of the train split; sentence-level micro F1 there: "
        "0.625 (cv heldout folds (train split))."
    ) in text
    assert "micro F1 &lt;on the grid&gt;.</blockquote>" in text
    assert "<dt>criteria from</dt><dd>sentences (max over a post&#39;s sentences)</dd>" in text
    assert "<dt>evidence threshold</dt><dd>0.35 (chosen on sentence-level micro F1" in text
    assert "Decisions and evidence come from the same sentence scores" in text
    assert '<h3 id="sentence-metrics">Sentence-level metrics (test split, evidence threshold 0.35)</h3>' in text
    per = _sentence_metrics()["per_symptom"]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r'<tr class="sentence">(.*?)</tr>', text)]
    assert [r[0] for r in rows] == list(SYMPTOMS)
    for r, s in zip(rows, SYMPTOMS):
        m = per[s]
        assert r[1:] == [str(m["support"]), "40", f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}"]
    mean = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r'<tr class="mean">(.*?)</tr>', text)]
    assert [
        "micro (every known sentence-symptom cell)",
        str(sum(m["support"] for m in per.values())),
        "360",
        "0.432",
        "0.543",
        "0.481",
    ] in mean
    assert mean[-1][0] == "macro F1 (symptoms with a gold sentence)" and mean[-1][-1] == "0.351"
    assert "40 test sentences, 2 of them not read" in text
    assert re.search(r'<tr class="evidence"><td>token_f1</td><td>test</td><td class="num">0.635</td>', text)
    assert "no evidence head" not in text


def test_a_report_of_older_code_without_the_evidence_block_still_renders():
    from workflow_lib.shipping.report_html import evaluation_page

    rep = sentence_report()
    del rep["thresholds"]["evidence"], rep["metrics"]["sentences"], rep["task"]["sentence_aggregation"]
    rows, texts = _page_rows()
    text = evaluation_page(rep, rows, texts).html
    assert "does not say which evidence threshold the sentence model used" in text
    assert "<dt>evidence threshold</dt><dd>not stated by this report</dd>" in text
    assert "Sentence-level metrics" not in text and len(_marks(text, "pred")) == 3


def test_the_model_card_says_how_decisions_and_evidence_are_made():
    from test_model_card import SPEC, _section, card, data_card

    text = card(rep=sentence_report())
    what = _section(text, "What the model predicts")
    assert "every sentence of the post the model reads gets nine probabilities" in what
    assert (
        "the post's probability of a symptom is the maximum of its sentences' (the surest sentence decides) "
        "(training.sentence_aggregation: max)" in what
    )
    assert (
        "at or above the evidence threshold 0.35 (chosen on sentence-level micro F1 over the cross-validation "
        "models' held-out sentences of the train split), else its single most probable sentence" in what
    )
    assert "This model has no evidence head" not in what
    assert "| criteria from | sentences" in what and "| sentence aggregation | max |" in what
    thresholds = _section(text, "Evidence threshold")
    assert "evidence threshold **0.35**" in thresholds and "source `oof`" in thresholds
    assert "(cv heldout folds (train split))" in thresholds and "micro F1 there: 0.625" in thresholds
    assert "> " + EVIDENCE_BLOCK["rule"] in thresholds and "`meta.evidence_threshold`" in thresholds
    evaluation = _section(text, "Evaluation")
    assert "| sentence-level micro F1 (evidence threshold 0.35) | test | 0.4812 |" in evaluation
    assert "evidence-extraction" in text.split("---")[1]
    # a post-level model's card keeps its text
    from workflow_lib.shipping.model_card import render_model_card

    plain = render_model_card(__import__("test_model_card").report(evidence=False), data_card(), backbone_spec=SPEC)
    assert "This model has no evidence head" in plain and "Evidence threshold" not in plain
    assert "sentence scores" not in plain


def test_the_card_template_needs_no_value_the_sentence_card_does_not_give():
    import jinja2
    from test_model_card import SPEC, TCFG, data_card

    from workflow_lib.shipping import model_card

    rep = sentence_report()
    view = model_card.card_view(rep, data_card(), backbone_spec=SPEC, train_cfg=TCFG)
    data = model_card.card_data(rep, data_card(), view["name"])
    strict = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(model_card.TEMPLATE.read_text())
    text = model_card.render_model_card(rep, data_card(), backbone_spec=SPEC, train_cfg=TCFG)
    assert strict.render(card_data=data.to_yaml(), **view).rstrip("\n") + "\n" == text
