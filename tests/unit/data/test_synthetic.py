"""The embedded generator: determinism, quota rates, real-set lengths, evidence anywhere, hard cases."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import fields
from importlib import resources

import pytest

from workflow_lib.config import Data, keys, load_schema
from workflow_lib.data.align import split_sentences
from workflow_lib.data.loader import source_fingerprint
from workflow_lib.data.prepare import load_prepared, prepare
from workflow_lib.data.synthetic import (
    GENERATOR_VERSION,
    GENERATOR_VERSIONS,
    HARD_KINDS,
    REAL_COUNTS,
    REAL_NONE,
    REAL_POSTS,
    REAL_SPECIAL_CASE,
    TOPIC_WEIGHTS,
    V3_FRAMED,
    V3_HARD_KINDS,
    Phrases,
    PhrasesError,
    PhrasesV3,
    _third_person,
    generate,
    load_phrases,
    load_phrases_v3,
    phrases,
    phrases_v3,
)
from workflow_lib.symptoms import EXTRA_LABELS, SYMPTOMS

FILES = ("posts.csv", "annotations.csv", "README.md")
csv.field_size_limit(1 << 30)


def _read(out):
    posts = list(csv.DictReader(open(out / "posts.csv", encoding="utf-8", newline="")))
    anns = list(csv.DictReader(open(out / "annotations.csv", encoding="utf-8", newline="")))
    return posts, anns


def _present(anns) -> dict[str, set]:
    present = defaultdict(set)
    for a in anns:
        if a["status"] == "1" and a["DSM5_symptom"] in SYMPTOMS:
            present[a["post_id"]].add(a["DSM5_symptom"])
    return present


def _quota(n: int, count: int) -> int:
    return int(n * count / REAL_POSTS + 0.5)


@pytest.fixture(scope="module")
def real_size(tmp_path_factory):
    """A set of the real ReDSM5's size, 1,484 posts (seed 13)."""
    out = tmp_path_factory.mktemp("gen_1484")
    stats = generate(out, n_posts=1484, seed=13, version="2")
    return (out, stats, *_read(out))


def test_the_default_generator_is_version_3():
    assert GENERATOR_VERSION == "3"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, n_posts=120, seed=5, version="2")
    generate(b, n_posts=120, seed=5, version="2")
    generate(c, n_posts=120, seed=6, version="2")
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "posts.csv").read_bytes() != (c / "posts.csv").read_bytes()
    assert (a / "annotations.csv").read_bytes() != (c / "annotations.csv").read_bytes()


