"""Sentence splitting and evidence alignment on hand-made cases and on the paraphrased sample."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_lib.data.align import align, covered_sentences, normalise, similarity, split_sentences

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "redsm5_sample"


def _texts(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_split_sentences_basic_terminators_and_spans():
    text = "I can't sleep. Why?  I wake at 3am!\nNew line without stop\n\nLast one…  Really."
    assert _texts(text) == ["I can't sleep.", "Why?", "I wake at 3am!", "New line without stop", "Last one…", "Really."]


def test_split_sentences_keeps_abbreviations_and_quotes():
    text = 'I saw Dr. Smith today, e.g. about sleep. She said "rest more." Then I left.'
    assert _texts(text) == ["I saw Dr. Smith today, e.g. about sleep.", 'She said "rest more."', "Then I left."]


def test_split_sentences_no_terminator_and_empty():
    assert _texts("just one fragment") == ["just one fragment"]
    assert split_sentences("") == [] and split_sentences("   \n ") == []


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(st.lists(st.text(alphabet="abc .!?\n", min_size=0, max_size=12), max_size=6))
def test_split_spans_are_ordered_trimmed_and_cover_all_text(parts):
    text = "".join(parts)
    spans = split_sentences(text)
    prev = 0
    for s, e in spans:
        assert prev <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert text[prev:s].strip() == ""  # nothing but whitespace between sentences
        prev = e
    assert text[prev:].strip() == ""


def test_exact_match_verbatim():
    post = "I moved last year. I can't sleep at night. Thanks for reading."
    hit = align(post, "I can't sleep at night.", 0.5)
    assert hit == {"start": 19, "end": 42, "match": "exact", "similarity": 1.0}
    assert post[hit["start"] : hit["end"]] == "I can't sleep at night."


def test_exact_match_after_normalisation_maps_back_to_original_offsets():
    post = "Intro here.  I  can\u2019t   SLEEP\nat night \u2014 ever\u2026 Bye."
    hit = align(post, "I can't sleep at night - ever...", 0.9)
    assert hit["match"] == "exact" and hit["similarity"] == 1.0
    assert post[hit["start"] : hit["end"]] == "I  can\u2019t   SLEEP\nat night \u2014 ever\u2026"


def test_nearest_match_for_paraphrase():
    post = (
        "Work has been busy. My elderly parents supported me the whole time, and I feel incredibly guilty "
        "about it. The weather is nice."
    )
    hit = align(post, "I feel incredibly guilty about this.", 0.5)
    assert hit["match"] == "nearest"
    assert 0.5 <= hit["similarity"] < 1.0
    assert post[hit["start"] : hit["end"]].startswith("My elderly parents")


def test_nearest_can_span_two_adjacent_sentences():
    post = "Hello there. I can't go to college alone. Without support I will give up. Bye now."
    hit = align(post, "I can't go to college alone, without support I will give up.", 0.5)
    assert hit["match"] == "nearest"
    assert post[hit["start"] : hit["end"]] == "I can't go to college alone. Without support I will give up."


def test_unaligned_below_threshold_and_threshold_is_respected():
    post = "We went hiking on Sunday. The view was great."
    hit = align(post, "I feel worthless and guilty all the time.", 0.5)
    assert hit["match"] == "unaligned" and hit["start"] is None and hit["end"] is None
    assert 0.0 <= hit["similarity"] < 0.5
    para = align(post, "On Sunday we went hiking.", 0.0)
    assert para["match"] == "nearest"
    strict = align(post, "On Sunday we went hiking.", 0.99)
    assert strict["match"] == "unaligned" and strict["similarity"] == para["similarity"]


def test_empty_inputs_are_unaligned():
    assert align("Some post.", "", 0.5)["match"] == "unaligned"
    assert align("", "Some sentence.", 0.5)["match"] == "unaligned"


def test_similarity_bounds_and_normalise():
    assert similarity("Same text.", "same  TEXT.") == 1.0
    assert 0.0 <= similarity("abc", "xyz") < 0.3
    assert normalise("  \u201cHi\u201d \u2014 it\u2019s\u2026 ") == '"hi" - it\'s...'


def test_paraphrased_sample_aligns_several_nearest_and_never_crashes():
    posts = {r["post_id"]: r["text"] for r in csv.DictReader(open(SAMPLE / "posts.csv", encoding="utf-8"))}
    rows = list(csv.DictReader(open(SAMPLE / "annotations.csv", encoding="utf-8")))
    matches = [align(posts[r["post_id"]], r["sentence_text"], 0.5) for r in rows]
    kinds = [m["match"] for m in matches]
    assert kinds.count("exact") == 0  # nothing occurs verbatim in the paraphrased sample
    assert kinds.count("nearest") >= 8
    assert kinds.count("unaligned") >= 1
    by_sentence = {r["sentence_text"]: m for r, m in zip(rows, matches)}
    hit = by_sentence["I feel incredibly guilty about this."]
    assert "I feel incredibly guilty about it." in posts["s_993_557"][hit["start"] : hit["end"]]
    hit = by_sentence["I just can't stop crying now."]
    assert posts["s_2338_920"][hit["start"] : hit["end"]].startswith("Now I can\u2019t stop crying")


def test_covered_sentences_maps_a_span_to_the_sentences_it_touches():
    text = "Hello there. I can't go to college alone. Without support I will give up. Bye now."
    spans = split_sentences(text)
    assert covered_sentences(spans, *spans[1]) == [1]
    assert covered_sentences(spans, spans[1][0], spans[2][1]) == [1, 2]  # a pair
    assert covered_sentences(spans, spans[1][0] + 2, spans[1][0] + 5) == [1]  # part of one sentence
    assert covered_sentences(spans, spans[0][1] - 3, spans[1][0] + 1) == [0, 1]  # runs over a boundary
    assert covered_sentences(spans, spans[0][1], spans[1][0]) == []  # only the whitespace between two
    assert covered_sentences(spans, None, None) == [] and covered_sentences([], 0, 5) == []


def test_align_uses_the_sentences_it_is_given_and_finds_the_same_without_them():
    post = "Hello there. I can't go to college alone. Without support I will give up. Bye now."
    sentence = "I can't go to college alone, without support I will give up."
    spans = split_sentences(post)
    hit = align(post, sentence, 0.5, spans)
    assert hit == align(post, sentence, 0.5)
    assert covered_sentences(spans, hit["start"], hit["end"]) == [1, 2]
    # candidates come from the spans passed in: with one span over the whole post, that is the match
    whole = align(post, sentence, 0.0, [(0, len(post))])
    assert (whole["start"], whole["end"]) == (0, len(post))


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(st.lists(st.sampled_from(["I sleep.", "Bad day!", "Why?", "ok", "\n", " "]), min_size=1, max_size=8))
def test_every_nearest_match_is_one_sentence_or_two_adjacent(parts):
    text = " ".join(parts)
    spans = split_sentences(text)
    hit = align(text, "I sleep badly.", 0.0, spans)
    if hit["match"] == "nearest":
        covered = covered_sentences(spans, hit["start"], hit["end"])
        assert covered and len(covered) <= 2 and covered == list(range(covered[0], covered[-1] + 1))
        assert (hit["start"], hit["end"]) == (spans[covered[0]][0], spans[covered[-1]][1])
