"""The embedded generator: determinism, class balance, verbatim evidence, hard cases."""
from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict

import pytest

from workflow_lib.data.align import split_sentences
from workflow_lib.data.synthetic import GENERATOR_VERSION, generate
from workflow_lib.symptoms import EXTRA_LABELS, SYMPTOMS

FILES = ("posts.csv", "annotations.csv", "README.md")


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen_default")
    stats = generate(out)
    posts = list(csv.DictReader(open(out / "posts.csv", encoding="utf-8", newline="")))
    anns = list(csv.DictReader(open(out / "annotations.csv", encoding="utf-8", newline="")))
    return out, stats, posts, anns


def _rates(posts, anns):
    present = defaultdict(set)
    for a in anns:
        if a["status"] == "1" and a["DSM5_symptom"] in SYMPTOMS:
            present[a["post_id"]].add(a["DSM5_symptom"])
    n = len(posts)
    per = {s: sum(s in present[p["post_id"]] for p in posts) / n for s in SYMPTOMS}
    none = sum(not present[p["post_id"]] for p in posts) / n
    return per, none


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, n_posts=120, seed=5)
    generate(b, n_posts=120, seed=5)
    generate(c, n_posts=120, seed=6)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "posts.csv").read_bytes() != (c / "posts.csv").read_bytes()
    assert (a / "annotations.csv").read_bytes() != (c / "annotations.csv").read_bytes()


def test_format_matches_redsm5(default_set):
    out, stats, posts, anns = default_set
    with open(out / "posts.csv", encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == ["post_id", "text"]
    with open(out / "annotations.csv", encoding="utf-8", newline="") as fh:
        assert next(csv.reader(fh)) == ["post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status",
                                        "explanation"]
    assert len(posts) == 800 == stats["n_posts"] and stats["generator_version"] == GENERATOR_VERSION
    assert all(re.fullmatch(r"g_\d{4}_\d{1,3}", p["post_id"]) for p in posts)
    assert len({p["post_id"] for p in posts}) == len(posts)
    assert {a["status"] for a in anns} == {"0", "1"}
    assert {a["DSM5_symptom"] for a in anns} <= set(SYMPTOMS) | set(EXTRA_LABELS)
    assert all(a["explanation"].strip() for a in anns)
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "seed=13" in readme


def test_class_balance_in_stated_ranges(default_set):
    _, stats, posts, anns = default_set
    per, none = _rates(posts, anns)
    assert 0.30 <= per["DEPRESSED_MOOD"] <= 0.45, per
    assert 0.30 <= per["WORTHLESSNESS"] <= 0.45, per
    assert 0.04 <= per["PSYCHOMOTOR"] <= 0.09, per
    assert 0.04 <= per["APPETITE_CHANGE"] <= 0.09, per
    for s in ("ANHEDONIA", "SLEEP_ISSUES", "FATIGUE", "COGNITIVE_ISSUES", "SUICIDAL_THOUGHTS"):
        assert 0.09 <= per[s] <= 0.25, (s, per[s])
    assert 0.20 <= none <= 0.30
    assert {s: round(per[s] * 800) for s in SYMPTOMS} == stats["per_symptom"]
    assert stats["no_symptom"] == round(none * 800)


def test_rates_hold_for_other_seeds(tmp_path):
    for seed in (1, 2):
        generate(tmp_path / str(seed), n_posts=800, seed=seed)
        posts = list(csv.DictReader(open(tmp_path / str(seed) / "posts.csv", encoding="utf-8", newline="")))
        anns = list(csv.DictReader(open(tmp_path / str(seed) / "annotations.csv", encoding="utf-8", newline="")))
        per, none = _rates(posts, anns)
        assert min(per["DEPRESSED_MOOD"], per["WORTHLESSNESS"]) > 2 * max(per["PSYCHOMOTOR"], per["APPETITE_CHANGE"])
        assert 0.18 <= none <= 0.32


def test_evidence_is_verbatim_and_matches_sentence_id(default_set):
    _, _, posts, anns = default_set
    text = {p["post_id"]: p["text"] for p in posts}
    for a in anns:
        post = text[a["post_id"]]
        assert a["sentence_text"] in post
        spans = split_sentences(post)
        index = int(a["sentence_id"].rsplit("_", 1)[1])
        assert a["sentence_id"].startswith(a["post_id"] + "_")
        s, e = spans[index]
        assert post[s:e] == a["sentence_text"]


def test_posts_have_three_to_nine_sentences(default_set):
    _, _, posts, _ = default_set
    counts = Counter(len(split_sentences(p["text"])) for p in posts)
    assert min(counts) >= 3 and max(counts) <= 9
    assert len(counts) >= 5  # lengths vary


def test_status0_rows_and_hard_cases_present(default_set):
    _, stats, posts, anns = default_set
    status0 = [a for a in anns if a["status"] == "0"]
    assert len(status0) >= 100
    assert stats["annotation_rows"]["status_0"] == len(status0)
    assert all(k > 0 for k in stats["hard_negatives"].values())
    corpus = " ".join(p["text"] for p in posts)
    for phrase in ("I'm not tired at all these days", "I never had trouble sleeping", "can't sleep at night",
                   "market is depressed", "phone battery is drained", "I lost my appetite for horror films"):
        assert phrase in corpus, phrase
    # a post with a status-0 row only is a negative: the hard case carries no label
    pos = {(a["post_id"], a["DSM5_symptom"]) for a in anns if a["status"] == "1"}
    assert any((a["post_id"], a["DSM5_symptom"]) not in pos for a in status0)


def test_shared_vocabulary_between_positives_and_negatives(default_set):
    """A bag of words is not enough: symptom words also occur in posts without that symptom."""
    _, _, posts, anns = default_set
    sleep_pos = {a["post_id"] for a in anns if a["status"] == "1" and a["DSM5_symptom"] == "SLEEP_ISSUES"}
    fatigue_pos = {a["post_id"] for a in anns if a["status"] == "1" and a["DSM5_symptom"] == "FATIGUE"}
    assert sum("sleep" in p["text"].lower() for p in posts if p["post_id"] not in sleep_pos) >= 30
    assert sum(re.search(r"tired|drained|exhaust", p["text"].lower()) is not None
               for p in posts if p["post_id"] not in fatigue_pos) >= 30


def test_many_distinct_phrasings_per_symptom(default_set):
    _, _, _, anns = default_set
    for s in SYMPTOMS:
        sentences = {a["sentence_text"] for a in anns if a["status"] == "1" and a["DSM5_symptom"] == s}
        assert len(sentences) >= 15, (s, len(sentences))
    multi = Counter((a["post_id"], a["sentence_id"]) for a in anns if a["status"] == "1")
    assert any(v >= 2 for v in multi.values())  # one sentence carrying two symptoms


def test_rejects_nonpositive_size(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, n_posts=0)


def test_bytes_do_not_depend_on_hash_seed(tmp_path):
    import os
    import subprocess
    import sys

    generate(tmp_path / "here", n_posts=80, seed=3)
    code = ("import sys; from workflow_lib.data.synthetic import generate; "
            "generate(sys.argv[1], n_posts=80, seed=3)")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env, timeout=60)
    for name in FILES:
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes(), name