def test_format_matches_redsm5(tmp_path):
    stats = generate(tmp_path, version="2")  # the default size
    posts, anns = _read(tmp_path)
    with open(tmp_path / "posts.csv", encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == ["post_id", "text"]
    with open(tmp_path / "annotations.csv", encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == [
            "post_id",
            "sentence_id",
            "sentence_text",
            "DSM5_symptom",
            "status",
            "explanation",
        ]
    assert len(posts) == 800 == stats["n_posts"] and stats["generator_version"] == "2"
    assert all(re.fullmatch(r"g_\d{4}_\d{1,3}", p["post_id"]) for p in posts)
    assert len({p["post_id"] for p in posts}) == len(posts)
    assert {a["status"] for a in anns} == {"0", "1"}
    assert {a["DSM5_symptom"] for a in anns} <= set(SYMPTOMS) | set(EXTRA_LABELS)
    assert all(a["explanation"].strip() for a in anns)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "seed=13" in readme and "version 2" in readme


@pytest.mark.parametrize("n", [50, 200, 600, 1484, 2000])
def test_symptom_counts_follow_the_real_set_for_any_size(tmp_path, n):
    """Quotas, not coin flips: each symptom is in round(n * real_count / 1484) posts."""
    stats = generate(tmp_path, n_posts=n, seed=n, version="2")
    posts, anns = _read(tmp_path)
    present = _present(anns)
    realised = {s: sum(s in present[p["post_id"]] for p in posts) for s in SYMPTOMS}
    assert realised == {s: _quota(n, REAL_COUNTS[s]) for s in SYMPTOMS} == stats["per_symptom"]
    none = sum(not present[p["post_id"]] for p in posts)
    assert none == _quota(n, REAL_NONE) == stats["no_symptom"]


def test_real_size_reproduces_the_real_counts(real_size):
    _, stats, _, _ = real_size
    assert stats["per_symptom"] == REAL_COUNTS and stats["no_symptom"] == REAL_NONE
    assert stats["per_symptom"]["PSYCHOMOTOR"] == 35 and stats["per_symptom"]["DEPRESSED_MOOD"] == 328


def test_a_600_post_set_still_has_its_rare_symptoms(tmp_path):
    stats = generate(tmp_path, n_posts=600, seed=13, version="2")
    assert stats["per_symptom"]["PSYCHOMOTOR"] == 14 and stats["per_symptom"]["APPETITE_CHANGE"] == 18


def test_most_symptomatic_posts_show_one_symptom_and_combinations_exist(real_size):
    _, _, posts, anns = real_size
    sizes = Counter(len(v) for v in _present(anns).values())
    assert sizes[1] > 0.7 * sum(sizes.values())
    assert sizes[2] > 50 and max(sizes) <= 4


def test_tiny_sets_are_consistent(tmp_path):
    for n in range(1, 25):
        stats = generate(tmp_path / str(n), n_posts=n, seed=n, version="2")
        posts, anns = _read(tmp_path / str(n))
        assert len(posts) == n
        present = _present(anns)
        assert stats["no_symptom"] == sum(not present[p["post_id"]] for p in posts)
        assert sum(stats["per_symptom"].values()) == sum(len(v) for v in present.values())


def test_lengths_are_shaped_like_the_real_set(real_size):
    """ReDSM5: 294.7 words per post on average, 2 at least, 6,990 at most."""
    _, stats, posts, _ = real_size
    words = [len(p["text"].split()) for p in posts]
    assert 270 <= statistics.mean(words) <= 320
    assert 160 <= statistics.median(words) <= 210
    assert min(words) <= 5
    assert 3 <= sum(w <= 15 for w in words) <= 40  # a few very short posts
    assert max(words) >= 3000 and sum(w > 2000 for w in words) >= 3  # a long tail into the thousands
    assert stats["words"]["max"] == max(words) and stats["words"]["min"] == min(words)
    assert stats["words"]["mean"] == round(statistics.mean(words), 1)


def test_lengths_hold_for_a_600_post_set(tmp_path):
    stats = generate(tmp_path, n_posts=600, seed=14, version="2")
    assert 265 <= stats["words"]["mean"] <= 325 and 160 <= stats["words"]["p50"] <= 210
    assert stats["words"]["max"] >= 2000


def test_evidence_is_verbatim_and_matches_sentence_id(real_size):
    _, _, posts, anns = real_size
    text = {p["post_id"]: p["text"] for p in posts}
    spans_of = {}
    for a in anns:
        post = text[a["post_id"]]
        spans = spans_of.setdefault(a["post_id"], split_sentences(post))
        assert a["sentence_id"].startswith(a["post_id"] + "_")
        s, e = spans[int(a["sentence_id"].rsplit("_", 1)[1])]
        assert post[s:e] == a["sentence_text"]
        assert post.count(a["sentence_text"]) == 1  # located unambiguously


def test_evidence_falls_anywhere_in_the_post(real_size):
    """Uniform positions: evidence near the start, the middle and the end, and deep in long posts."""
    _, _, posts, anns = real_size
    text = {p["post_id"]: p["text"] for p in posts}
    rel, deep = [], 0
    for a in anns:
        if a["status"] != "1":
            continue
        post = text[a["post_id"]]
        start = post.index(a["sentence_text"])
        if len(post) > 3000:
            rel.append(start / len(post))
        deep += start > 5000
    thirds = Counter(min(2, int(r * 3)) for r in rel)
    assert all(thirds[k] > 0.2 * len(rel) for k in range(3)), thirds
    assert deep >= 100


def test_paragraphs_and_short_posts(real_size):
    _, _, posts, anns = real_size
    assert sum("\n\n" in p["text"] for p in posts) > 0.5 * len(posts)
    assert not any("\n" in a["sentence_text"] for a in anns)
    present = _present(anns)
    short = [p for p in posts if len(p["text"].split()) <= 15]
    assert any(present[p["post_id"]] for p in short) and any(not present[p["post_id"]] for p in short)


def test_status0_rows_and_hard_cases_present(real_size):
    _, stats, posts, anns = real_size
    status0 = [a for a in anns if a["status"] == "0"]
    assert len(status0) >= 300 and stats["annotation_rows"]["status_0"] == len(status0)
    assert stats["annotation_rows"]["status_1"] == len(anns) - len(status0)
    assert set(stats["hard_negatives"]) == {"negation", "other_person", "past", "general", "other_sense"}
    assert all(k >= 50 for k in stats["hard_negatives"].values()), stats["hard_negatives"]
    explanations = Counter(a["explanation"] for a in status0)
    assert len(explanations) == 5  # every kind of hard negative carries status-0 rows
    # a post with a status-0 row only is a negative for that symptom
    pos = {(a["post_id"], a["DSM5_symptom"]) for a in anns if a["status"] == "1"}
    assert any((a["post_id"], a["DSM5_symptom"]) not in pos for a in status0)
    assert 10 <= stats["special_case_rows"] == sum(a["DSM5_symptom"] == "SPECIAL_CASE" for a in anns)


def test_negations_and_recovered_pasts_are_about_absent_symptoms(real_size):
    _, _, _, anns = real_size
    present = _present(anns)
    kinds = {
        "The sentence mentions the topic but denies having the problem.",
        "The sentence describes a past episode that the writer says is over.",
    }
    rows = [a for a in anns if a["status"] == "0" and a["explanation"] in kinds]
    assert rows and all(a["DSM5_symptom"] not in present[a["post_id"]] for a in rows)


def test_shared_vocabulary_between_positives_and_negatives(real_size):
    """A bag of words is not enough: symptom words also occur in posts without that symptom."""
    _, _, posts, anns = real_size
    present = _present(anns)
    neg = [p["text"].lower() for p in posts if not present[p["post_id"]]]
    for pattern in (
        r"\bsleep",
        r"tired|drained|exhaust",
        r"\bempty\b|\bsad\b|depress|hopeless",
        r"\bdie|dead|kill",
        r"worthless|useless|failure|guilty",
        r"\beat",
        r"focus|concentrat|forget",
    ):
        assert sum(re.search(pattern, t) is not None for t in neg) >= 30, pattern
    # openers and tails are not evidence markers: they occur outside evidence just as often
    evidence = {a["sentence_text"] for a in anns if a["status"] == "1"}
    sentences = [p["text"][s:e] for p in posts for s, e in split_sentences(p["text"])]
    other = [s for s in sentences if s not in evidence]
    rate = lambda group: sum(s.startswith(("Honestly", "Not gonna lie", "The thing is")) for s in group) / len(group)  # noqa: E731
    assert 0.5 < rate(other) / rate(list(evidence)) < 2


def test_many_distinct_rare_phrasings_per_symptom(real_size):
    _, _, _, anns = real_size
    for s in SYMPTOMS:
        sentences = [a["sentence_text"] for a in anns if a["status"] == "1" and a["DSM5_symptom"] == s]
        counts = Counter(sentences)
        assert len(counts) >= 0.8 * len(sentences), s  # most evidence sentences are worded once
        assert len(counts) >= 80, (s, len(counts))
    multi = Counter((a["post_id"], a["sentence_id"]) for a in anns if a["status"] == "1")
    assert any(v >= 2 for v in multi.values())  # one sentence carrying two symptoms


def test_generation_is_fast(tmp_path):
    t0 = time.process_time()
    generate(tmp_path, n_posts=1484, seed=21, version="2")
    assert time.process_time() - t0 < 5.0


def test_rejects_nonpositive_size(tmp_path):
    with pytest.raises(ValueError, match="n_posts must be positive"):
        generate(tmp_path, n_posts=0, version="2")


def test_bytes_do_not_depend_on_hash_seed(tmp_path):
    generate(tmp_path / "here", n_posts=80, seed=3, version="2")
    code = "import sys; from workflow_lib.data.synthetic import generate; generate(sys.argv[1], n_posts=80, seed=3, version='2')"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env, timeout=60)
    for name in FILES:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes(), name


# ---------------------------------------------------------------------------------------------
# generator version 3: the real set's evidence density, hard negatives, evidence a bag of words does not find easy

V3_N, V3_SEED = 600, 13
# The symptoms' stock words; most v3 evidence does without them.
STOCK_WORDS = {
    "DEPRESSED_MOOD": r"\b(sad|depress\w*|down|unhappy|hopeless|empty|miserable|cry\w*|blue|low)\b",
    "ANHEDONIA": r"\b(interest\w*|enjoy\w*|fun|motivation|pleasure)\b",
    "APPETITE_CHANGE": r"\b(appetite|hungry|eat\w*|weight|overeat\w*)\b",
    "SLEEP_ISSUES": r"\b(sleep\w*|insomnia|asleep)\b",
    "PSYCHOMOTOR": r"\b(restless\w*|agitat\w*|fidget\w*|slowed)\b",
    "FATIGUE": r"\b(tired|exhausted|energy|fatigue\w*|drained)\b",
    "WORTHLESSNESS": r"\b(worthless|failure|guilt\w*|hate myself|useless)\b",
    "COGNITIVE_ISSUES": r"\b(concentrat\w*|focus\w*|memory|decisions?|brain fog)\b",
    "SUICIDAL_THOUGHTS": r"\b(suicid\w*|kill\w* myself|die|ending my life|end things|alive)\b",
}


def _data_cfg(version: str, n_posts: int = V3_N, seed: int = V3_SEED) -> Data:
    return Data.resolve(
        {
            "source": "embedded",
            "embedded": {"n_posts": n_posts, "seed": seed, "generator": version},
            "split": {"seed": 42, "validation_fraction": 0.15, "test_fraction": 0.15},
            "n_folds": 2,
        }
    )


@pytest.fixture(scope="module")
def v3_set(tmp_path_factory):
    """A 600-post version-3 set prepared by the pipeline (seed 13, the default split, two folds)."""
    out = tmp_path_factory.mktemp("gen_v3")
    prepare(_data_cfg("3"), out, "v3")
    stats = generate(tmp_path_factory.mktemp("gen_v3_stats"), n_posts=V3_N, seed=V3_SEED, version="3")
    posts, anns = _read(out / "source")
    return out, stats, posts, anns


def _evidence_sentences(anns) -> dict[tuple[str, str], str]:
    """(post_id, sentence_id) -> text of every status-1 sentence of the nine symptoms."""
    return {
        (a["post_id"], a["sentence_id"]): a["sentence_text"]
        for a in anns
        if a["status"] == "1" and a["DSM5_symptom"] in SYMPTOMS
    }


def test_versions_are_the_config_choices():
    setting = load_schema("config")["properties"]["data"]["properties"]["embedded"]["properties"]["generator"]
    assert setting["enum"] == list(GENERATOR_VERSIONS) and setting["default"] == GENERATOR_VERSION == "3"
    assert _data_cfg("2").embedded["generator"] == "2"
    assert Data.resolve({"source": "embedded"}).embedded["generator"] == "3"  # the real density is the default


def test_the_version_enters_the_fingerprint_and_v2_keeps_its_data_key():
    """The data key hashes the source fingerprint: with generator 2 it is byte-identical to the one before the
    setting existed (cached data stay valid); generator 3 is another data set, so another key."""
    v2, v3 = _data_cfg("2", 800, 13), _data_cfg("3", 800, 13)
    before = {"kind": "embedded", "generator_version": "2", "n_posts": 800, "seed": 13}
    assert source_fingerprint(v2) == before
    assert keys.canonical_json(source_fingerprint(v2)) == keys.canonical_json(before)
    assert keys.data_key(source_fingerprint(v2), v2) == keys.data_key(before, v2)
    assert source_fingerprint(v3) == {**before, "generator_version": "3"}
    assert keys.data_key(source_fingerprint(v3), v3) != keys.data_key(before, v2)


def test_unknown_version_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match=r"generator version '4' is unknown; choose one of '2', '3'.*data\.embedded"):
        generate(tmp_path, n_posts=50, version="4")
    assert not (tmp_path / "posts.csv").exists()


