"""workflow_lib.learning.augment: TextAttack augmentation of evidence spans, offline and deterministic (also
in a fresh process of another checkout: tests/integration/test_augment_process.py)."""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.augment import HAND, PCT, REPO, sample_records
from workflow_lib.learning import augment as A


@pytest.fixture(scope="module")
def batch():
    return sample_records() + copy.deepcopy(HAND)


# ------------------------------------------------------------------------------------------------ checks


def _merged(spans):
    out = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _outside(text, spans):
    """The text outside the (merged) spans, as a list of gaps."""
    gaps, pos = [], 0
    for s, e in _merged(spans):
        gaps.append(text[pos:s])
        pos = e
    gaps.append(text[pos:])
    return gaps


def _check(records, new_records, log):
    """Every invariant of augment_records for one call."""
    assert len(new_records) == len(records)
    logged = {}
    for entry in log:
        assert set(entry) == {"post_id", "symptom", "original", "augmented"}
        assert entry["original"] != entry["augmented"]
        logged.setdefault(entry["post_id"], []).append(entry)
    for old, new in zip(records, new_records):
        assert new is not old and new["post_id"] == old["post_id"] and new["labels"] == old["labels"]
        assert set(new) == set(old)
        assert len(new["evidence"]) == len(old["evidence"])
        aligned_old = [ev for ev in old["evidence"] if ev["start"] is not None]
        aligned_new = [ev for ev in new["evidence"] if ev["start"] is not None]
        # text outside the evidence spans: byte-identical
        assert _outside(new["text"], [(ev["start"], ev["end"]) for ev in aligned_new]) == _outside(
            old["text"], [(ev["start"], ev["end"]) for ev in aligned_old]
        )
        entries = iter(logged.get(old["post_id"], []))
        for ev_old, ev_new in zip(old["evidence"], new["evidence"]):
            # only the offsets may change
            assert {k: v for k, v in ev_new.items() if k not in ("start", "end")} == {
                k: v for k, v in ev_old.items() if k not in ("start", "end")
            }
            if ev_old["start"] is None:
                assert ev_new == ev_old
                continue
            before = old["text"][ev_old["start"] : ev_old["end"]]
            after = new["text"][ev_new["start"] : ev_new["end"]]
            if after != before:
                entry = next(entries)
                assert (entry["symptom"], entry["original"], entry["augmented"]) == (ev_old["symptom"], before, after)
        assert next(entries, None) is None
        if old["post_id"] not in logged:
            assert new == old


def _random_records(n, seed):
    """Posts of random sentences (unicode, curly quotes, newlines) with random evidence spans."""
    rng = random.Random(seed)
    words = [
        "I",
        "feel",
        "so",
        "tired",
        "and",
        "empty",
        "every",
        "day",
        ",",
        "nothing",
        "helps",
        "anymore",
        ";",
        "my",
        "sister",
        "can’t",
        "sleep",
        "either",
        "“really”",
        "—",
        "hopeless",
        "worthless",
        "café",
        "3am",
        "don't",
        "won't",
        "self-harm",
        ":)",
        "😔",
        "naïve,",
        "dr.",
        "smith",
        "said",
        "rest",
    ]
    records = []
    for i in range(n):
        sentences = [
            " ".join(rng.choice(words) for _ in range(rng.randint(1, 14))) + rng.choice([".", "!", "?", "…", ""])
            for _ in range(rng.randint(1, 6))
        ]
        seps = [rng.choice([" ", "  ", "\n", "\n\n", " \t"]) for _ in sentences]
        text, bounds, pos = "", [], 0
        for sent, sep in zip(sentences, seps):
            text += sent + sep
            bounds.append((pos, pos + len(sent)))
            pos = len(text)
        evidence = []
        for _ in range(rng.randint(0, 4)):
            kind = rng.random()
            if kind < 0.15:
                evidence.append({"symptom": "FATIGUE", "start": None, "end": None})
                continue
            j = rng.randrange(len(bounds))
            s, e = bounds[j]
            if kind > 0.85 and j + 1 < len(bounds):  # a pair of sentences
                e = bounds[j + 1][1]
            elif kind > 0.75 and e - s > 4:  # a substring ("exact" match inside a sentence)
                s2 = rng.randrange(s, e - 1)
                s, e = s2, rng.randrange(s2 + 1, e + 1)
            evidence.append(
                {"symptom": rng.choice(["DEPRESSED_MOOD", "FATIGUE", "WORTHLESSNESS"]), "start": s, "end": e}
            )
        records.append({"post_id": f"r{seed}_{i}", "text": text, "labels": [0] * 9, "evidence": evidence})
    return records


