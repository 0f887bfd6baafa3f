"""Character spans <-> BIO tags, sentence ids and evidence metrics (hand-computed values)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from workflow_lib.data.align import split_sentences
from workflow_lib.learning.spans import (
    IGNORE,
    canonical_spans,
    char_spans_to_tags,
    evidence_char_spans,
    evidence_is_complete,
    evidence_metrics,
    merge_spans,
    sentence_ids,
    tags_to_token_spans,
    token_spans_to_char_spans,
)

TEXT = "I feel sad. I cannot sleep at night."
#       0123456789012345678901234567890123456
# words: I(0,1) feel(2,6) sad(7,10) .(10,11) I(12,13) cannot(14,20) sleep(21,26) at(27,29)
#        night(30,35) .(35,36); sentences (0,11) and (12,36)
X = IGNORE


def _encode(text, max_tokens=None, pad_to=None):
    """A toy tokenizer: [CLS] words/punctuation [SEP] [PAD]..., offsets like a fast tokenizer's."""
    toks = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
    if max_tokens is not None:
        toks = toks[:max_tokens]
    offsets = [(0, 0)] + toks + [(0, 0)]
    eligible = [False] + [True] * len(toks) + [False]
    while pad_to is not None and len(offsets) < pad_to:
        offsets.append((0, 0))
        eligible.append(False)
    return offsets, eligible


def test_toy_tokenizer_and_sentences():
    offsets, eligible = _encode(TEXT)
    assert offsets[1:-1] == [
        (0, 1),
        (2, 6),
        (7, 10),
        (10, 11),
        (12, 13),
        (14, 20),
        (21, 26),
        (27, 29),
        (30, 35),
        (35, 36),
    ]
    assert split_sentences(TEXT) == [(0, 11), (12, 36)]


# -- char_spans_to_tags --------------------------------------------------------------------------


def test_tags_one_sentence_span_with_padding():
    offsets, eligible = _encode(TEXT, pad_to=13)
    assert char_spans_to_tags(offsets, [(12, 36)], eligible) == [X, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, X, X]


def test_tags_two_adjacent_sentences_get_two_b():
    offsets, eligible = _encode(TEXT)
    assert char_spans_to_tags(offsets, [(12, 36), (0, 11)], eligible) == [X, 1, 2, 2, 2, 1, 2, 2, 2, 2, 2, X]


def test_tags_overlap_rule_and_mid_word_span():
    offsets, eligible = _encode(TEXT)
    # "eel s" touches "feel" and "sad"
    assert char_spans_to_tags(offsets, [(3, 8)], eligible) == [X, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, X]
    # a token straddling two spans continues the first; the next token shares the second -> I
    assert char_spans_to_tags(offsets, [(2, 4), (5, 8)], eligible) == [X, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, X]
    # overlapping and duplicated gold spans are one span; None spans (unaligned) are ignored
    assert char_spans_to_tags(offsets, [(12, 20), (14, 26), (12, 20), (None, None)], eligible) == [
        X,
        0,
        0,
        0,
        0,
        1,
        2,
        2,
        0,
        0,
        0,
        X,
    ]
    assert char_spans_to_tags(offsets, [], eligible) == [X] + [0] * 10 + [X]


def test_tags_truncation_keeps_visible_part_and_drops_invisible_spans():
    offsets, eligible = _encode(TEXT, max_tokens=6)  # [CLS] I feel sad . I cannot [SEP]
    assert char_spans_to_tags(offsets, [(12, 36)], eligible) == [X, 0, 0, 0, 0, 1, 2, X]
    assert char_spans_to_tags(offsets, [(21, 36)], eligible) == [X, 0, 0, 0, 0, 0, 0, X]


def test_tags_text_pair_second_segment_is_ignored():
    offsets, eligible = _encode(TEXT, max_tokens=4)  # [CLS] I feel sad . [SEP]
    offsets = offsets + [(0, 3), (4, 9), (0, 0)]  # "Low mood" [SEP]: offsets into the other text
    eligible = eligible + [False, False, False]
    assert char_spans_to_tags(offsets, [(0, 11)], eligible) == [X, 1, 2, 2, 2, X, X, X, X]