def test_v3_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, n_posts=120, seed=5, version="3")
    generate(b, n_posts=120, seed=5, version="3")
    generate(c, n_posts=120, seed=6, version="3")
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "posts.csv").read_bytes() != (c / "posts.csv").read_bytes()
    generate(tmp_path / "v2", n_posts=120, seed=5, version="2")
    assert (a / "annotations.csv").read_bytes() != (tmp_path / "v2" / "annotations.csv").read_bytes()
    assert "version 3" in (a / "README.md").read_text(encoding="utf-8")


def test_v3_bytes_do_not_depend_on_hash_seed(tmp_path):
    generate(tmp_path / "here", n_posts=80, seed=3, version="3")
    code = (
        "import sys; from workflow_lib.data.synthetic import generate; "
        "generate(sys.argv[1], n_posts=80, seed=3, version='3')"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env, timeout=60)
    for name in FILES:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes(), name


def test_v3_keeps_the_real_rates_lengths_and_special_cases(v3_set):
    _, stats, posts, anns = v3_set
    present = _present(anns)
    realised = {s: sum(s in present[p["post_id"]] for p in posts) for s in SYMPTOMS}
    assert realised == {s: _quota(V3_N, REAL_COUNTS[s]) for s in SYMPTOMS} == stats["per_symptom"]
    assert sum(not present[p["post_id"]] for p in posts) == _quota(V3_N, REAL_NONE)
    words = [len(p["text"].split()) for p in posts]
    assert 265 <= statistics.mean(words) <= 325 and 160 <= statistics.median(words) <= 210 and max(words) >= 2000
    special = sum(a["DSM5_symptom"] == "SPECIAL_CASE" for a in anns)
    assert 0.6 * V3_N * REAL_SPECIAL_CASE / REAL_POSTS <= special <= 1.5 * V3_N * REAL_SPECIAL_CASE / REAL_POSTS
    assert stats["generator_version"] == "3" and set(stats["hard_negatives"]) == set(V3_HARD_KINDS)