# ------------------------------------------------------------------------------------------------ recipes


def test_recipe_lists():
    assert A.RECIPES == ("synonym_swap", "synonym_insert", "word_swap", "char_perturb", "deletion")
    assert {"embedding_swap", "back_translation", "checklist"} <= set(A.UNAVAILABLE_RECIPES)
    assert not set(A.RECIPES) & set(A.UNAVAILABLE_RECIPES)
    assert all(isinstance(reason, str) and len(reason) > 20 for reason in A.UNAVAILABLE_RECIPES.values())


@pytest.mark.parametrize("recipe", ["embedding_swap", "back_translation", "checklist"])
def test_download_recipes_are_rejected_with_the_reason(recipe, batch):
    reason = A.UNAVAILABLE_RECIPES[recipe]
    for call in (
        lambda: A.augment_records(batch, recipe=recipe, prob=0.5, seed=1),
        lambda: A.augment_records(batch, recipe=recipe, prob=0.0, seed=1),
        lambda: A.check_available(recipe),
    ):
        with pytest.raises(ValueError) as err:
            call()
        assert reason in str(err.value) and "not available offline" in str(err.value)
        assert "synonym_swap" in str(err.value)  # says what is available


def test_bad_arguments(batch):
    with pytest.raises(ValueError, match="unknown augmentation recipe 'eda'"):
        A.augment_records(batch, recipe="eda", prob=0.1, seed=1)
    for prob in (-0.1, 0.51, 1.0, "0.2", None, True):
        with pytest.raises(ValueError, match=r"probability must be a number in \[0, 0.5\]"):
            A.augment_records(batch, recipe="deletion", prob=prob, seed=1)
    for pct in (0.0, 1.5):
        with pytest.raises(ValueError, match="pct_words"):
            A.augment_records(batch, recipe="deletion", prob=0.1, seed=1, pct_words=pct)
    bad = [
        {
            "post_id": "x",
            "text": "short",
            "labels": [0] * 9,
            "evidence": [{"symptom": "FATIGUE", "start": 2, "end": 99}],
        }
    ]
    with pytest.raises(ValueError, match="post 'x'.*outside its text of 5 characters"):
        A.augment_records(bad, recipe="deletion", prob=0.5, seed=next(s for s in range(100) if _picked("x", s, 0.5)))


def _picked(post_id, seed, prob):
    return random.Random(A._derive_seed(seed, "pick", post_id)).random() < prob


# ------------------------------------------------------------------------------------------------ offline data


def test_offline_data_is_in_place():
    A.check_available()
    # the environment's own NLTK data (bash envs/install.sh), the same for every checkout
    assert Path(sys.prefix) / "nltk_data" == A.NLTK_DATA_DIR
    assert os.environ["NLTK_DATA"].split(os.pathsep)[0] == str(A.NLTK_DATA_DIR)
    assert (
        A.STOPWORDS_FILE.read_bytes()
        == (REPO / "envs" / "nltk_data" / "corpora" / "stopwords" / "english").read_bytes()
    )
    stop = A.STOPWORDS_FILE.read_text(encoding="utf-8").split("\n")
    assert stop[-1] == "" and len(stop[:-1]) == 179 and {"i", "the", "wouldn't"} <= set(stop)
    lexnames = (A.WORDNET_DIR / "lexnames").read_text(encoding="ascii").splitlines()
    assert len(lexnames) == 45 and lexnames[0] == "00\tadj.all\t3" and lexnames[-1] == "44\tadj.ppl\t3"
    assert not any(p.is_symlink() for p in A.WORDNET_DIR.iterdir())
    assert not (REPO / "workflow_lib" / "resources").exists()  # no second copy inside the checkout


def test_missing_wordnet_is_an_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(A, "WORDNET_DIR", tmp_path / "wordnet")
    for recipe in ("synonym_swap", "synonym_insert", None):
        with pytest.raises(A.AugmentationUnavailable) as err:
            A.check_available(recipe)
        msg = str(err.value)
        assert str(tmp_path / "wordnet") in msg and "is missing" in msg
        assert "bash envs/install.sh" in msg and "apt-get install -y --no-install-recommends wordnet-base" in msg
    A.check_available("deletion")  # needs no WordNet
    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "data.noun").write_text("x")
    with pytest.raises(A.AugmentationUnavailable, match="lacks lexnames, index.sense"):
        A.check_available("synonym_swap")