def test_tags_length_mismatch_raises():
    with pytest.raises(ValueError, match="positions"):
        char_spans_to_tags([(0, 1)], [], [True, False])


# -- sentence_ids -----------------------------------------------------------------------------------


def test_sentence_ids():
    offsets, eligible = _encode(TEXT, pad_to=13)
    assert sentence_ids(offsets, split_sentences(TEXT), eligible) == [-1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, -1, -1]


def test_sentence_ids_straddling_and_whitespace_tokens():
    sents = [(0, 11), (12, 36)]
    offsets = [(9, 14), (10, 15), (11, 12), (0, 0), (3, 4)]
    # (9,14): 2 chars in each -> the earlier; (10,15): 1 vs 3 -> second; whitespace and empty -> -1;
    # a non-eligible token is -1 whatever its offsets
    assert sentence_ids(offsets, sents, [True, True, True, True, False]) == [0, 1, -1, -1, -1]


# -- tags_to_token_spans / token_spans_to_char_spans ----------------------------------------------------


def test_tags_to_token_spans_rules():
    tags = [X, 0, 1, 2, 0, 2, 2, 1, 1, X, 2, 0]
    expected = [(2, 4), (5, 7), (7, 8), (8, 11)]  # O I opens; B closes and opens; -100 is transparent
    assert tags_to_token_spans(tags) == expected
    assert tags_to_token_spans(torch.tensor(tags)) == expected
    assert tags_to_token_spans([X, 0, 0, X]) == []
    assert tags_to_token_spans([1, 2, 2]) == [(0, 3)]


def test_token_spans_to_char_spans():
    offsets, _ = _encode(TEXT)
    assert token_spans_to_char_spans([(5, 11)], offsets) == [(12, 36)]
    assert token_spans_to_char_spans([(0, 2)], offsets) == [(0, 1)]  # [CLS] skipped
    assert token_spans_to_char_spans([(11, 12)], offsets) == []  # only a special token
    # "feel" and "sad" are separated by a space: kept apart; "sad" and "." touch: merged
    assert token_spans_to_char_spans([(2, 3), (3, 4)], offsets) == [(2, 6), (7, 10)]
    assert token_spans_to_char_spans([(4, 5), (3, 4)], offsets) == [(7, 11)]
    assert token_spans_to_char_spans([(5, 8), (6, 11)], offsets) == [(12, 36)]


def test_round_trip_token_aligned_spans():
    offsets, eligible = _encode(TEXT)
    for spans in ([(12, 36)], [(0, 11), (12, 36)], [(2, 6), (21, 29)], []):
        tags = char_spans_to_tags(offsets, spans, eligible)
        assert token_spans_to_char_spans(tags_to_token_spans(tags), offsets) == spans


def test_merge_spans():
    assert merge_spans([(5, 8), (0, 3), (3, 4), (7, 9), (10, 10)]) == [(0, 4), (5, 9)]
    assert merge_spans([(0, 11), (12, 36)]) == [(0, 11), (12, 36)]
    assert merge_spans([(0, 11), (12, 36)], TEXT) == [(0, 36)]
    assert merge_spans([(0, 6), (10, 11)], TEXT) == [(0, 6), (10, 11)]


# -- records -------------------------------------------------------------------------------------------


def _record(labels_on, evidence):
    from workflow_lib.symptoms import INDEX, SYMPTOMS

    labels = [0] * len(SYMPTOMS)
    for s in labels_on:
        labels[INDEX[s]] = 1
    return {"post_id": "p", "text": TEXT, "labels": labels, "evidence": evidence}


def _ev(symptom, start, end):
    return {
        "symptom": symptom,
        "sentence_id": "x",
        "sentence_text": "",
        "start": start,
        "end": end,
        "match": "unaligned" if start is None else "exact",
        "similarity": 1.0,
    }