def test_v3_evidence_is_verbatim_and_anywhere(v3_set):
    _, _, posts, anns = v3_set
    text = {p["post_id"]: p["text"] for p in posts}
    rel = []
    for a in anns:
        post = text[a["post_id"]]
        s, e = split_sentences(post)[int(a["sentence_id"].rsplit("_", 1)[1])]
        assert post[s:e] == a["sentence_text"] and post.count(a["sentence_text"]) == 1
        if a["status"] == "1" and len(post) > 2000:
            rel.append(post.index(a["sentence_text"]) / len(post))
    thirds = Counter(min(2, int(r * 3)) for r in rel)
    assert all(thirds[k] > 0.15 * len(rel) for k in range(3)), thirds


def test_v3_has_the_real_evidence_density(v3_set):
    """ReDSM5: about 1.1 status-1 sentences per positive post-symptom pair; most pairs have exactly one."""
    _, _, _, anns = v3_set
    per_pair = defaultdict(set)
    for a in anns:
        if a["status"] == "1" and a["DSM5_symptom"] in SYMPTOMS:
            per_pair[(a["post_id"], a["DSM5_symptom"])].add(a["sentence_id"])
    sizes = Counter(len(v) for v in per_pair.values())
    density = sum(k * n for k, n in sizes.items()) / len(per_pair)
    assert 1.04 <= density <= 1.18, density
    assert sizes[1] >= 0.82 * len(per_pair) and sizes[2] >= 0.04 * len(per_pair), sizes
    shared = Counter((a["post_id"], a["sentence_id"]) for a in anns if a["status"] == "1")
    assert any(v == 2 for v in shared.values())  # a sentence may still show two symptoms


