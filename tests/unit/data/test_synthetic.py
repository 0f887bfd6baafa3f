"""The embedded generator: determinism, quota rates, real-set lengths, evidence anywhere, hard cases."""

from __future__ import annotations

import csv
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict

import pytest

from workflow_lib.data.align import split_sentences
from workflow_lib.data.synthetic import GENERATOR_VERSION, REAL_COUNTS, REAL_NONE, REAL_POSTS, generate
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
    stats = generate(out, n_posts=1484, seed=13)
    return (out, stats, *_read(out))


def test_generator_version_is_2():
    assert GENERATOR_VERSION == "2"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, n_posts=120, seed=5)
    generate(b, n_posts=120, seed=5)
    generate(c, n_posts=120, seed=6)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "posts.csv").read_bytes() != (c / "posts.csv").read_bytes()
    assert (a / "annotations.csv").read_bytes() != (c / "annotations.csv").read_bytes()


def test_format_matches_redsm5(tmp_path):
    stats = generate(tmp_path)  # the default size
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
    assert len(posts) == 800 == stats["n_posts"] and stats["generator_version"] == GENERATOR_VERSION
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
    stats = generate(tmp_path, n_posts=n, seed=n)
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
    stats = generate(tmp_path, n_posts=600, seed=13)
    assert stats["per_symptom"]["PSYCHOMOTOR"] == 14 and stats["per_symptom"]["APPETITE_CHANGE"] == 18


def test_most_symptomatic_posts_show_one_symptom_and_combinations_exist(real_size):
    _, _, posts, anns = real_size
    sizes = Counter(len(v) for v in _present(anns).values())
    assert sizes[1] > 0.7 * sum(sizes.values())
    assert sizes[2] > 50 and max(sizes) <= 4


def test_tiny_sets_are_consistent(tmp_path):
    for n in range(1, 25):
        stats = generate(tmp_path / str(n), n_posts=n, seed=n)
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
    stats = generate(tmp_path, n_posts=600, seed=14)
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
    generate(tmp_path, n_posts=1484, seed=21)
    assert time.process_time() - t0 < 5.0


def test_rejects_nonpositive_size(tmp_path):
    with pytest.raises(ValueError, match="n_posts must be positive"):
        generate(tmp_path, n_posts=0)


def test_bytes_do_not_depend_on_hash_seed(tmp_path):
    generate(tmp_path / "here", n_posts=80, seed=3)
    code = "import sys; from workflow_lib.data.synthetic import generate; generate(sys.argv[1], n_posts=80, seed=3)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env, timeout=60)
    for name in FILES:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes(), name
