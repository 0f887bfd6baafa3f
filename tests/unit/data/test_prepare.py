"""prepare(): the four files, the card and its schema, given splits, load_prepared, long posts."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from workflow_lib import config
from workflow_lib.config import Data, load_schema
from workflow_lib.data.align import split_sentences
from workflow_lib.data.loader import DataError
from workflow_lib.data.prepare import (
    FILES,
    SENTENCE_EVIDENCE,
    SENTENCE_REJECTED,
    check_given_splits,
    length_stats,
    load_prepared,
    prepare,
    sentence_label_matrix,
)
from workflow_lib.data.splits import split_posts
from workflow_lib.symptoms import SYMPTOMS

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "tests" / "fixtures" / "redsm5_sample"
RELEASE = REPO / "tests" / "fixtures" / "redsm5_release"  # the release's shape and known defects (README.md)


def _cfg(**over):
    cfg = {
        "source": "embedded",
        "embedded": {"n_posts": 200, "seed": 13},
        "local_path": None,
        "hub": {"id": "irlab-udc/redsm5", "revision": None, "timeout_s": 2},
        "alignment_threshold": 0.5,
        "max_post_chars": 200000,
        "split": {"seed": 42, "validation_fraction": 0.15, "test_fraction": 0.15},
        "n_folds": 3,
    }
    cfg.update(over)
    return Data.resolve(cfg)  # the resolved data section a job passes on


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep_embedded")
    card = prepare(_cfg(), out, "abc123def456")
    return out, card


def _records(out):
    return [json.loads(line) for line in (out / "posts.jsonl").read_text(encoding="utf-8").splitlines()]


def test_writes_the_four_files_and_a_valid_card(embedded):
    out, card = embedded
    for name in FILES:
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.tmp"))
    on_disk = json.loads((out / "data_card.json").read_text(encoding="utf-8"))
    assert on_disk == card
    jsonschema.Draft202012Validator(load_schema("data_card")).validate(on_disk)
    assert card["data_key"] == "abc123def456"
    assert card["source"] == {"kind": "embedded", "generator_version": "3", "n_posts": 200, "seed": 13}
    assert card["split_origin"] == "stratified" and card["code_version"]
    assert "data.max_post_chars (200000) characters are rejected" in card["truncation_policy"]
    assert "max_length" in card["truncation_policy"] and "training.long_posts" in card["truncation_policy"]
    lengths = card["lengths"]
    assert [f["fold"] for f in lengths["folds"]] == [f["fold"] for f in card["counts"]["folds"]]
    assert [f["heldout"]["posts"] for f in lengths["folds"]] == [f["heldout"] for f in card["counts"]["folds"]]
    assert {n: lengths["splits"][n]["posts"] for n in lengths["splits"]} == {
        n: card["counts"]["splits"][n]["posts"] for n in card["counts"]["splits"]
    }
    assert lengths["all"]["posts"] == 200  # long-form posts: a tail past 512 words, the median far below
    assert (
        0 < lengths["all"]["over_512_words"] < 60
        and lengths["all"]["words"]["p50"] < 300 < lengths["all"]["words"]["max"]
    )


def test_length_stats_values():
    texts = ["one", "one two", "a b c", "a b c d", " ".join(["w"] * 100)]
    stats = length_stats(texts)
    assert stats["posts"] == 5
    # words 1, 2, 3, 4, 100: p95 interpolates between 4 and 100 (0.8 of the way)
    assert stats["words"] == {"mean": 22.0, "p50": 3.0, "p95": 80.8, "min": 1, "max": 100}
    assert stats["chars"] == {"mean": 44.2, "p50": 7.0, "p95": 160.6, "min": 3, "max": 199}  # 3, 5, 7, 7, 199
    assert stats["over_512_words"] == stats["over_2000_words"] == 0
    long = length_stats(["x " * 513, "x " * 512, "y " * 2001, "short"])
    assert long["over_512_words"] == 2 and long["over_2000_words"] == 1 and long["words"]["max"] == 2001
    assert length_stats([]) == {"posts": 0, "words": None, "chars": None, "over_512_words": 0, "over_2000_words": 0}


def test_posts_records(embedded):
    out, card = embedded
    records = _records(out)
    ids = [r["post_id"] for r in records]
    assert ids == sorted(ids) and len(ids) == 200 == card["counts"]["posts"]
    for r in records:
        assert set(r) == {"post_id", "text", "labels", "evidence", "sentences", "sentence_labels"}
        assert len(r["labels"]) == 9 and set(r["labels"]) <= {0, 1}
        for e in r["evidence"]:
            assert set(e) == {"symptom", "sentence_id", "sentence_text", "start", "end", "match", "similarity"}
            assert e["match"] == "exact" and r["text"][e["start"] : e["end"]] == e["sentence_text"]
            assert r["labels"][SYMPTOMS.index(e["symptom"])] == 1
        assert {e["symptom"] for e in r["evidence"]} == {s for s, v in zip(SYMPTOMS, r["labels"]) if v}
    assert card["alignment"]["exact"] == sum(len(r["evidence"]) for r in records)
    assert card["alignment"]["nearest"] == card["alignment"]["unaligned"] == 0
    per = np.array([r["labels"] for r in records]).sum(axis=0)
    assert card["counts"]["per_symptom"] == {s: int(per[i]) for i, s in enumerate(SYMPTOMS)}
    assert card["counts"]["no_symptom"] == sum(not any(r["labels"]) for r in records)


def _source_rows(out):
    with open(out / "source" / "annotations.csv", encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["DSM5_symptom"] in SYMPTOMS]


def test_sentences_and_their_labels_match_the_generators_sentence_ids(embedded):
    """The embedded generator names each annotated sentence <post_id>_<i>, i its index in split_sentences:
    the sentence labels alignment gives must be exactly those, status 1 winning over status 0."""
    out, card = embedded
    records = {r["post_id"]: r for r in _records(out)}
    expected: dict = {}
    rows = _source_rows(out)
    for row in sorted(rows, key=lambda r: r["status"]):  # status 0 first: status 1 overwrites it
        i = int(row["sentence_id"].rsplit("_", 1)[1])
        code = SENTENCE_EVIDENCE if row["status"] == "1" else SENTENCE_REJECTED
        expected.setdefault(row["post_id"], {}).setdefault(row["DSM5_symptom"], {})[i] = code
    assert any(r["status"] == "0" for r in rows) and any(r["status"] == "1" for r in rows)
    for pid, r in records.items():
        assert r["sentences"] == [list(span) for span in split_sentences(r["text"])]
        want = {sym: sorted(map(list, cells.items())) for sym, cells in expected.get(pid, {}).items()}
        assert r["sentence_labels"] == want, pid
        matrix = sentence_label_matrix(r)
        assert matrix.shape == (len(r["sentences"]), 9) and set(np.unique(matrix)) <= {-1, 0, 1}
        for e in r["evidence"]:  # every evidence span lies in sentences labelled 1 for its symptom
            s_idx = [i for i, (a, b) in enumerate(r["sentences"]) if a < e["end"] and e["start"] < b]
            assert s_idx and all(matrix[i, SYMPTOMS.index(e["symptom"])] == 1 for i in s_idx)
    n_status0 = sum(r["status"] == "0" for r in rows)
    assert card["alignment"]["per_status"]["status_0"] == {
        "aligned": n_status0,
        "exact": n_status0,
        "nearest": 0,
        "unaligned": 0,
        "no_sentence": 0,
    }
    assert card["alignment"]["per_status"]["status_1"]["aligned"] == card["alignment"]["exact"]


def test_the_card_counts_sentences(embedded):
    out, card = embedded
    records = _records(out)
    stats = card["sentences"]
    n = [len(r["sentences"]) for r in records]
    assert stats["total"] == sum(n) and stats["per_post"]["max"] == max(n) and stats["per_post"]["min"] == min(n)
    assert stats["per_post"]["mean"] == round(float(np.mean(n)), 1)
    codes = [c for r in records for pairs in r["sentence_labels"].values() for _, c in pairs]
    assert stats["labelled"] == {"evidence": codes.count(1), "rejected": codes.count(-1)}
    assert stats["labelled"]["rejected"] > 0
    fatigue = [
        sum(c == 1 for _, c in r["sentence_labels"].get("FATIGUE", []))
        for r in records
        if r["labels"][SYMPTOMS.index("FATIGUE")]
    ]
    assert stats["evidence_per_positive_pair"]["per_symptom"]["FATIGUE"] == round(float(np.mean(fatigue)), 2)
    every = [
        sum(c == 1 for _, c in r["sentence_labels"].get(sym, []))
        for r in records
        for sym, label in zip(SYMPTOMS, r["labels"])
        if label
    ]
    assert stats["evidence_per_positive_pair"]["mean"] == round(float(np.mean(every)), 2)
    assert min(every) >= 1  # every embedded positive pair has a passage (1-3 sentences, 1 + Poisson passages)
    assert stats["positive_pairs_without_evidence_sentence"] == 0  # every embedded evidence sentence aligns


HARD = {
    "posts": [
        ("h1", "I feel fine today. I cannot sleep at night anymore. Work is ok."),
        ("h2", "Hello there. I can't go to college alone. Without support I will give up. Bye now."),
        ("h3", "Nothing much happened. The weather was grey."),
    ]
    + [(f"f{i}", f"Filler post {i}. I walked the dog.") for i in range(9)],
    "annotations": [
        ("h1", "h1_1", "I cannot sleep at night anymore.", "SLEEP_ISSUES", 1),
        ("h1", "h1_x", "I cannot sleep at night anymore", "SLEEP_ISSUES", 0),  # same sentence: status 1 wins
        ("h1", "h1_0", "I feel fine today.", "DEPRESSED_MOOD", 0),  # a hard negative
        ("h1", "h1_9", "Completely unrelated words about bicycles.", "FATIGUE", 0),  # unaligned
        ("h2", "h2_1", "I can't go to college alone, without support I will give up.", "WORTHLESSNESS", 1),  # a pair
        ("h3", "h3_0", "Unrelated words about bicycles and ferries.", "ANHEDONIA", 1),  # unaligned status 1
        ("h3", "h3_1", "", "FATIGUE", 0),  # no sentence text
    ],
}


def _hard_folder(tmp_path):
    src = tmp_path / "hard"
    src.mkdir()
    with open(src / "posts.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([("post_id", "text"), *HARD["posts"]])
    with open(src / "annotations.csv", "w", encoding="utf-8", newline="") as fh:
        rows = [(*a, "e") for a in HARD["annotations"]]
        csv.writer(fh).writerows(
            [("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation"), *rows]
        )
    return src


def test_status_0_rows_become_hard_negative_sentences(tmp_path, caplog):
    card = prepare(_cfg(source="local", local_path=str(_hard_folder(tmp_path)), n_folds=2), tmp_path / "out", "k")
    records = {r["post_id"]: r for r in _records(tmp_path / "out")}
    h1, h2, h3 = records["h1"], records["h2"], records["h3"]
    assert [h1["text"][a:b] for a, b in h1["sentences"]] == [
        "I feel fine today.",
        "I cannot sleep at night anymore.",
        "Work is ok.",
    ]
    assert h1["sentence_labels"] == {"DEPRESSED_MOOD": [[0, -1]], "SLEEP_ISSUES": [[1, 1]]}
    assert h1["labels"] == [0, 0, 0, 1, 0, 0, 0, 0, 0]  # status-0 rows never make a label
    assert [e["symptom"] for e in h1["evidence"]] == ["SLEEP_ISSUES"]  # nor evidence
    assert h2["sentence_labels"] == {"WORTHLESSNESS": [[1, 1], [2, 1]]}  # a nearest match over two sentences
    assert h3["sentence_labels"] == {} and h3["labels"][SYMPTOMS.index("ANHEDONIA")] == 1
    assert records["f0"]["sentence_labels"] == {} and len(records["f0"]["sentences"]) == 2
    assert card["alignment"]["per_status"] == {
        "status_1": {"aligned": 2, "exact": 1, "nearest": 1, "unaligned": 1, "no_sentence": 0},
        "status_0": {"aligned": 2, "exact": 2, "nearest": 0, "unaligned": 1, "no_sentence": 1},
    }
    assert {k: card["alignment"][k] for k in ("exact", "nearest", "unaligned", "no_sentence")} == {
        "exact": 1,
        "nearest": 1,
        "unaligned": 1,
        "no_sentence": 0,
    }  # the top level stays the status-1 rows
    assert card["counts"]["annotation_rows"] == {"status_1": 3, "status_0": 4}
    stats = card["sentences"]
    assert stats["total"] == 3 + 4 + 2 + 9 * 2 and stats["labelled"] == {"evidence": 3, "rejected": 1}
    per = stats["evidence_per_positive_pair"]
    assert per["per_symptom"]["SLEEP_ISSUES"] == 1 and per["per_symptom"]["WORTHLESSNESS"] == 2
    assert per["per_symptom"]["ANHEDONIA"] == 0 and per["per_symptom"]["FATIGUE"] is None
    assert per["mean"] == 1.0 and stats["positive_pairs_without_evidence_sentence"] == 1
    assert "1 of 3 status-0 sentences could not be located" in caplog.text
    assert "1 of 3 status-1 sentences could not be located" in caplog.text
    prepared = load_prepared(tmp_path / "out")
    assert prepared.sentences(["h1", "f0"]) == [
        ["I feel fine today.", "I cannot sleep at night anymore.", "Work is ok."],
        ["Filler post 0.", "I walked the dog."],
    ]
    (m1, m0) = prepared.sentence_labels(["h1", "f0"])
    assert m1.dtype == np.int8 and m1.shape == (3, 9) and m0.shape == (2, 9) and not m0.any()
    assert m1[0, 0] == -1 and m1[1, 3] == 1 and np.count_nonzero(m1) == 2


def test_splits_folds_and_their_counts(embedded):
    out, card = embedded
    splits = json.loads((out / "splits.json").read_text(encoding="utf-8"))
    folds = json.loads((out / "folds.json").read_text(encoding="utf-8"))
    all_ids = {r["post_id"] for r in _records(out)}
    assert set(splits) == {"train", "validation", "test"}
    assert set().union(*map(set, splits.values())) == all_ids
    assert sum(len(v) for v in splits.values()) == len(all_ids)
    assert folds["n_folds"] == 3 and folds["seed"] == 42 and len(folds["folds"]) == 3
    held = sorted(p for f in folds["folds"] for p in f["heldout"])
    assert held == sorted(splits["train"])  # folds cover the train split only, each post once
    for name in splits:
        assert card["counts"]["splits"][name]["posts"] == len(splits[name])
    for f, c in zip(folds["folds"], card["counts"]["folds"]):
        assert c == {
            "fold": f["fold"],
            "train": len(f["train"]),
            "heldout": len(f["heldout"]),
            "heldout_per_symptom": c["heldout_per_symptom"],
        }
        assert sum(c["heldout_per_symptom"].values()) > 0


def test_load_prepared_roundtrip(embedded):
    out, card = embedded
    p = load_prepared(out)
    assert p.card == card and len(p.records) == 200 and len(p.folds) == 3
    ids = p.splits["test"][:5]
    assert p.texts(ids) == [p.records[i]["text"] for i in ids]
    y = p.labels(ids)
    assert y.dtype == np.float32 and y.shape == (5, 9)
    assert p.labels([]).shape == (0, 9)


def test_prepare_is_deterministic(embedded, tmp_path):
    out, card = embedded
    card2 = prepare(_cfg(), tmp_path, "abc123def456")
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert card2 == card


def test_real_sample_prepares_with_nearest_alignments(tmp_path, caplog):
    card = prepare(_cfg(source="local", local_path=str(SAMPLE)), tmp_path, "sample")
    al = card["alignment"]
    assert al["exact"] == 0 and al["nearest"] >= 8 and al["unaligned"] >= 1
    assert al["exact"] + al["nearest"] + al["unaligned"] == card["counts"]["annotation_rows"]["status_1"] == 21
    assert card["counts"]["annotation_rows"]["status_0"] == 4 and card["counts"]["posts"] == 17
    s0 = card["alignment"]["per_status"]["status_0"]
    assert s0["aligned"] + s0["unaligned"] == 4 and s0["aligned"] == s0["exact"] + s0["nearest"]
    assert card["source"]["kind"] == "local" and len(card["source"]["sha256"]) == 64
    assert "could not be located" in caplog.text
    records = {r["post_id"]: r for r in _records(tmp_path)}
    ev = records["s_993_557"]["evidence"][0]
    assert ev["match"] == "nearest" and "guilty" in records["s_993_557"]["text"][ev["start"] : ev["end"]]


def test_special_case_rows_are_counted_but_not_labels(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "posts.csv").write_text(
        "post_id,text\n" + "".join(f"p{i},Post number {i}. I feel empty.\n" for i in range(12)), encoding="utf-8"
    )
    (src / "annotations.csv").write_text(
        "post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n"
        "p1,p1_0,Post number 1.,SPECIAL_CASE,1,diagnosis\n"
        "p2,p2_1,I feel empty.,DEPRESSED_MOOD,1,sad\n"
        "p3,p3_1,I feel empty.,DEPRESSED_MOOD,0,rejected\n",
        encoding="utf-8",
    )
    card = prepare(_cfg(source="local", local_path=str(src)), tmp_path / "out", "k")
    records = {r["post_id"]: r for r in _records(tmp_path / "out")}
    assert card["counts"]["special_case_rows"] == 1
    assert records["p1"]["labels"] == [0] * 9 and records["p1"]["evidence"] == []
    assert records["p2"]["labels"][0] == 1 and records["p3"]["labels"] == [0] * 9
    assert card["counts"]["annotation_rows"] == {"status_1": 2, "status_0": 1}


# ------------------------------------------------------------------------------------------------ the release


def test_the_release_prepares_with_the_published_counting_rule_and_its_fixes_in_the_card(tmp_path):
    """Default config: the known defects repaired, status 1 winning, the counts designed into the fixture."""
    card = prepare(Data.resolve({"source": "local", "local_path": str(RELEASE)}), tmp_path / "out", "k")
    counts = card["counts"]
    assert counts["posts"] == 12 and counts["no_symptom"] == 4
    assert counts["per_symptom"] == {
        "DEPRESSED_MOOD": 3,
        "ANHEDONIA": 1,
        "APPETITE_CHANGE": 1,
        "SLEEP_ISSUES": 2,
        "PSYCHOMOTOR": 1,
        "FATIGUE": 1,
        "WORTHLESSNESS": 1,
        "COGNITIVE_ISSUES": 1,
        "SUICIDAL_THOUGHTS": 1,
    }
    assert counts["annotation_rows"] == {"status_1": 16, "status_0": 3} and counts["special_case_rows"] == 2
    file = "redsm5_annotations.csv"
    assert [{k: f[k] for k in ("kind", "file", "line", "lines", "post_id", "sentence_id", "symptom")} for f in card["fixes"]] == [
        {"kind": "misspelled_symptom", "file": file, "line": 4, "lines": [4], "post_id": "s_101_1",
         "sentence_id": "s_101_1_3", "symptom": "SLEEP_ISSUES"},
        {"kind": "contradicting_status", "file": file, "line": 8, "lines": [7, 8], "post_id": "s_104_5",
         "sentence_id": "s_104_5_0", "symptom": "FATIGUE"},
        {"kind": "contradicting_status", "file": file, "line": 10, "lines": [9, 10, 18], "post_id": "s_105_3",
         "sentence_id": "s_105_3_1", "symptom": "WORTHLESSNESS"},
        {"kind": "repeated_row", "file": file, "line": 12, "lines": [11, 12, 20], "post_id": "s_106_4",
         "sentence_id": "s_106_4_0", "symptom": "SUICIDAL_THOUGHTS"},
        {"kind": "repeated_row", "file": file, "line": 17, "lines": [16, 17], "post_id": "s_107_9",
         "sentence_id": "s_107_9_1", "symptom": "APPETITE_CHANGE"},
    ]  # fmt: skip
    assert card["fixes"][0]["action"] == "read as SLEEP_ISSUES"
    assert card["fixes"][2]["action"].startswith("status 1 kept (line 9), the status-0 row(s) at lines 10, 18 dropped")
    assert (
        card["fixes"][3]["action"]
        == "used once (line 11), its 2 distinct explanations all kept (joined by a blank line)"
    )
    assert card["split_origin"] == "stratified" and card["settings"]["split"]["protocol"] == "stratified"
    assert load_prepared(tmp_path / "out").card == card


def test_the_default_protocol_is_the_stratified_split(tmp_path):
    card = prepare(_cfg(), tmp_path / "out", "k")
    records = _records(tmp_path / "out")
    ids = [r["post_id"] for r in records]
    expected = split_posts(ids, [r["labels"] for r in records], validation_fraction=0.15, test_fraction=0.15, seed=42)
    assert json.loads((tmp_path / "out" / "splits.json").read_text(encoding="utf-8")) == expected
    assert card["settings"]["split"] == {
        "protocol": "stratified",
        "seed": 42,
        "validation_fraction": 0.15,
        "test_fraction": 0.15,
    }


def test_holdout_80_20_is_the_authors_test_split_of_the_posts_in_file_order(tmp_path):
    from sklearn.model_selection import train_test_split

    from workflow_lib.config import keys
    from workflow_lib.data.loader import source_fingerprint

    src = tmp_path / "src"
    src.mkdir()
    in_file_order = [f"p{i:02d}" for i in np.random.default_rng(0).permutation(50)]  # not sorted: the file's order
    (src / "posts.csv").write_text(
        "post_id,text\n" + "".join(f"{pid},Post {pid}. I feel tired.\n" for pid in in_file_order), encoding="utf-8"
    )
    (src / "annotations.csv").write_text(
        "post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n"
        + "".join(f"{pid},{pid}_1,I feel tired.,FATIGUE,1,e\n" for pid in in_file_order[::3]),
        encoding="utf-8",
    )
    split = {"protocol": "holdout_80_20", "seed": 42, "validation_fraction": 0.25, "test_fraction": 0.15}
    cfg = _cfg(source="local", local_path=str(src), split=split, n_folds=2)
    card = prepare(cfg, tmp_path / "out", "k")
    splits = json.loads((tmp_path / "out" / "splits.json").read_text(encoding="utf-8"))
    assert splits["test"] == sorted(train_test_split(in_file_order, test_size=0.2, random_state=42)[1])
    assert splits["test"] != sorted(train_test_split(sorted(in_file_order), test_size=0.2, random_state=42)[1])
    assert len(splits["test"]) == 10 and len(splits["validation"]) == 10
    assert sorted(splits["train"] + splits["validation"] + splits["test"]) == sorted(in_file_order)
    folds = json.loads((tmp_path / "out" / "folds.json").read_text(encoding="utf-8"))["folds"]
    assert sorted(p for f in folds for p in f["heldout"]) == splits["train"]
    assert card["split_origin"] == "holdout_80_20"
    assert card["settings"]["split"] == {
        "protocol": "holdout_80_20",
        "seed": 42,
        "validation_fraction": 0.25,
        "test_fraction": 0.2,
    }
    # a different protocol is different prepared data: another data key; the protocol enters every key
    fp = source_fingerprint(cfg)
    stratified = cfg.replace(split={**split, "protocol": "stratified"})
    assert keys.data_key(fp, cfg) != keys.data_key(fp, stratified)
    assert keys.data_key(fp, stratified) == keys.digest(
        {"kind": "data", "format": keys.PREPARED_FORMAT, "source": dict(fp), "settings": {"alignment_threshold": 0.5,
         "max_post_chars": 200000, "n_folds": 2,
         "split": {"protocol": "stratified", "seed": 42, "validation_fraction": 0.25, "test_fraction": 0.15}}}
    )  # fmt: skip
    assert keys.data_key(fp, cfg.replace(strict=True)) == keys.data_key(fp, cfg)  # strict refuses, never reshapes


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _row(pid, **labels):
    return {"post_id": pid, "text": f"Post {pid}. I can't sleep.", **{s: labels.get(s, 0) for s in SYMPTOMS}}


def test_uses_the_sources_own_splits(tmp_path):
    src = tmp_path / "hf"
    src.mkdir()
    _jsonl(src / "train.jsonl", [_row(f"t{i}", SLEEP_ISSUES=i % 2) for i in range(9)])
    _jsonl(src / "validation.jsonl", [_row("v1"), _row("v2", SLEEP_ISSUES=1)])
    _jsonl(src / "test.jsonl", [_row("x1", FATIGUE=1)])
    card = prepare(_cfg(source="local", local_path=str(src)), tmp_path / "out", "k")
    splits = json.loads((tmp_path / "out" / "splits.json").read_text(encoding="utf-8"))
    assert card["split_origin"] == "source" and card["layout"] == "split_folder"
    assert splits == {"train": [f"t{i}" for i in range(9)], "validation": ["v1", "v2"], "test": ["x1"]}
    assert card["alignment"]["no_sentence"] == 6  # labels given without evidence sentences


def test_given_splits_must_be_disjoint_and_complete():
    with pytest.raises(DataError) as info:
        check_given_splits({"train": ["a", "b"], "validation": ["c"], "test": ["b"]}, ["a", "b", "c"])
    assert "'b'" in str(info.value) and "'train'" in str(info.value) and "'test'" in str(info.value)
    with pytest.raises(DataError, match="in no split"):
        check_given_splits({"train": ["a"], "validation": ["c"], "test": []}, ["a", "b", "c"])
    with pytest.raises(DataError, match="not among the posts"):
        check_given_splits({"train": ["a", "z"], "validation": ["c"], "test": ["b"]}, ["a", "b", "c"])


def test_load_prepared_refuses_a_card_without_lengths(embedded, tmp_path):
    out, card = embedded
    for name in FILES:
        (tmp_path / name).write_bytes((out / name).read_bytes())
    old = {k: v for k, v in card.items() if k != "lengths"}  # a card written before the length distribution
    (tmp_path / "data_card.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_prepared(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "data_card.json") in msg and "'lengths' is a required property" in msg
    assert "run the prepare_data stage again" in msg


def _copy(out, to):
    to.mkdir(exist_ok=True)
    for name in FILES:
        (to / name).write_bytes((out / name).read_bytes())


def test_load_prepared_refuses_data_prepared_before_sentences_were_kept(embedded, tmp_path):
    """The data key did not change when the sentences were added: a folder of the older code is refused."""
    out, card = embedded
    old_card = {k: v for k, v in card.items() if k != "sentences"}
    old_card["alignment"] = {k: v for k, v in card["alignment"].items() if k != "per_status"}
    old_posts = [{k: v for k, v in r.items() if k not in ("sentences", "sentence_labels")} for r in _records(out)]
    _copy(out, tmp_path / "old")
    (tmp_path / "old" / "data_card.json").write_text(json.dumps(old_card), encoding="utf-8")
    _jsonl(tmp_path / "old" / "posts.jsonl", old_posts)
    with pytest.raises(DataError) as info:
        load_prepared(tmp_path / "old")
    msg = str(info.value)
    assert str(tmp_path / "old" / "data_card.json") in msg and "prepared by an older version" in msg
    assert "--forcerun prepare_data" in msg and f"delete {tmp_path / 'old'}" in msg
    _copy(out, tmp_path / "mixed")  # a current card beside records without the sentences
    _jsonl(tmp_path / "mixed" / "posts.jsonl", old_posts)
    with pytest.raises(DataError) as info:
        load_prepared(tmp_path / "mixed")
    msg = str(info.value)
    assert str(tmp_path / "mixed" / "posts.jsonl") in msg and f"post {old_posts[0]['post_id']!r}" in msg
    assert "'sentences', 'sentence_labels'" in msg and "prepared by an older version" in msg


def test_load_prepared_reports_missing_files(tmp_path):
    with pytest.raises(DataError, match="missing posts.jsonl"):
        load_prepared(tmp_path)


# ------------------------------------------------------------------------------------------------ long posts
# Posts of 40,000 and 150,000 characters whose evidence sentence is the post's last, in a ReDSM5-format folder;
# read with the project's default config (config/config.yaml) through prepare(), the prepare_data stage's entry.

FILLER = (
    "I went to work again and sat at my desk until the light outside was gone. "
    "My sister called about the weekend and I said I would think about it. "
    "The bus was late, so I walked home through the park in the rain. "
)
LONG = {
    "long_40k": (40_000, "Honestly I have not slept more than three hours a night since March.", "SLEEP_ISSUES"),
    "long_150k": (150_000, "Some nights I wish I could just not wake up at all.", "SUICIDAL_THOUGHTS"),
}


def _long_text(n_chars: int, evidence: str) -> str:
    head = "".join(itertools.islice(itertools.cycle(FILLER), n_chars - len(evidence) - 1))
    text = head[:-1] + ". " + evidence if head.endswith(" ") else head + " " + evidence
    assert len(text) == n_chars and text.endswith(evidence) and text.count(evidence) == 1
    return text


@pytest.fixture
def long_folder(tmp_path):
    posts = [(pid, _long_text(n, ev)) for pid, (n, ev, _) in LONG.items()]
    posts += [
        (f"s{i:02d}", f"Short post {i}. " + ("I can't sleep at night." if i % 3 == 0 else "Work is fine."))
        for i in range(22)
    ]
    anns = [(pid, f"{pid}_last", ev, sym, 1, "") for pid, (_, ev, sym) in LONG.items()]
    anns += [
        (pid, f"{pid}_1", "I can't sleep at night.", "SLEEP_ISSUES", 1, "")
        for pid, t in posts
        if t.endswith("I can't sleep at night.")
    ]
    d = tmp_path / "redsm5_long"
    d.mkdir()
    for name, header, rows in (
        ("posts.csv", ("post_id", "text"), posts),
        ("annotations.csv", ("post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation"), anns),
    ):
        with open(d / name, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])
    return d


@pytest.fixture
def fresh_csv_limit():
    """The csv module's field limit as a fresh process has it (131,072), restored afterwards."""
    before = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(before)