def test_v3_status0_rows_are_a_fifth_and_every_kind_of_hard_negative(v3_set):
    """ReDSM5: 427 of 2,058 rows have status 0; v3's are negations, other people, a resolved past, hypotheticals,
    quotes and figures of speech, each explained."""
    _, _, _, anns = v3_set
    status0 = [a for a in anns if a["status"] == "0"]
    assert 0.16 <= len(status0) / len(anns) <= 0.25, len(status0) / len(anns)
    explanations = phrases_v3().explanations_negative
    by_kind = Counter(next(k for k, e in explanations.items() if e == a["explanation"]) for a in status0)
    assert set(by_kind) == set(V3_HARD_KINDS) and min(by_kind.values()) >= 8, by_kind
    present = _present(anns)
    for a in status0:  # denials and recovered pasts only of symptoms the writer does not show
        if a["explanation"] in (explanations["negation"], explanations["past"]):
            assert a["DSM5_symptom"] not in present[a["post_id"]]
    framed = [a["sentence_text"] for a in status0 if a["explanation"] == explanations["quote"]]
    assert all('"' in t for t in framed)
    other = [a["sentence_text"] for a in status0 if a["explanation"] == explanations["other_person"]]
    assert sum(re.search(r"\b(they|their|them)\b", t) is not None for t in other) >= 0.8 * len(other)


def test_v3_evidence_is_mostly_implicit_and_hard_negatives_share_its_words(v3_set):
    _, _, _, anns = v3_set
    evidence = [a for a in anns if a["status"] == "1" and a["DSM5_symptom"] in SYMPTOMS]
    stock = sum(re.search(STOCK_WORDS[a["DSM5_symptom"]], a["sentence_text"], re.I) is not None for a in evidence)
    assert stock <= 0.35 * len(evidence), stock / len(evidence)
    # the reactions that carry implicit evidence occur in rejected sentences too: told of others (in the third
    # person), quoted, feared, left behind
    status0 = " ".join(a["sentence_text"] for a in anns if a["status"] == "0")
    reactions = [r for pool in phrases_v3().reactions.values() for r in pool if "{" not in r]
    shared = [r for r in reactions if r in status0 or _third_person(r) in status0]
    assert len(shared) >= 0.15 * len(reactions), len(shared) / len(reactions)


def test_other_people_get_the_core_in_the_third_person():
    core = "I can't bring myself to care about my guitar, I'm done, I was there, we left our stuff with me"
    assert _third_person(core) == (
        "they can't bring themselves to care about their guitar, they're done, they were there, "
        "they left their stuff with them"
    )
    assert _third_person("it was fine, mine is the meme") == "it was fine, theirs is the meme"  # only the person