def test_evidence_char_spans_and_completeness():
    rec = _record(
        ["DEPRESSED_MOOD", "SLEEP_ISSUES", "WORTHLESSNESS"],
        [
            _ev("DEPRESSED_MOOD", 0, 11),
            _ev("WORTHLESSNESS", 0, 11),
            _ev("SLEEP_ISSUES", 12, 36),
            _ev("SLEEP_ISSUES", None, None),
        ],
    )
    assert evidence_char_spans(rec) == [(0, 11), (12, 36)]  # duplicate rows once, unaligned skipped
    assert evidence_char_spans(rec, ["SLEEP_ISSUES"]) == [(12, 36)]
    assert evidence_char_spans(rec, ["FATIGUE"]) == []
    assert not evidence_is_complete(rec)  # one SLEEP_ISSUES row is unaligned
    assert not evidence_is_complete(rec, ["SLEEP_ISSUES"])
    assert evidence_is_complete(rec, ["DEPRESSED_MOOD", "WORTHLESSNESS"])
    assert evidence_is_complete(rec, ["FATIGUE"])  # label 0, no rows: a true null
    # a positive label without any evidence row (prepare's "no_sentence") is not a true null
    assert not evidence_is_complete(_record(["FATIGUE"], []))
    assert evidence_is_complete(_record([], []))


# -- metrics -------------------------------------------------------------------------------------------


def test_canonical_spans():
    assert canonical_spans(TEXT, [(11, 36)]) == [(12, 36)]  # leading space stripped
    assert canonical_spans(TEXT, [(0, 11), (12, 36)]) == [(0, 36)]  # whitespace gap merged
    assert canonical_spans(TEXT, [(30, 99), (None, None), (11, 12)]) == [(30, 36)]  # clipped; blank dropped
    assert canonical_spans(TEXT, None) == []


def test_evidence_metrics_hand_computed():
    texts = [TEXT] * 5
    gold = [[(12, 36)], [(12, 36)], [(12, 36)], [], []]
    pred = [[(11, 36)], [(0, 11)], [(21, 36)], [], [(0, 1)]]
    m = evidence_metrics(texts, gold, pred)
    # exact: 1, 0, 0, 1 (both empty), 0
    assert m["exact_match"] == pytest.approx(2 / 5)
    # chars: 1; 0 (disjoint); gold 24 chars, pred "sleep at night." 15 chars all inside -> 30/39; 1; 0
    assert m["char_f1"] == pytest.approx((1 + 0 + 30 / 39 + 1 + 0) / 5)
    # words: gold = I cannot sleep at night. (5), pred = sleep at night. (3) -> 6/8
    assert m["token_f1"] == pytest.approx((1 + 0 + 6 / 8 + 1 + 0) / 5)
    # has-no-span decisions: right, right, right, right, wrong
    assert m["null_span_accuracy"] == pytest.approx(4 / 5)
    assert (m["n"], m["n_null"]) == (5, 2)


def test_evidence_metrics_partial_word_and_merged_spans():
    m = evidence_metrics([TEXT], [[(14, 20)]], [[(14, 16)]])  # gold "cannot", pred "ca"
    assert m["exact_match"] == 0.0
    assert m["char_f1"] == pytest.approx(2 * 2 / (6 + 2))
    assert m["token_f1"] == 1.0  # the word "cannot" counts as covered
    # two predicted sentences equal one gold span over both (prepare's sentence-pair alignment)
    m = evidence_metrics([TEXT], [[(0, 36)]], [[(0, 11), (12, 36)]])
    assert m["exact_match"] == m["char_f1"] == m["token_f1"] == m["null_span_accuracy"] == 1.0
    # two gold spans, one found: chars 11 of 11+24 -> 2*11/(35+11); words 3 of 8 -> 2*3/(8+3)
    text = "I feel sad. Nothing else. I cannot sleep at night."
    m = evidence_metrics([text], [[(0, 11), (26, 50)]], [[(0, 11)]])
    assert m["char_f1"] == pytest.approx(2 * 11 / (35 + 11))
    assert m["token_f1"] == pytest.approx(2 * 3 / (8 + 3))
    assert m["exact_match"] == 0.0 and m["null_span_accuracy"] == 1.0


def test_evidence_metrics_empty_and_mismatch():
    m = evidence_metrics([], [], [])
    assert m["n"] == 0 and m["n_null"] == 0 and math.isnan(m["exact_match"]) and math.isnan(m["char_f1"])
    with pytest.raises(ValueError, match="length"):
        evidence_metrics([TEXT], [], [[]])