def _default_data_cfg(folder, **data):
    return config.load(
        REPO / "config" / "config.yaml", overrides={"data": {"source": "local", "local_path": str(folder), **data}}
    )["data"]


def test_long_posts_load_and_align_with_the_default_config(long_folder, tmp_path, fresh_csv_limit):
    data_cfg = _default_data_cfg(long_folder)
    assert data_cfg["max_post_chars"] is None  # the default: no limit
    card = prepare(data_cfg, tmp_path / "out", "long")
    jsonschema.Draft202012Validator(load_schema("data_card")).validate(card)
    records = {r["post_id"]: r for r in _records(tmp_path / "out")}
    for pid, (n, evidence, symptom) in LONG.items():
        rec = records[pid]
        assert len(rec["text"]) == n and rec["labels"][SYMPTOMS.index(symptom)] == 1
        (ev,) = rec["evidence"]
        assert ev["match"] == "exact" and (ev["start"], ev["end"]) == (n - len(evidence), n)
        assert rec["text"][ev["start"] : ev["end"]] == evidence
    assert card["alignment"]["unaligned"] == 0 and card["counts"]["posts"] == 24
    assert card["settings"]["max_post_chars"] is None
    assert "any length are accepted (data.max_post_chars: null, no limit)" in card["truncation_policy"]
    lengths = card["lengths"]
    words = {pid: len(records[pid]["text"].split()) for pid in LONG}
    assert lengths["all"]["chars"]["max"] == 150_000 and lengths["all"]["words"]["max"] == max(words.values())
    assert lengths["all"]["over_2000_words"] == lengths["all"]["over_512_words"] == 2
    splits = json.loads((tmp_path / "out" / "splits.json").read_text(encoding="utf-8"))
    home = next(name for name, ids in splits.items() if "long_150k" in ids)
    assert lengths["splits"][home]["chars"]["max"] == 150_000
    assert sum(lengths["splits"][n]["over_2000_words"] for n in splits) == 2
    held = [f["heldout"] for f in lengths["folds"]]
    assert sum(h["posts"] for h in held) == lengths["splits"]["train"]["posts"]
    assert sum(h["over_2000_words"] for h in held) == lengths["splits"]["train"]["over_2000_words"]


def test_a_limit_the_user_sets_still_refuses_the_long_post(long_folder, tmp_path):
    with pytest.raises(DataError) as info:
        prepare(_default_data_cfg(long_folder, max_post_chars=39_999), tmp_path / "out", "long")
    msg = str(info.value)
    assert f"{long_folder / 'posts.csv'}: line 2, column 'text'" in msg
    assert "post 'long_40k' has 40000 characters, more than data.max_post_chars = 39999" in msg
    assert "set it to null for no limit" in msg
    assert not (tmp_path / "out" / "data_card.json").exists()
    card = prepare(_default_data_cfg(long_folder, max_post_chars=150_000), tmp_path / "out", "long")
    assert card["settings"]["max_post_chars"] == 150_000 and card["counts"]["posts"] == 24
    assert "longer than data.max_post_chars (150000) characters are rejected" in card["truncation_policy"]