def test_v3_test_evidence_is_rarely_seen_verbatim_in_training(v3_set):
    """Composition (templates x slots x variants x context) keeps at most 5% of the test split's evidence sentences
    verbatim in the train split's."""
    out, _, _, anns = v3_set
    prepared = load_prepared(out)
    split_of = {pid: name for name, ids in prepared.splits.items() for pid in ids}
    evidence = _evidence_sentences(anns)
    train = {t for (pid, _), t in evidence.items() if split_of[pid] == "train"}
    test = [t for (pid, _), t in evidence.items() if split_of[pid] == "test"]
    assert len(test) >= 60
    assert sum(t in train for t in test) <= 0.05 * len(test), sum(t in train for t in test) / len(test)


def test_v3_is_hard_for_a_bag_of_words(v3_set):
    """The pipeline's TF-IDF baselines on its folds: sentence level below 0.75 CV macro-F1 (v2: about 0.81), post
    level low too."""
    from workflow_lib.learning.baseline import tfidf_baseline, tfidf_sentence_baseline

    prepared = load_prepared(v3_set[0])
    folds = prepared.folds
    sentence = tfidf_sentence_baseline(
        folds, prepared.sentences, prepared.sentence_labels, prepared.labels, metric="macro_f1", seed=42
    )
    post = tfidf_baseline(folds, prepared.texts, prepared.labels, metric="macro_f1", seed=42)
    assert 0.3 < sentence["mean"] < 0.75, sentence["fold_scores"]  # learnable from its sentences, not easy
    assert post["mean"] < 0.3, post["fold_scores"]


def test_v3_generation_is_fast(tmp_path):
    t0 = time.process_time()
    generate(tmp_path, n_posts=1484, seed=21, version="3")
    assert time.process_time() - t0 < 5.0


# PINNED OUTPUT. sha256 of posts.csv and annotations.csv for n_posts=50, seed=1, per generator version. Any change to
# the generator or to a phrase file (workflow_lib/data/phrases/*.json and v3/*.json: the RNG draws by index, so even
# reordering a list counts) changes the data every run trains on: make it a new version and pin its hashes here.
PINNED_OUTPUT = {
    "2": {
        "posts.csv": "af63bed057280ffb355f64253cd991eb675fba25f684b7de3d3b7960ae87591b",
        "annotations.csv": "427cb2d464c10b3a168613007b1c276eda63bed1ed3b13cf93e4509721ff8e88",
    },
    "3": {
        "posts.csv": "27c6360ca0a029882942beb48a1016b3c76d789acb398b2ef5db2feb81c66ff3",
        "annotations.csv": "61e611864a95ebdaa7bcba30814a9870d76e475d2557cada7787e2b7c07ad7b0",
    },
}


def test_v2_output_is_pinned(tmp_path):
    generate(tmp_path, n_posts=50, seed=1, version="2")
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in PINNED_OUTPUT["2"]}
    assert got == PINNED_OUTPUT["2"], "version 2's output changed: make it a new version and pin its hashes"


def test_the_default_writes_the_default_versions_pinned_output(tmp_path):
    generate(tmp_path, n_posts=50, seed=1)
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in PINNED_OUTPUT["3"]}
    assert got == PINNED_OUTPUT[GENERATOR_VERSION]


def test_v3_output_is_pinned(tmp_path):
    """Version 3 reads the narrative tables of version 2 too: a change to any phrase file it reads changes it."""
    generate(tmp_path, n_posts=50, seed=1, version="3")
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in PINNED_OUTPUT["3"]}
    assert got == PINNED_OUTPUT["3"], "version 3's output changed: make it a new version and pin its hashes"


# ---------------------------------------------------------------------------------------------
# phrase tables (workflow_lib/data/phrases/*.json)

PHRASES = resources.files("workflow_lib.data") / "phrases"
PER_SYMPTOM = ("evidence", "short_evidence", "negations", "other_person", "past", "general", "other_sense")


def _raw_tables() -> dict:
    """Every table of the shipped phrase files, read as plain JSON (not through the loader under test)."""
    tables = {}
    for path in sorted(PHRASES.iterdir(), key=lambda p: p.name):
        if path.name.endswith(".json"):
            content = json.loads(path.read_text(encoding="utf-8"))
            assert not set(content) & set(tables), f"{path.name} repeats a table of another file"
            tables.update(content)
    return tables


def _is_pool(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) for v in value)


