"""criteria_from: sentences outside the network: sentence labels -> training targets, which window reads each
sentence, what the coverage counts, evidence decoded back to character offsets, the sentence metrics, the
settings (refused combinations, inert settings) and the learning test: a cue sentence anywhere in long posts
is found from sentence labels where the post-level model, on the same budget, does not find it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.training import CFG, TINY
from workflow_lib.config import ConfigError, Training, keys
from workflow_lib.config.search_space import check_search_space, effective_config
from workflow_lib.learning.examples import (
    build_examples,
    owner_windows,
    post_sentences,
    sentence_metrics,
    sentence_targets,
    sentence_threshold_counts,
)
from workflow_lib.learning.inference import Prediction, predict, predict_proba
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.training import train
from workflow_lib.symptoms import SYMPTOMS

SENTENCES = Training.resolve({"criteria_from": "sentences"})
J = SYMPTOMS.index("FATIGUE")


@pytest.fixture(scope="module")
def tok():
    return load_encoder(TINY)[1]


def record(pid, sentences, labels=None, sentence_labels=None, evidence=None):
    """A prepared-style post record made of ``sentences`` (joined by one space, their spans kept)."""
    text, spans = "", []
    for s in sentences:
        text += " " if text else ""
        spans.append([len(text), len(text) + len(s)])
        text += s
    return {
        "post_id": pid,
        "text": text,
        "labels": labels or [0] * len(SYMPTOMS),
        "evidence": evidence or [],
        "sentences": spans,
        "sentence_labels": sentence_labels or {},
    }


# -- sentence labels -> targets ------------------------------------------------------------------------------


def test_sentence_labels_become_targets_and_weights_by_the_rule():
    labels = [1, 0, 0, 0, 0, 0, 0, 0, 0]  # the post shows DEPRESSED_MOOD only
    codes = np.zeros((3, 9), dtype=np.int8)
    codes[0, 0] = 1  # evidence of DEPRESSED_MOOD
    codes[1, 0] = -1  # rejected for DEPRESSED_MOOD ...
    codes[1, 1] = -1  # ... and for ANHEDONIA
    targets, weights = sentence_targets(labels, codes, hard_negative_weight=2.5)
    assert targets.dtype == weights.dtype == np.float32 and targets.shape == (3, 9)
    np.testing.assert_array_equal(targets[:, 0], [1, 0, 0])
    np.testing.assert_array_equal(weights[:, 0], [1, 2.5, 0])  # unannotated in a positive post: unknown
    np.testing.assert_array_equal(targets[:, 1], [0, 0, 0])
    np.testing.assert_array_equal(weights[:, 1], [1, 2.5, 1])  # negative post: every other sentence is 0
    assert (targets[:, 2:] == 0).all() and (weights[:, 2:] == 1).all()
    _, w0 = sentence_targets(labels, codes, hard_negative_weight=0.0)
    assert w0[1, 0] == 0 and w0[1, 1] == 0  # hard negatives switched off


def test_examples_carry_the_targets_of_the_sentences_they_read(tok):
    rec = record(
        "p",
        ["We walked the dog.", "I feel so tired.", "I was tired of the rain."],
        labels=[0, 0, 0, 0, 0, 1, 0, 0, 0],
        sentence_labels={"FATIGUE": [[1, 1], [2, -1]], "ANHEDONIA": [[0, -1]]},
    )
    ex = build_examples([rec], tok, SENTENCES, 32)
    u = ex.units
    assert u.sentence.tolist() == [0, 1, 2] and u.spans == [tuple(s) for s in rec["sentences"]]
    np.testing.assert_array_equal(u.targets[:, J].numpy(), [0, 1, 0])
    np.testing.assert_array_equal(u.weights[:, J].numpy(), [0, 1, 2])  # SENTENCES' hard_negative_weight
    np.testing.assert_array_equal(u.weights[:, 1].numpy(), [2, 1, 1])
    t, w = u.targets_of(torch.tensor([0]))
    assert torch.equal(t, u.targets) and torch.equal(w, u.weights)


def test_stored_sentences_that_do_not_fit_the_text_are_refused_with_the_fix():
    rec = record("bad-post", ["One.", "Two."])
    rec["sentences"][1] = [5, 99]
    with pytest.raises(ValueError, match=r"post 'bad-post': sentence 1 spans characters \(5, 99\).*rerun prepare_data"):
        post_sentences(rec)
    assert post_sentences({"text": "One. Two."}) == [(0, 4), (5, 9)]  # a bare text: split here


# -- windows ---------------------------------------------------------------------------------------------------


def test_owner_window_holds_the_sentence_whole_or_most_of_it():
    # window 0 ends inside sentence 1 (2 of its tokens), window 1 holds it whole (4 tokens)
    w0 = [-1, 0, 0, 0, 1, 1, -1]
    w1 = [-1, 1, 1, 1, 1, 2, -1]
    assert owner_windows([w0, w1]) == {0: (0, 3), 1: (1, 4), 2: (1, 1)}
    # no window holds sentence 1 whole: the one with more of it reads it
    assert owner_windows([[-1, 0, 1, 1, 1, -1], [-1, 1, 1, 2, -1]])[1] == (0, 3)
    # held whole by both: the window where it has more context on its shorter side, then the earlier
    assert owner_windows([[-1, 0, 0, 0, 1, 1, -1], [-1, 0, 1, 1, 2, 2, -1]])[1] == (1, 2)
    assert owner_windows([[-1, 1, 1, -1], [-1, 1, 1, -1]])[1] == (0, 2)
    assert owner_windows([[-1, -1], [-1, 0, -1]]) == {0: (1, 1)}  # a sentence only the second window reaches


LONG = [
    "We walked the old dog slowly to the park near the river after lunch today.",
    "The rain kept falling on the roof of the house all night while we cooked pasta and watched a film.",
    "Then my brother drove the car to the city because he had to work early in the morning.",
    "I slept.",
]


def test_a_sentence_cut_by_a_window_boundary_is_read_in_the_window_holding_most_of_it(tok):
    rec = record("long", LONG)
    ex = build_examples([rec], tok, SENTENCES, 32)
    assert ex.n_windows >= 3
    # the same windows read by the span path, which marks every token's sentence in every window
    spans_ex = build_examples([rec], tok, CFG.replace(evidence_task=True), 32)
    assert torch.equal(spans_ex.input_ids, ex.input_ids)
    counts = np.asarray([[int((w == k).sum()) for k in range(len(LONG))] for w in spans_ex.sentence_ids])
    assert ((counts > 0).sum(axis=0) > 1).any(), counts  # the windows do cut sentences
    u = ex.units
    assert u.sentence.tolist() == [0, 1, 2, 3]
    for unit, k in enumerate(u.sentence.tolist()):
        holders = torch.nonzero((u.token_units == unit).any(dim=1)).flatten().tolist()
        assert len(holders) == 1  # one owner window per sentence
        w = holders[0]
        assert counts[w, k] == counts[:, k].max()  # ... the one holding the most of it
        assert int((u.token_units[w] == unit).sum()) == counts[w, k]  # all its tokens there are pooled
        assert bool(u.whole[unit]) == (counts[w, k] == _tokens_in_post(tok, rec["text"], rec["sentences"][k]))
    assert not bool(u.whole.all())  # a sentence no window holds whole is read from its larger part


def _tokens_in_post(tok, text, span):
    full = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return sum(s < span[1] and e > span[0] and e > s for s, e in full["offset_mapping"])


def test_sentences_past_max_windows_are_counted_as_not_read(tok):
    evidence_at = len(LONG) - 1
    rec = record("capped", LONG, sentence_labels={"FATIGUE": [[evidence_at, 1]]}, labels=[0, 0, 0, 0, 0, 1, 0, 0, 0])
    cov = build_examples([rec], tok, SENTENCES, 32).coverage()["sentences"]
    assert cov["n_sentences"] == 4 and cov["n_not_read"] == 0 and cov["n_evidence_not_read"] == 0
    ex = build_examples([rec], tok, SENTENCES.replace(max_windows=1), 32)
    cov = ex.coverage("test")
    s = cov["sentences"]
    assert s["n_read"] == len(ex.units) < 4 and s["n_not_read"] == 4 - s["n_read"]
    assert s["share_not_read"] == pytest.approx(s["n_not_read"] / 4)
    assert s["n_evidence_sentences"] == 1 and s["n_evidence_not_read"] == 1 and s["share_evidence_not_read"] == 1.0
    assert s["n_read_in_part"] == 1  # the sentence the window boundary cuts is read from its first part
    assert cov["aggregation"] == "sentences: max" and "aggregate its sentences' by max" in cov["policy_text"]
    truncated = build_examples([rec], tok, SENTENCES.replace(long_posts="truncate"), 32).coverage()["sentences"]
    assert truncated == s  # truncation reads what one window reads


ALONE = SENTENCES.replace(sentence_context="alone")


def test_sentences_read_alone_are_each_their_own_encoding_of_the_sentences_the_windows_reach(tok):
    overlong = " ".join(["the long grey road ran on past the farm"] * 6) + "."  # > 32 tokens alone
    rec = record("p", [*LONG[:2], overlong, "I slept."])
    ex = build_examples([rec, record("empty", [])], tok, ALONE, 32)
    u = ex.units
    assert u.sentence.tolist() == [0, 1, 2, 3, -1] and u.starts.tolist() == [0, 4, 5] and bool(u.whole[:4].all())
    for unit in range(4):
        a, b = u.spans[unit]
        windows = torch.nonzero((u.token_units == unit).any(dim=1)).flatten()
        pooled = torch.cat([ex.input_ids[w][u.token_units[w] == unit] for w in windows.tolist()])
        own = tok(rec["text"][a:b], add_special_tokens=False)["input_ids"]
        if unit != 2:  # one window: [CLS] sentence [SEP], every sentence token pooled
            assert len(windows) == 1
            assert ex.input_ids[windows[0], : ex.lengths[windows[0]]].tolist() == tok(rec["text"][a:b])["input_ids"]
            assert pooled.tolist() == own
        else:  # too long for one window: overlapping windows of its own, all pooled into the sentence
            assert len(windows) >= 2 and set(pooled.tolist()) == set(own) and len(pooled) > len(own)
    assert ex.window_rows.tolist() == sorted(ex.window_rows.tolist()) and ex.row_starts.tolist()[-1] == ex.n_windows
    empty = ex.window_index(torch.tensor([1]))
    assert len(empty) == 1 and ex.lengths[empty].item() == 2 and (u.token_units[empty] == -1).all()  # [CLS] [SEP]
    # the same sentences as the windows reach: under max_windows and truncation too
    for cfg in (SENTENCES, SENTENCES.replace(max_windows=1), SENTENCES.replace(long_posts="truncate")):
        in_windows = build_examples([rec], tok, cfg, 32).units
        alone = build_examples([rec], tok, cfg.replace(sentence_context="alone"), 32).units
        assert alone.sentence.tolist() == in_windows.sentence.tolist() and alone.spans == in_windows.spans
        assert torch.equal(alone.targets, in_windows.targets) and torch.equal(alone.weights, in_windows.weights)
    cov = build_examples([rec], tok, ALONE.replace(max_windows=1), 32).coverage()["sentences"]
    assert cov["n_not_read"] > 0 and cov["n_read_in_part"] == 0  # a sentence read alone is read whole


def test_a_sentence_read_alone_scores_as_the_encoder_reads_it_on_its_own():
    from workflow_lib.learning.models.model import build_model

    model, tok = build_model(TINY, ALONE)
    model.eval()
    rec = record("p", ["I feel so tired.", "We walked the dog to the park.", "Rain."])
    ex = build_examples([rec], tok, ALONE, 32)
    with torch.no_grad():
        logits = model(**ex.batch(torch.tensor([0])))["sentences"]
        for k, sentence in enumerate(rec["text"][a:b] for a, b in rec["sentences"]):
            enc = tok(sentence, return_tensors="pt")
            states, _ = model.encode(enc["input_ids"], enc["attention_mask"])
            vector = states[0, 1:-1].float().mean(0)  # its own tokens, without [CLS] and [SEP]
            torch.testing.assert_close(logits[k], model.head(vector.unsqueeze(0))[0].float(), rtol=1e-4, atol=1e-5)


def test_bare_texts_and_empty_posts_get_probabilities_from_the_sentence_model():
    from workflow_lib.learning.models.model import build_model

    model, tok = build_model(TINY, SENTENCES)
    probs = predict_proba(model, tok, ["I feel tired. I cannot sleep.", "", "   "], SENTENCES, max_length=32)
    assert probs.shape == (3, 9) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs[1], probs[2], atol=1e-6)  # nothing read: the same (bias) logits


# -- evidence and metrics from the sentence scores -----------------------------------------------------------

POST = ["We walked the dog.", "I feel so tired.", "I cannot sleep at night.", "The rain fell."]


def _prediction(tok, records, sentence_probs, post_probs, evidence_threshold=0.5):
    ex = build_examples(records, tok, SENTENCES, 32)
    post_probs = np.asarray(post_probs, dtype=np.float32)
    return Prediction(
        ex,
        post_probs,
        post_probs,
        sentence_probs=np.asarray(sentence_probs, np.float32),
        evidence_threshold=evidence_threshold,
    )


def test_evidence_is_the_passing_sentences_or_the_top_one_as_character_spans(tok):
    rec = record("e", POST)
    sp = np.zeros((4, 9), dtype=np.float32)
    sp[:, J] = [0.1, 0.9, 0.7, 0.2]  # FATIGUE: two sentences pass 0.6
    sp[:, 3] = [0.1, 0.3, 0.4, 0.2]  # SLEEP_ISSUES: none passes, the third is on top
    post = np.zeros((1, 9), dtype=np.float32)
    post[0, J], post[0, 3], post[0, 0] = 0.9, 0.6, 0.3  # DEPRESSED_MOOD not predicted at 0.5
    pred = _prediction(tok, [rec], sp, post, evidence_threshold=0.6)
    ev = pred.evidence(thresholds=0.5)
    text = rec["text"]
    assert set(ev[0]) == {"FATIGUE", "SLEEP_ISSUES"} and pred.evidence_scope == "symptom"
    fatigue = ev[0]["FATIGUE"]
    assert [(e["start"], e["end"]) for e in fatigue] == [tuple(rec["sentences"][1]), tuple(rec["sentences"][2])]
    assert [e["text"] for e in fatigue] == [POST[1], POST[2]] == [text[e["start"] : e["end"]] for e in fatigue]
    assert [e["score"] for e in fatigue] == pytest.approx([0.9, 0.7])
    start, end = rec["sentences"][2]
    assert ev[0]["SLEEP_ISSUES"] == [{"start": start, "end": end, "text": POST[2], "score": pytest.approx(0.4)}]
    assert [e["text"] for e in pred.evidence(thresholds=0.5, evidence_threshold=0.8)[0]["FATIGUE"]] == [POST[1]]
    assert pred.evidence(thresholds=0.95)[0] == {}  # nothing predicted: no evidence
    scores = pred.sentence_scores()[0]
    assert [s["sentence"] for s in scores] == [0, 1, 2, 3]
    assert scores[1]["probabilities"]["FATIGUE"] == pytest.approx(0.9) and scores[1]["start"] == 19


def test_sentence_metrics_score_the_evidence_spans_and_the_sentence_decisions(tok):
    labels = [0] * 9
    labels[J] = 1
    a = record(
        "a",
        POST,
        labels=labels,
        sentence_labels={"FATIGUE": [[1, 1], [3, -1]]},
        evidence=[{"symptom": "FATIGUE", "start": 19, "end": 35}],
    )
    b = record("b", POST[:2])  # no symptom
    sp = np.zeros((6, 9), dtype=np.float32)
    sp[:4, J] = [0.2, 0.8, 0.6, 0.7]  # post a: sentence 1 right, 2 unknown (positive post), 3 a false positive
    sp[4:, J] = [0.1, 0.9]  # post b: sentence 1 a false positive
    post = np.zeros((2, 9), dtype=np.float32)
    post[0, J] = 0.9
    pred = _prediction(tok, [a, b], sp, post)
    m = pred.metrics([a, b])
    s = m["sentences"]["per_symptom"]["FATIGUE"]
    # known FATIGUE cells: a1 (1), a3 (0, rejected), b0 (0), b1 (0); a0 and a2 are unknown (a positive post)
    assert s["n"] == 4 and s["support"] == 1
    assert (s["precision"], s["recall"]) == pytest.approx((1 / 3, 1.0)) and s["f1"] == pytest.approx(0.5)
    assert m["sentences"]["macro_f1"] == pytest.approx(0.5) and m["sentences"]["threshold"] == 0.5
    assert m["sentences"]["per_symptom"]["ANHEDONIA"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "n": 6,
    }
    # evidence: post a's FATIGUE evidence = sentences 1, 2, 3 (passing 0.5) vs gold sentence 1; every other
    # (post, symptom) pair: no gold, nothing predicted
    ev = m["evidence"]
    assert ev["n"] == 18 and ev["n_null"] == 17 and ev["n_incomplete_excluded"] == 0
    assert ev["exact_match"] == pytest.approx(17 / 18)
    # gold "I feel so tired." (16 characters) in the predicted sentences 1-3 merged (56 characters)
    assert ev["char_f1"] == pytest.approx((17 + 2 * 16 / (16 + 56)) / 18, rel=1e-6)
    tighter = pred.metrics([a, b], evidence_threshold=0.75)
    assert tighter["evidence"]["exact_match"] == 1.0 and tighter["sentences"]["threshold"] == 0.75


def test_sentence_threshold_counts_are_the_micro_counts_sentence_metrics_scores_at_each_threshold(tok):
    labels = [0] * 9
    labels[J] = 1
    a = record("a", POST, labels=labels, sentence_labels={"FATIGUE": [[1, 1], [3, -1]]})
    b = record("b", POST[:2])
    sp = np.zeros((6, 9), dtype=np.float32)
    sp[:4, J] = [0.2, 0.8, 0.6, 0.7]
    sp[4:, J] = [0.1, 0.9]
    ex = build_examples([a, b], tok, SENTENCES, 32)
    counts = sentence_threshold_counts(ex, [a, b], sp, grid=[0.5, 0.75, 0.85, 0.95])
    assert counts == {"grid": [0.5, 0.75, 0.85, 0.95], "tp": [1, 1, 0, 0], "fp": [2, 1, 1, 0], "fn": [0, 0, 1, 1]}
    for k, t in enumerate(counts["grid"]):
        m = sentence_metrics(ex, [a, b], sp, t)
        tp, fp, fn = counts["tp"][k], counts["fp"][k], counts["fn"][k]
        assert m["micro_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)


def test_sentence_metrics_count_unread_gold_sentences_as_missed(tok):
    labels = [0] * 9
    labels[J] = 1
    rec = record("cap", LONG, labels=labels, sentence_labels={"FATIGUE": [[3, 1]]})
    ex = build_examples([rec], tok, SENTENCES.replace(max_windows=1), 32)
    sp = np.ones((len(ex.units), 9), dtype=np.float32)
    m = sentence_metrics(ex, [rec], sp, 0.5)
    assert m["per_symptom"]["FATIGUE"]["recall"] == 0.0 and m["n_sentences_not_read"] == 4 - len(ex.units)


# -- settings --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over,where,fix",
    [
        (
            {"input_format": "binary_pairs"},
            "input_format: binary_pairs cannot be combined with criteria_from: sentences",
            "choose input_format: multi_label, or criteria_from: post",
        ),
        (
            {"evidence_task": True},
            "evidence_task: true cannot be combined with criteria_from: sentences",
            "choose evidence_task: false, or criteria_from: post",
        ),
    ],
)
def test_unsupported_combinations_are_refused_naming_both_settings_and_the_fix(repo, over, where, fix):
    from workflow_lib import config

    with pytest.raises(ConfigError, match=rf"{where}.*{fix}"):
        Training.resolve({"criteria_from": "sentences", **over})
    Training.resolve(over)  # fine with post
    with pytest.raises(ConfigError, match=rf"training\.{where}"):  # the whole config
        config.load(repo / "config" / "config.yaml", overrides={"training": {"criteria_from": "sentences", **over}})
    with pytest.raises(ConfigError, match=rf"hpo.search_space.criteria_from: value 'sentences'.*{where}"):
        check_search_space(
            {"criteria_from": {"type": "categorical", "choices": ["sentences"]}}, dict(CFG.replace(**over))
        )


def test_sentence_settings_are_inert_in_post_mode_and_post_settings_in_sentence_mode(smoke_config):
    post = effective_config(CFG)
    assert not {"criteria_from", "sentence_aggregation", "sentence_loss_weight", "hard_negative_weight"} & set(post)
    spec = smoke_config["encoders"]["tiny-a"]

    def key(cfg):
        return keys.trial_key("d" * 12, spec, cfg)

    k = key(CFG)
    assert key(CFG.replace(sentence_aggregation="noisy_or", hard_negative_weight=0.0, sentence_loss_weight=3.0)) == k
    s = CFG.replace(criteria_from="sentences")
    assert key(s) != k
    assert key(s.replace(pooling="max", window_aggregation="attention")) == key(s)  # unused by the sentence model
    assert key(s.replace(sentence_aggregation="logsumexp")) != key(s)
    assert key(s.replace(hard_negative_weight=1.0)) != key(s) != key(s.replace(sentence_loss_weight=0.5))
    # sentence_pos_weight: none trains what the sentence model trained before the setting, so it keeps its key
    none = s.replace(sentence_pos_weight="none")
    assert key(none) != key(s) and "sentence_pos_weight" not in effective_config(none)
    assert effective_config(s)["sentence_pos_weight"] == "balanced"
    with pytest.raises(ConfigError, match=r"sentence_aggregation: never used.*criteria_from is one of sentences"):
        check_search_space({"sentence_aggregation": {"type": "categorical", "choices": ["max", "noisy_or"]}}, dict(CFG))


def test_the_sentence_settings_are_searched_only_where_the_sentence_model_uses_them(repo):
    import optuna

    from workflow_lib import config
    from workflow_lib.config.search_space import suggest, trial_training_config

    raw = {
        "criteria_from": {"type": "categorical", "choices": ["post", "sentences"]},
        "pooling": {"type": "categorical", "choices": ["mean", "max"]},
        "sentence_aggregation": {"type": "categorical", "choices": ["max", "noisy_or", "attention"]},
        "hard_negative_weight": {"type": "float", "low": 0.0, "high": 4.0},
    }
    check_search_space(raw, dict(CFG))
    cfg = config.load(repo / "config" / "config.yaml", overrides={"hpo": {"search_space": raw}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, cfg.hpo.search_space, cfg.training)
        tcfg = trial_training_config(cfg.training, params)
        sentences = tcfg.criteria_from == "sentences"
        assert ("sentence_aggregation" in params) == ("hard_negative_weight" in params) == sentences
        assert ("pooling" in params) == (not sentences)
        seen.add(tcfg.criteria_from)
        study.tell(trial, 0.0)
    assert seen == {"post", "sentences"}


# -- learning: a cue sentence anywhere in long posts -----------------------------------------------------------

FILLER = [
    "we", "walked", "the", "dog", "to", "park", "and", "cooked", "pasta", "for", "dinner", "while", "rain",
    "fell", "on", "roof", "near", "river", "my", "brother", "drove", "car", "city",
]  # fmt: skip
CUE = "i feel exhausted"
DECOYS = ["i feel happy", "she was tired", "they feel fine", "the dog is tired", "i was late", "we feel calm"]


def needle_posts(n, seed):
    """Posts of 11-16 sentences (about 3.6 windows of 32 tokens): filler, two decoy sentences a clinician
    would reject (coded -1 for FATIGUE) and, in every second post, the cue sentence anywhere (FATIGUE, coded 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        positive = i % 2 == 0
        sents = [" ".join(rng.choice(FILLER, int(rng.integers(4, 8)))) for _ in range(int(rng.integers(9, 14)))]
        at = int(rng.integers(0, len(sents) + 1))
        sents[at:at] = [str(x) for x in rng.choice(DECOYS, 2, replace=False)]
        if positive:
            sents.insert(int(rng.integers(0, len(sents) + 1)), CUE)
        labels = [0] * 9
        labels[J] = int(positive)
        codes = [[k, 1 if s == CUE else -1] for k, s in enumerate(sents) if s == CUE or s in DECOYS]
        rec = record(f"n{seed}-{i}", [s[0].upper() + s[1:] + "." for s in sents], labels, {"FATIGUE": codes})
        rec["evidence"] = [
            {"symptom": "FATIGUE", "start": rec["sentences"][k][0], "end": rec["sentences"][k][1]}
            for k, code in codes
            if code == 1
        ]
        out.append(rec)
    return out


def test_sentence_labels_find_a_cue_sentence_the_post_level_model_misses_on_the_same_budget():
    """Same tiny BERT, epochs, rates and seed; 160 training posts, 80 held-out ones (half positive).
    Measured (7 training seeds): sentences 1.0 held-out accuracy on each, post 0.5 on each (it has not
    separated the posts at threshold 0.5 after 12 epochs), with sentences read in their windows; read alone (the
    main job's reading, tested here) 1.0 on this seed; each run takes 5-10 s on 2 cores."""
    train_posts, test_posts = needle_posts(160, 0), needle_posts(80, 1)
    y = np.asarray([r["labels"][J] for r in test_posts])
    accuracy, preds = {}, {}
    for mode, context in (("post", "window"), ("sentences", "alone")):  # the main job's sentence reading
        cfg = CFG.replace(epochs=12, head_learning_rate=3e-2, criteria_from=mode).replace(sentence_context=context)
        r = train(TINY, cfg, train_posts)
        preds[mode] = predict(r.model, r.tokenizer, test_posts, cfg, max_length=32)
        accuracy[mode] = float(((preds[mode].probs[:, J] >= 0.5) == y).mean())
    assert preds["sentences"].examples.n_windows / len(test_posts) > 3  # long posts: several windows each
    assert accuracy["sentences"] >= 0.9 and accuracy["post"] <= 0.7, accuracy
    # the evidence of the found symptom is the cue sentence, from the same scores
    evidence = preds["sentences"].evidence(thresholds=0.5)
    hits = [
        [e["text"] for e in ev.get("FATIGUE", [])] == [CUE.capitalize() + "."]
        for ev, label in zip(evidence, y)
        if label
    ]
    assert np.mean(hits) >= 0.9, np.mean(hits)
    m = preds["sentences"].metrics(test_posts)
    assert m["sentences"]["per_symptom"]["FATIGUE"]["f1"] >= 0.9 and m["evidence"]["exact_match"] >= 0.9