def test_missing_stopwords_is_an_actionable_error(monkeypatch, tmp_path):
    monkeypatch.setattr(A, "STOPWORDS_FILE", tmp_path / "english")
    with pytest.raises(
        A.AugmentationUnavailable, match="stop word list is missing: .*english.*run: bash envs/install.sh"
    ):
        A.check_available("deletion")


def _data_copy(root: Path, mode: int) -> Path:
    """A copy of the NLTK data layout (the real stop word list, empty WordNet files) with ``mode`` for
    every folder and file, as a checkout or copy under umask 002 gives (0o775 / 0o664)."""
    data = root / "nltk_data"
    (data / "corpora" / "stopwords").mkdir(parents=True)
    (data / "corpora" / "wordnet").mkdir()
    (data / "corpora" / "stopwords" / "english").write_bytes(A.STOPWORDS_FILE.read_bytes())
    for name in A.WORDNET_FILES:
        (data / "corpora" / "wordnet" / name).write_text("")
    for p in [data, *data.rglob("*")]:
        p.chmod(mode | 0o111 if p.is_dir() else mode)
    return data


def test_a_group_writable_data_folder_is_refused_with_the_fix(monkeypatch, tmp_path, batch):
    import nltk

    data = _data_copy(tmp_path, 0o664)
    monkeypatch.setattr(A, "NLTK_DATA_DIR", data)
    monkeypatch.setattr(A, "STOPWORDS_FILE", data / "corpora" / "stopwords" / "english")
    monkeypatch.setattr(A, "WORDNET_DIR", data / "corpora" / "wordnet")
    # NLTK itself refuses it (the rule check_available mirrors), with a LookupError of its own
    with (
        pytest.raises(LookupError, match="Refused, writable by other accounts"),
        pytest.warns(RuntimeWarning, match="NLTK will not read data"),
    ):
        nltk.data.find("corpora/stopwords", paths=[str(data)])
    for call in (
        lambda: A.check_available("deletion"),
        lambda: A.check_available("synonym_swap"),
        lambda: A.augment_records(batch, recipe="synonym_swap", prob=0.5, seed=1),
    ):
        with pytest.raises(A.AugmentationUnavailable) as err:
            call()
        assert not isinstance(err.value, LookupError)
        assert "is writable by other accounts (mode 0775" in str(err.value)
        assert str(err.value).endswith(f"Make it private to its owner: chmod -R go-w {data}")
    data.chmod(0o755)  # a folder deeper down is named too
    with pytest.raises(A.AugmentationUnavailable, match=r"corpora is writable by other accounts \(mode 0775"):
        A.check_available("deletion")
    subprocess.run(["chmod", "-R", "go-w", str(data)], check=True)  # the fix the message names
    A.check_available("synonym_swap")
    assert nltk.data.find("corpora/stopwords", paths=[str(data)])
    # the WordNet recipes also judge the WordNet folder, the others do not
    (data / "corpora" / "wordnet" / "data.noun").chmod(0o666)
    A.check_available("deletion")
    with pytest.raises(A.AugmentationUnavailable, match=r"data.noun is writable by other accounts \(mode 0666"):
        A.check_available("synonym_insert")


def test_importing_the_module_is_cheap_and_sets_the_nltk_path():
    code = (
        "import os, sys, workflow_lib.learning.augment as A\n"
        "assert 'textattack' not in sys.modules and 'nltk' not in sys.modules, 'eager import'\n"
        "import nltk\n"
        "assert nltk.data.path[0] == str(A.NLTK_DATA_DIR), nltk.data.path\n"
        "assert os.environ['NLTK_DATA'].split(os.pathsep)[:2] == [str(A.NLTK_DATA_DIR), '/elsewhere']\n"
    )
    env = {**os.environ, "NLTK_DATA": "/elsewhere"}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)


# ------------------------------------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("recipe", A.RECIPES)
def test_each_recipe_changes_some_evidence_and_keeps_the_rest(recipe, batch):
    original = copy.deepcopy(batch)
    new, log = A.augment_records(batch, recipe=recipe, prob=0.5, seed=7, pct_words=PCT)
    assert batch == original, "input records were mutated"
    assert log, f"{recipe} changed no evidence"
    assert len({e["post_id"] for e in log}) >= 3
    _check(batch, new, log)
    # the records that were not picked are equal copies; picked ones changed only inside spans
    picked = {r["post_id"] for r in batch if _picked(r["post_id"], 7, 0.5)}
    assert {e["post_id"] for e in log} <= picked