def test_phrase_files_hold_every_table_with_its_structure():
    raw = _raw_tables()
    assert set(raw) == {f.name for f in fields(Phrases)}
    assert {f.metadata["file"] for f in fields(Phrases)} == {
        p.name for p in PHRASES.iterdir() if p.name.endswith(".json")
    }
    for name in (*PER_SYMPTOM, "explanations_positive"):
        assert set(raw[name]) == set(SYMPTOMS), name  # every symptom in every per-symptom table
        assert all(_is_pool(pool) for pool in raw[name].values()), name  # no empty pool
    for name in ("slots", "topics", "synonyms"):
        assert raw[name] and all(_is_pool(pool) for pool in raw[name].values()), name
    assert set(raw["topics"]) == set(TOPIC_WEIGHTS)
    for name in ("vocab_noise", "connectors", "asides", "short_neutral", "openers", "tails", "context_frames"):
        assert _is_pool(raw[name]), name
    for name in ("other_person_tails", "recovery", "special_case"):
        assert _is_pool(raw[name]), name
    assert set(raw["explanations_negative"]) == set(HARD_KINDS)
    assert all(isinstance(v, str) and v for v in raw["explanations_negative"].values())
    assert isinstance(raw["explanation_special"], str) and raw["explanation_special"]
    for combo in raw["combos"]:
        assert len(set(combo["symptoms"])) == 2 and set(combo["symptoms"]) <= set(SYMPTOMS), combo
        assert _is_pool(combo["templates"]), combo
    assert all(set(re.findall(r"\{(\w+)\}", f)) == {"ctx", "ev"} for f in raw["context_frames"])


def test_loaded_tables_keep_the_files_order():
    """The RNG draws by index: the loader must hand the lists over exactly as the files order them."""
    raw, ph = _raw_tables(), phrases()
    assert ph.evidence == raw["evidence"] and list(ph.topics) == list(raw["topics"])
    assert ph.slots == raw["slots"] and list(ph.synonyms) == list(raw["synonyms"])
    assert [(list(pair), t) for pair, t in ph.combos] == [(c["symptoms"], c["templates"]) for c in raw["combos"]]
    assert load_phrases(PHRASES) == ph and phrases() is ph  # loaded once


@pytest.fixture
def phrase_copy(tmp_path):
    folder = tmp_path / "phrases"
    shutil.copytree(str(PHRASES), folder)
    return folder


def _edit(folder, file: str, change) -> None:
    path = folder / file
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(json.dumps(content), encoding="utf-8")


def test_a_missing_phrase_file_is_named(phrase_copy):
    (phrase_copy / "evidence.json").unlink()
    with pytest.raises(PhrasesError, match=r"evidence\.json is missing.*reinstall"):
        load_phrases(phrase_copy)


def test_invalid_json_is_named_with_its_line(phrase_copy):
    (phrase_copy / "synonyms.json").write_text('{\n  "synonyms": {"a": ["b"],}\n}\n', encoding="utf-8")
    with pytest.raises(PhrasesError, match=r"synonyms\.json is not valid JSON: .* at line 2"):
        load_phrases(phrase_copy)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "hard_negatives.json",
            lambda c: c["negations"].pop("PSYCHOMOTOR"),
            r"negations must have .*missing \['PSYCHOMOTOR'\]",
        ),
        ("slots.json", lambda c: c["slots"].update(who=[]), r"slots\['who'\] must be a non-empty list"),
        ("narrative.json", lambda c: c.update(asides="Hi."), r"asides must be a non-empty list of strings"),
        ("narrative.json", lambda c: c.pop("tails"), r"exactly the tables .*missing \['tails'\]"),
        ("explanations.json", lambda c: c.update(extra=1), r"unknown \['extra'\]"),
        ("explanations.json", lambda c: c["explanations_negative"].pop("past"), r"explanations_negative must be"),
        ("evidence.json", lambda c: c["combos"][0].update(symptoms=["FATIGUE", "TIRED"]), r"combos\[0\]\['symptoms'\]"),
        ("evidence.json", lambda c: c["evidence"]["FATIGUE"].append("I'm {tierd}"), r"unknown slot\(s\) \['tierd'\]"),
        ("evidence.json", lambda c: c["context_frames"].append("{ctx} only"), r"needs \{ctx\} and \{ev\}"),
        ("narrative.json", lambda c: c["topics"].pop("weather"), r"topics must be exactly the topics of TOPIC_WEIGHTS"),
        ("slots.json", lambda c: c["slots"].pop("who"), r"the code needs the slots \['who'\]"),
    ],
)
def test_a_malformed_table_is_named_with_its_file(phrase_copy, file, change, message):
    _edit(phrase_copy, file, change)
    with pytest.raises(PhrasesError, match=re.escape(file) + ".*" + message):
        load_phrases(phrase_copy)


# ---------------------------------------------------------------------------------------------
# version-3 phrase tables (workflow_lib/data/phrases/v3/*.json)

