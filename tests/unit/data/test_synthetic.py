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

from workflow_lib.data.align import split_sentences
from workflow_lib.data.synthetic import (
    GENERATOR_VERSION,
    HARD_KINDS,
    REAL_COUNTS,
    REAL_NONE,
    REAL_POSTS,
    TOPIC_WEIGHTS,
    Phrases,
    PhrasesError,
    generate,
    load_phrases,
    phrases,
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


# PINNED OUTPUT. sha256 of posts.csv and annotations.csv for n_posts=50, seed=1, per generator version. Any change to
# the generator or to a phrase file (workflow_lib/data/phrases/*.json: the RNG draws by index, so even reordering a
# list counts) changes the data every run trains on: bump GENERATOR_VERSION and pin the new hashes here.
PINNED_OUTPUT = {
    "2": {
        "posts.csv": "af63bed057280ffb355f64253cd991eb675fba25f684b7de3d3b7960ae87591b",
        "annotations.csv": "427cb2d464c10b3a168613007b1c276eda63bed1ed3b13cf93e4509721ff8e88",
    },
}


def test_output_is_pinned_for_the_generator_version(tmp_path):
    generate(tmp_path, n_posts=50, seed=1)
    got = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in PINNED_OUTPUT["2"]}
    assert got == PINNED_OUTPUT[GENERATOR_VERSION], "output changed: bump GENERATOR_VERSION and pin the new hashes"


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