def test_property_text_outside_spans_is_byte_identical():
    """Hand-rolled property test: random posts and spans (pairs, substrings, duplicates, unaligned)."""
    for k, recipe in enumerate(A.RECIPES):
        records = _random_records(60, seed=k)
        original = copy.deepcopy(records)
        new, log = A.augment_records(records, recipe=recipe, prob=0.5, seed=k, pct_words=PCT)
        assert records == original
        assert log
        _check(records, new, log)


def test_offsets_point_at_the_augmented_sentences(batch):
    new, log = A.augment_records(HAND, recipe="synonym_insert", prob=0.5, seed=3, pct_words=0.5)
    by_id = {r["post_id"]: r for r in new}
    assert {"h1", "h2", "h3"} & set(by_id)
    for entry in log:
        rec = by_id[entry["post_id"]]
        spans = [
            rec["text"][ev["start"] : ev["end"]]
            for ev in rec["evidence"]
            if ev["symptom"] == entry["symptom"] and ev["start"] is not None
        ]
        assert entry["augmented"] in spans
    h3 = by_id["h3"]
    if any(e["post_id"] == "h3" for e in log):
        ev = h3["evidence"]
        assert (ev[0]["start"], ev[0]["end"]) == (ev[2]["start"], ev[2]["end"])  # same sentence, same new span
        assert ev[1]["start"] == ev[0]["start"] and ev[1]["end"] > ev[0]["end"]  # pair span still covers it
        assert h3["text"].endswith(" ok")


def test_prob_zero_changes_nothing(batch):
    for recipe in A.RECIPES:
        new, log = A.augment_records(batch, recipe=recipe, prob=0, seed=1)
        assert new == batch and log == []
        assert all(n is not o for n, o in zip(new, batch))


def test_unaligned_evidence_is_left_alone():
    records = [
        {
            "post_id": f"u{i}",
            "text": "I feel exhausted all the time. Nothing else.",
            "labels": [0] * 9,
            "evidence": [{"symptom": "FATIGUE", "start": None, "end": None, "sentence_text": "tired"}],
        }
        for i in range(20)
    ]
    for recipe in A.RECIPES:
        new, log = A.augment_records(records, recipe=recipe, prob=0.5, seed=1, pct_words=PCT)
        assert new == records and log == []


def test_order_independent_and_rng_state_restored(batch):
    random.seed(99)
    np.random.seed(99)
    py_state, np_state = random.getstate(), np.random.get_state()
    new, log = A.augment_records(batch, recipe="char_perturb", prob=0.5, seed=11, pct_words=PCT)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and (after[1] == np_state[1]).all() and after[2:] == np_state[2:]
    shuffled = list(reversed(batch))
    new2, log2 = A.augment_records(shuffled, recipe="char_perturb", prob=0.5, seed=11, pct_words=PCT)
    assert list(reversed(new2)) == new
    key = lambda e: (e["post_id"], e["symptom"], e["original"])  # noqa: E731
    assert sorted(log2, key=key) == sorted(log, key=key)
    other, _ = A.augment_records(batch, recipe="char_perturb", prob=0.5, seed=12, pct_words=PCT)
    assert other != new


def test_the_prepared_sentences_move_with_the_augmented_text():
    """The sentence model reads a record's prepared sentence offsets: after augmentation each unchanged sentence
    has the same text at its new offsets and each augmented evidence sentence is its new evidence span."""
    text = "We walked the dog today. I feel so tired all the time. The rain fell on the roof. I cannot sleep."
    spans = []
    for sentence in text.split(". "):
        start = text.index(sentence.rstrip("."))
        spans.append([start, start + len(sentence.rstrip(".")) + 1])
    spans[-1][1] = len(text)
    record = {
        "post_id": "s1",
        "text": text,
        "labels": [0] * 9,
        "sentences": spans,
        "evidence": [
            {"symptom": "FATIGUE", "start": spans[1][0], "end": spans[1][1]},
            {"symptom": "SLEEP_ISSUES", "start": spans[3][0], "end": spans[3][1]},
        ],
    }
    seed = next(k for k in range(200) if _picked("s1", k, 0.5))  # a seed that picks the post
    (new,), log = A.augment_records([record], recipe="synonym_insert", prob=0.5, seed=seed, pct_words=0.5)
    assert log and new["text"] != text
    moved = new["sentences"]
    assert [text[a:b] for a, b in (spans[0], spans[2])] == [new["text"][a:b] for a, b in (moved[0], moved[2])]
    assert [(e["start"], e["end"]) for e in new["evidence"]] == [tuple(moved[1]), tuple(moved[3])]
    assert moved[-1][1] == len(new["text"]) and record["sentences"] == spans  # the input is not changed