PHRASES_V3 = PHRASES / "v3"
PER_SYMPTOM_V3 = ("situations", "reactions", "standalone", "explicit", "short_evidence", "negations", "figures")


def _raw_tables_v3() -> dict:
    tables = {}
    for path in sorted(PHRASES_V3.iterdir(), key=lambda p: p.name):
        content = json.loads(path.read_text(encoding="utf-8"))
        assert not set(content) & set(tables), f"{path.name} repeats a table of another file"
        tables.update(content)
    return tables


def test_v3_phrase_files_hold_every_table_with_its_structure():
    raw = _raw_tables_v3()
    assert set(raw) == {f.name for f in fields(PhrasesV3)}
    assert {f.metadata["file"] for f in fields(PhrasesV3)} == {p.name for p in PHRASES_V3.iterdir()}
    for name in PER_SYMPTOM_V3:
        assert list(raw[name]) == list(SYMPTOMS), name  # every symptom, in SYMPTOMS order
        assert all(_is_pool(pool) for pool in raw[name].values()), name
    assert set(raw["frames"]) == set(V3_FRAMED) and all(_is_pool(pool) for pool in raw["frames"].values())
    assert all("{core}" in f or "{Core}" in f for pool in raw["frames"].values() for f in pool)
    assert set(raw["explanations_negative"]) == set(V3_HARD_KINDS)
    for name in ("slots", "synonyms"):
        assert raw[name] and all(_is_pool(pool) for pool in raw[name].values()), name
    assert not set(raw["slots"]) & set(phrases().slots)  # v3 adds slots, it does not replace v2's
    for name in ("joiners", "combo_joiners"):
        assert _is_pool(raw[name]), name
    # cores are clauses: no final punctuation, and no character that would split a sentence
    for name in ("situations", "reactions", "standalone", "explicit", "short_evidence", "negations", "figures"):
        for pool in raw[name].values():
            assert not [t for t in pool if re.search(r"[.!?\n]", t)], name


def test_v3_loaded_tables_keep_the_files_order():
    raw, ph = _raw_tables_v3(), phrases_v3()
    assert ph.reactions == raw["reactions"] and ph.frames == raw["frames"] and ph.slots == raw["slots"]
    assert load_phrases_v3(PHRASES_V3, phrases()) == ph and phrases_v3() is ph


@pytest.fixture
def phrase_copy_v3(tmp_path):
    folder = tmp_path / "v3"
    shutil.copytree(str(PHRASES_V3), folder)
    return folder


def test_a_missing_v3_phrase_file_is_named(phrase_copy_v3):
    (phrase_copy_v3 / "hard_negatives.json").unlink()
    with pytest.raises(PhrasesError, match=r"v3.hard_negatives\.json is missing.*reinstall"):
        load_phrases_v3(phrase_copy_v3, phrases())


def test_invalid_v3_json_is_named_with_its_line(phrase_copy_v3):
    (phrase_copy_v3 / "slots.json").write_text('{\n  "slots": {"a": ["b"]\n}\n', encoding="utf-8")
    with pytest.raises(PhrasesError, match=r"v3.slots\.json is not valid JSON: .* at line"):
        load_phrases_v3(phrase_copy_v3, phrases())


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("evidence.json", lambda c: c["reactions"].pop("FATIGUE"), r"reactions must have .*missing \['FATIGUE'\]"),
        ("evidence.json", lambda c: c.update(joiners=[]), r"joiners must be a non-empty list of strings"),
        ("evidence.json", lambda c: c.pop("standalone"), r"exactly the tables .*missing \['standalone'\]"),
        ("hard_negatives.json", lambda c: c["frames"].pop("quote"), r"frames must have .*missing \['quote'\]"),
        ("hard_negatives.json", lambda c: c["frames"]["past"].append("no core here"), r"needs \{core\} or \{Core\}"),
        ("explanations.json", lambda c: c["explanations_negative"].pop("figure"), r"explanations_negative must be"),
        ("evidence.json", lambda c: c["explicit"]["FATIGUE"].append("I'm {tierd}"), r"unknown slot\(s\) \['tierd'\]"),
        ("slots.json", lambda c: c["slots"].update(name=["Ann"]), r"\['name'\] are already slots of"),
        ("synonyms.json", lambda c: c["synonyms"].update(very=[]), r"synonyms\['very'\] must be a non-empty list"),
    ],
)
def test_a_malformed_v3_table_is_named_with_its_file(phrase_copy_v3, file, change, message):
    _edit(phrase_copy_v3, file, change)
    with pytest.raises(PhrasesError, match=re.escape(file) + ".*" + message):
        load_phrases_v3(phrase_copy_v3, phrases())
