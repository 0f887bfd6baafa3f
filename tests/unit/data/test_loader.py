"""Loader: the real sample, every bad-input error, fingerprints, hub (offline), split folders."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from workflow_lib.config import Data
from workflow_lib.data.loader import DataError, RawData, folder_sha256, load_folder, load_raw, source_fingerprint
from workflow_lib.data.synthetic import GENERATOR_VERSION
from workflow_lib.symptoms import SYMPTOMS

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "redsm5_sample"
RELEASE = SAMPLE.parent / "redsm5_release"  # the release's shape and known defects, invented text (README.md)
ANN_HEADER = "post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n"


def _cfg(**over):
    cfg = {
        "source": "local",
        "embedded": {"n_posts": 60, "seed": 13},
        "local_path": None,
        "hub": {"id": "irlab-udc/redsm5", "revision": None, "timeout_s": 2},
        "alignment_threshold": 0.5,
        "split": {"seed": 42, "validation_fraction": 0.15, "test_fraction": 0.15},
        "n_folds": 3,
    }
    cfg.update(over)
    return Data.resolve(cfg)  # the resolved data section a job passes on


def _folder(tmp_path, posts: str | bytes, anns: str | bytes = ANN_HEADER) -> Path:
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    for name, content in (("posts.csv", posts), ("annotations.csv", anns)):
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return d


GOOD_POSTS = 'post_id,text\np1,I can\'t sleep at night. Work is fine.\np2,"Hello, world. Nice day."\n'


def _error(tmp_path, posts=GOOD_POSTS, anns=ANN_HEADER, **kw) -> str:
    d = _folder(tmp_path, posts, anns)
    with pytest.raises(DataError) as info:
        load_folder(d, **kw)
    return str(info.value)


# ------------------------------------------------------------------------------------------- good input


def test_reads_the_real_sample():
    raw = load_raw(_cfg(local_path=str(SAMPLE)), SAMPLE)
    assert isinstance(raw, RawData) and raw.layout == "redsm5_csv" and raw.given_splits is None
    assert len(raw.posts) == 17 and len(raw.annotations) == 25
    assert raw.posts[0]["post_id"] == "s_1270_9" and raw.posts[0]["text"].startswith("I'm not sleeping")
    first = raw.annotations[0]
    assert first == {
        "post_id": "s_1270_9",
        "sentence_id": "s_1270_9_6",
        "sentence_text": "I recall that after I ran away, I spent weeks lying on the floor, frozen in "
        "fear and unable to move.",
        "DSM5_symptom": "SLEEP_ISSUES",
        "status": 1,
        "explanation": first["explanation"],
    }
    assert sum(a["status"] == 0 for a in raw.annotations) == 4
    assert {a["DSM5_symptom"] for a in raw.annotations} <= set(SYMPTOMS)


def test_accepts_pattern_names_bom_crlf_extra_columns_and_special_case(tmp_path):
    d = tmp_path / "release"
    d.mkdir()
    (d / "redsm5_posts.csv").write_bytes(b"\xef\xbb\xbfpost_id,text,subreddit\r\np1,Some text here.,r/x\r\n")
    (d / "redsm5_annotations.csv").write_text(
        "post_id,sentence_id,sentence_text,DSM5_symptom,status\r\np1,p1_0,Some text here.,SPECIAL_CASE,1\r\n",
        encoding="utf-8",
    )
    raw = load_folder(d)
    assert raw.posts == [{"post_id": "p1", "text": "Some text here."}]
    assert raw.annotations[0]["DSM5_symptom"] == "SPECIAL_CASE" and raw.annotations[0]["explanation"] == ""


def test_embedded_source_uses_the_csv_path(tmp_path):
    raw = load_raw(_cfg(source="embedded"), tmp_path)
    assert (tmp_path / "source" / "posts.csv").is_file() and (tmp_path / "source" / "annotations.csv").is_file()
    assert len(raw.posts) == 60 and raw.layout == "redsm5_csv" and "embedded" in raw.origin


# ------------------------------------------------------------------------------------------- the release as distributed

# The fixture's known defects as the data card lists them (tests/fixtures/redsm5_release/README.md).
RELEASE_FIXES = [
    ("misspelled_symptom", 4, [4], "s_101_1", "s_101_1_3", "SLEEP_ISSUES"),
    ("contradicting_status", 8, [7, 8], "s_104_5", "s_104_5_0", "FATIGUE"),
    ("contradicting_status", 10, [9, 10, 18], "s_105_3", "s_105_3_1", "WORTHLESSNESS"),
    ("repeated_row", 12, [11, 12, 20], "s_106_4", "s_106_4_0", "SUICIDAL_THOUGHTS"),
    ("repeated_row", 17, [16, 17], "s_107_9", "s_107_9_1", "APPETITE_CHANGE"),
]


def _fixes(raw: RawData) -> list[tuple]:
    return [(f.kind, f.line, list(f.lines), f.post_id, f.sentence_id, f.symptom) for f in raw.fixes]


def test_release_fixture_keeps_the_release_shape():
    """CRLF row ends and line breaks inside quoted fields, as distributed (.gitattributes keeps git off them)."""
    for name in ("redsm5_posts.csv", "redsm5_annotations.csv"):
        data = (RELEASE / name).read_bytes()
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        assert data.count(b"\r\n") >= len(rows) and data.endswith(b"\r\n")
        assert any("\n" in field for row in rows for field in row), name


def test_reads_the_release_with_its_known_defects_repaired(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="workflow_lib.data.loader"):
        raw = load_raw(Data.resolve({"source": "local", "local_path": str(RELEASE)}), tmp_path)  # the defaults
    assert raw.layout == "redsm5_csv" and len(raw.posts) == 12 and len(raw.annotations) == 19
    assert raw.posts[8]["text"].startswith("I can't focus on anything.\r\nI read the same page five times\nand")
    assert _fixes(raw) == RELEASE_FIXES and {f.file for f in raw.fixes} == {"redsm5_annotations.csv"}
    rows = {(a["sentence_id"], a["DSM5_symptom"]): a for a in raw.annotations}
    assert rows[("s_101_1_3", "SLEEP_ISSUES")]["status"] == 1
    assert rows[("s_104_5_0", "FATIGUE")]["status"] == 1 and rows[("s_105_3_1", "WORTHLESSNESS")]["status"] == 1
    assert rows[("s_106_4_0", "SUICIDAL_THOUGHTS")]["explanation"] == (
        "Passive death wish: the writer believes others would be better off without them.\n\n"
        "Recurrent thought that loved ones would be better off,\na form of suicidal ideation."
    )
    assert rows[("s_107_9_1", "APPETITE_CHANGE")]["explanation"].count("\n\n") == 1
    path = RELEASE / "redsm5_annotations.csv"
    assert f"{path}: line 4, column 'DSM5_symptom': unknown symptom 'LEEP_ISSUES'" in caplog.text
    assert f"{path}: line 8, column 'status'" in caplog.text and f"{path}: line 10, column 'status'" in caplog.text
    assert "the status-0 row(s) at lines 10, 18 dropped" in caplog.text
    assert f"{path}: 3 duplicate annotation row(s)" in caplog.text and "at line(s) 12, 17, 20;" in caplog.text
    assert "delete" not in caplog.text


def test_strict_refuses_the_release_naming_the_first_defect(tmp_path):
    cfg = Data.resolve({"source": "local", "local_path": str(RELEASE), "strict": True})
    with pytest.raises(DataError) as info:
        load_raw(cfg, tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{RELEASE / 'redsm5_annotations.csv'}: line 4, column 'DSM5_symptom': ")
    assert "'LEEP_ISSUES', a known misspelling of SLEEP_ISSUES" in msg and "(4 more known defect(s) after it)" in msg
    assert "data.strict is true" in msg and "set data.strict: false" in msg and "read as SLEEP_ISSUES" in msg


# ------------------------------------------------------------------------------------------- bad input


def test_unclosed_quote(tmp_path):
    msg = _error(tmp_path, posts='post_id,text\np1,"fine text"\np2,"never closed\np3,more\n')
    assert "posts.csv" in msg and "line 3" in msg and "never closed" in msg and "closing double quote" in msg


def test_stray_quote_inside_quoted_field(tmp_path):
    msg = _error(tmp_path, posts='post_id,text\np1,"a "quoted" word"\n')
    assert "posts.csv" in msg and "line 2" in msg and "malformed CSV" in msg and '""' in msg


def test_wrong_field_count(tmp_path):
    msg = _error(tmp_path, posts="post_id,text\np1,ok\np2,Hello, world\n")
    assert "posts.csv: line 3" in msg and "expected 2 fields" in msg and "found 3" in msg
    assert "double quotes" in msg


def test_missing_or_renamed_column(tmp_path):
    anns = "post_id,sentence_id,sentence_text,symptom,status\np1,p1_0,x,SLEEP_ISSUES,1\n"
    msg = _error(tmp_path, anns=anns)
    assert "annotations.csv: line 1" in msg and "missing required column(s) DSM5_symptom" in msg
    assert "found columns post_id, sentence_id, sentence_text, symptom, status" in msg
    assert "rename column 'symptom' to 'DSM5_symptom'" in msg
    msg = _error(tmp_path, posts="id,body\np1,x\n")
    assert "posts.csv: line 1" in msg and "post_id, text" in msg and "found columns id, body" in msg


def test_unknown_symptom_lists_allowed_names(tmp_path):
    anns = ANN_HEADER + "p1,p1_0,I can't sleep at night.,SLEEP_ISSUES,1,e\np1,p1_0,x,INSOMNIA,1,e\n"
    msg = _error(tmp_path, anns=anns)
    assert "annotations.csv: line 3, column 'DSM5_symptom'" in msg and "'INSOMNIA'" in msg
    for name in SYMPTOMS + ("SPECIAL_CASE",):
        assert name in msg


def test_status_must_be_0_or_1(tmp_path):
    for bad in ("2", "yes", ""):
        msg = _error(tmp_path, anns=ANN_HEADER + f"p1,p1_0,x,FATIGUE,{bad},e\n")
        assert "annotations.csv: line 2, column 'status'" in msg and "use 1" in msg and "or 0" in msg
    raw = load_folder(_folder(tmp_path, GOOD_POSTS, ANN_HEADER + "p1,p1_0,x,FATIGUE,1.0,e\np1,p1_1,y,FATIGUE, 0 ,e\n"))
    assert [a["status"] for a in raw.annotations] == [1, 0]


def test_empty_or_whitespace_post_text(tmp_path):
    for text in ('""', '"   \n  "'):
        msg = _error(tmp_path, posts=f"post_id,text\np1,ok\np2,{text}\n")
        assert "posts.csv: line 3, column 'text'" in msg and "'p2'" in msg and "empty text" in msg


def test_duplicate_post_id(tmp_path):
    msg = _error(tmp_path, posts="post_id,text\np1,a\np2,b\np1,c\n")
    assert "posts.csv: line 4, column 'post_id'" in msg and "duplicate post_id 'p1'" in msg and "line 2" in msg


def test_annotation_for_unknown_post(tmp_path):
    msg = _error(tmp_path, anns=ANN_HEADER + "p9,p9_0,x,FATIGUE,1,e\n")
    assert "annotations.csv: line 2, column 'post_id'" in msg and "'p9'" in msg and "not in posts.csv" in msg


def test_non_utf8_file(tmp_path):
    posts = b"post_id,text\np1,ok\np2,caf\xe9 au lait\n"
    msg = _error(tmp_path, posts=posts)
    assert "posts.csv: line 3, byte column 7" in msg and "UTF-8" in msg and "re-save" in msg


def test_empty_file_and_header_only(tmp_path):
    msg = _error(tmp_path, posts="")
    assert "posts.csv" in msg and "empty" in msg
    msg = _error(tmp_path, posts=GOOD_POSTS, anns=b"  \n")
    assert "annotations.csv" in msg and "empty" in msg
    msg = _error(tmp_path, posts="post_id,text\n")
    assert "posts.csv" in msg and "no posts" in msg
    # annotations with a header only: every post is a negative
    assert load_folder(_folder(tmp_path, GOOD_POSTS, ANN_HEADER)).annotations == []


def test_post_longer_than_max_post_chars(tmp_path):
    posts = "post_id,text\np1,short\np2," + "x" * 150 + "\n"
    msg = _error(tmp_path, posts=posts, max_post_chars=100)
    assert "posts.csv: line 3, column 'text'" in msg and "'p2'" in msg and "150 characters" in msg
    assert "max_post_chars = 100" in msg and "rejected, not truncated" in msg


def test_no_limit_by_default_and_a_set_limit_is_inclusive(tmp_path):
    d = _folder(tmp_path, "post_id,text\np1,short\np2," + "x" * 40_000 + "\n")
    assert len(load_raw(_cfg(local_path=str(d)), tmp_path).posts[1]["text"]) == 40_000  # default: null
    assert len(load_folder(d).posts) == 2 and len(load_folder(d, max_post_chars=40_000).posts) == 2
    with pytest.raises(DataError, match="post 'p2' has 40000 characters, more than data.max_post_chars = 39999"):
        load_raw(_cfg(local_path=str(d), max_post_chars=39_999), tmp_path)


def test_ambiguous_csv_names(tmp_path):
    d = tmp_path / "amb"
    d.mkdir()
    for name in ("a_posts.csv", "b_posts.csv", "annotations_x.csv"):
        (d / name).write_text("post_id,text\np1,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="exactly one posts CSV"):
        load_folder(d)


def test_missing_local_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        source_fingerprint(_cfg(local_path=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="not set"):
        load_raw(_cfg(local_path=None), tmp_path)


# ------------------------------------------------------------------------------------------- fingerprints


def test_fingerprints(tmp_path):
    emb = source_fingerprint(_cfg(source="embedded"))
    assert emb == {"kind": "embedded", "generator_version": GENERATOR_VERSION, "n_posts": 60, "seed": 13}
    d = _folder(tmp_path, GOOD_POSTS)
    fp = source_fingerprint(_cfg(local_path=str(d)))
    assert fp["kind"] == "local" and fp["path"] == str(d.resolve()) and len(fp["sha256"]) == 64
    (d / "README.md").write_text("docs do not change the data", encoding="utf-8")
    assert source_fingerprint(_cfg(local_path=str(d)))["sha256"] == fp["sha256"]
    (d / "posts.csv").write_text(GOOD_POSTS + "p3,another post\n", encoding="utf-8")
    assert folder_sha256(d) != fp["sha256"]


# ------------------------------------------------------------------------------------------- hub


def test_hub_offline_fails_fast_with_id_revision_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    cfg = _cfg(source="hub", hub={"id": "someone/absent-dataset", "revision": "v9", "timeout_s": 2})
    for call in (lambda: source_fingerprint(cfg), lambda: load_raw(cfg, tmp_path)):
        t0 = time.monotonic()
        with pytest.raises(DataError) as info:
            call()
        assert time.monotonic() - t0 < 10
        msg = str(info.value)
        assert "someone/absent-dataset" in msg and "'v9'" in msg
        assert "data.source: local" in msg and "data.local_path" in msg
        assert "hf_" not in msg.replace("hf_***", "")


def test_hub_uses_the_cache_first(tmp_path, monkeypatch):
    """A snapshot already in the HF cache resolves and loads with no network at all."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "hf" / "hub"
    repo = cache / "datasets--someone--cached-set"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha, encoding="utf-8")
    shutil.copytree(SAMPLE, repo / "snapshots" / sha / "data")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    cfg = _cfg(source="hub", hub={"id": "someone/cached-set", "revision": None, "timeout_s": 2})
    assert source_fingerprint(cfg) == {
        "kind": "hub",
        "id": "someone/cached-set",
        "revision_requested": None,
        "resolved_revision": sha,
    }
    raw = load_raw(cfg, tmp_path)
    assert len(raw.posts) == 17 and sha in raw.origin


def _hub_cache(cache: Path, repo_id: str, sha: str, files: dict[str, bytes]) -> None:
    """A Hugging Face hub cache as huggingface_hub lays it out: blobs/<hash>, refs/main, snapshots/<sha>/ links."""
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    for sub in ("blobs", "refs", f"snapshots/{sha}"):
        (repo / sub).mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(sha, encoding="utf-8")
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (repo / "snapshots" / sha / name).symlink_to(Path("..", "..", "blobs", blob.name))


# The dataset card's front matter of irlab-udc/redsm5: one config whose "splits" are the two files.
HUB_README = """---
license: apache-2.0
configs:
- config_name: default
  data_files:
  - split: annotations
    path: redsm5_annotations.csv
  - split: posts
    path: redsm5_posts.csv
---
# ReDSM5
"""


@pytest.mark.parametrize("revision", [None, "main", "5f1c0e0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"])
def test_hub_snapshot_laid_out_like_irlab_udc_redsm5_loads_offline(tmp_path, monkeypatch, revision):
    """The release as the hub serves it (datasets.load_dataset fails on it: its two "splits" have different
    columns) is read as a ReDSM5 CSV folder from the cache, with no network, and the snapshot's commit recorded."""
    import socket

    from workflow_lib.data.prepare import prepare

    sha = "5f1c0e0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
    files = {name: (RELEASE / name).read_bytes() for name in ("redsm5_posts.csv", "redsm5_annotations.csv")}
    files.update({"README.md": HUB_README.encode(), ".gitattributes": b"*.csv filter=lfs diff=lfs merge=lfs -text\n"})
    _hub_cache(tmp_path / "hub", "irlab-udc/redsm5", sha, files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "elsewhere"))

    def no_network(*args, **kwargs):
        raise AssertionError("the hub path went to the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    cfg = Data.resolve({"source": "hub", "hub": {"id": "irlab-udc/redsm5", "revision": revision}})
    assert source_fingerprint(cfg) == {
        "kind": "hub",
        "id": "irlab-udc/redsm5",
        "revision_requested": revision,
        "resolved_revision": sha,
    }
    card = prepare(cfg, tmp_path / "out", "k")
    assert card["source"]["resolved_revision"] == sha and card["origin"].startswith(
        f"hub data set irlab-udc/redsm5@{sha}"
    )
    assert card["layout"] == "redsm5_csv" and card["counts"]["posts"] == 12
    assert [(f["kind"], f["file"], f["line"]) for f in card["fixes"]] == [
        (kind, "redsm5_annotations.csv", line) for kind, line, *_ in RELEASE_FIXES
    ]


# ------------------------------------------------------------------------------------------- save_to_disk folders


def test_a_save_to_disk_dataset_is_refused_with_what_it_is_and_what_to_give(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    datasets.Dataset.from_dict({"post_id": ["p1", "p2"], "text": ["One.", "Two."]}).save_to_disk(str(folder))
    assert (folder / "state.json").is_file() and list(folder.glob("data-*.arrow"))
    with pytest.raises(DataError) as info:
        load_raw(_cfg(local_path=str(folder)), tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{folder.resolve()}: a folder written by datasets' save_to_disk (a Dataset; found ")
    assert "not valid JSON" not in msg and "redsm5_posts.csv and redsm5_annotations.csv" in msg
    assert f"datasets.load_from_disk('{folder.resolve()}'); ds.to_csv('<dir>/train.csv')" in msg
    assert "set data.local_path: <dir>" in msg


def test_a_save_to_disk_dataset_dict_of_the_release_says_how_to_export_its_two_files(tmp_path):
    import datasets

    folder = tmp_path / "saved_dict"
    datasets.DatasetDict(
        {
            "annotations": datasets.Dataset.from_dict({"post_id": ["p1"], "DSM5_symptom": ["FATIGUE"], "status": [1]}),
            "posts": datasets.Dataset.from_dict({"post_id": ["p1"], "text": ["One."]}),
        }
    ).save_to_disk(str(folder))
    with pytest.raises(DataError) as info:
        load_folder(folder)
    msg = str(info.value)
    assert "save_to_disk (a DatasetDict with split(s) annotations, posts; found dataset_dict.json" in msg
    assert "ds['posts'].to_csv('<dir>/posts.csv'); ds['annotations'].to_csv('<dir>/annotations.csv')" in msg
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"post_id": ["p1"], "text": ["x"]})}).save_to_disk(
        str(tmp_path / "splits")
    )
    with pytest.raises(DataError, match=r"for name, split in ds.items\(\): split.to_csv\(f'<dir>/\{name\}.csv'\)"):
        load_folder(tmp_path / "splits")


# ------------------------------------------------------------------------------------------- split folders


def _jsonl(path: Path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _row(pid, text, **labels):
    row = {"post_id": pid, "text": text}
    row.update({s: int(labels.get(s, 0)) for s in SYMPTOMS})
    return row


def test_split_folder_with_symptom_columns_and_evidence(tmp_path):
    d = tmp_path / "splits"
    d.mkdir()
    train = [
        _row("t1", "I can't sleep at night. Work is fine.", SLEEP_ISSUES=1),
        _row("t2", "Nice weather today. Went for a walk."),
        _row("t3", "I feel worthless. Also tired.", WORTHLESSNESS=1, FATIGUE=1),
    ]
    train[0]["evidence"] = [{"symptom": "SLEEP_ISSUES", "sentence_text": "I can't sleep at night."}]
    train[1]["evidence"] = []
    train[2]["evidence"] = [{"symptom": "WORTHLESSNESS", "sentence_text": "I feel worthless."}]
    _jsonl(d / "train.jsonl", train)
    _jsonl(d / "validation.jsonl", [dict(_row("v1", "Just a post."), evidence=[])])
    _jsonl(d / "test.jsonl", [dict(_row("x1", "I have no energy.", FATIGUE=1), evidence=[])])
    raw = load_raw(_cfg(local_path=str(d)), tmp_path)
    assert raw.layout == "split_folder"
    assert raw.given_splits == {"train": ["t1", "t2", "t3"], "validation": ["v1"], "test": ["x1"]}
    rows = {(a["post_id"], a["DSM5_symptom"]): a for a in raw.annotations}
    assert rows[("t1", "SLEEP_ISSUES")]["sentence_text"] == "I can't sleep at night."
    assert rows[("t3", "FATIGUE")]["sentence_text"] == ""  # a label without an evidence sentence
    assert rows[("x1", "FATIGUE")]["status"] == 1 and len(raw.annotations) == 4


def test_split_folder_csv_with_annotations_column(tmp_path):
    d = tmp_path / "csvsplits"
    d.mkdir()
    ann = json.dumps([{"sentence_text": "I feel empty.", "DSM5_symptom": "DEPRESSED_MOOD", "status": 1}])
    for split, pid in (("train", "a"), ("validation", "b"), ("test", "c")):
        (d / f"{split}.csv").write_text(
            "post_id,text,annotations\n" + f'{pid},"I feel empty. Ok.","{ann.replace(chr(34), chr(34) * 2)}"\n',
            encoding="utf-8",
        )
    raw = load_folder(d)
    assert raw.given_splits == {"train": ["a"], "validation": ["b"], "test": ["c"]}
    assert [a["DSM5_symptom"] for a in raw.annotations] == ["DEPRESSED_MOOD"] * 3


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_split_folder_reads_a_150000_character_post(tmp_path, fmt):
    before = csv.field_size_limit(131_072)  # Python's default, as a fresh process has it
    try:
        d = tmp_path / "long"
        d.mkdir()
        text = "I keep going over the same day again. " * 4_000 + "Nothing is fun any more."
        assert len(text) > 150_000
        rows = {
            "train": [_row("t1", text, ANHEDONIA=1), _row("t2", "Short one.")],
            "validation": [_row("v1", "Another.")],
            "test": [_row("x1", "Last.")],
        }
        for split, items in rows.items():
            if fmt == "jsonl":
                _jsonl(d / f"{split}.jsonl", items)
            else:
                with open(d / f"{split}.csv", "w", encoding="utf-8", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=list(items[0]))
                    w.writeheader()
                    w.writerows(items)
        raw = load_raw(_cfg(local_path=str(d)), tmp_path)  # the default config: no limit
    finally:
        csv.field_size_limit(before)
    assert raw.posts[0] == {"post_id": "t1", "text": text}
    assert raw.given_splits["train"] == ["t1", "t2"] and raw.annotations[0]["DSM5_symptom"] == "ANHEDONIA"


def test_split_folder_post_in_two_splits_is_rejected(tmp_path):
    d = tmp_path / "overlap"
    d.mkdir()
    _jsonl(d / "train.jsonl", [_row("p1", "one"), _row("p2", "two")])
    _jsonl(d / "validation.jsonl", [_row("p3", "three")])
    _jsonl(d / "test.jsonl", [_row("p2", "two again")])
    with pytest.raises(DataError) as info:
        load_folder(d)
    msg = str(info.value)
    assert "'p2'" in msg and "'train'" in msg and "'test'" in msg and "disjoint" in msg


def test_split_folder_bad_columns_and_missing_splits(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    _jsonl(d / "train.jsonl", [{"post_id": "p1", "text": "x", "DEPRESSED_MOOD": 1}])
    with pytest.raises(DataError, match="symptom column\\(s\\) ANHEDONIA"):
        load_folder(d)
    _jsonl(d / "train.jsonl", [_row("p1", "x")])
    _jsonl(d / "test.jsonl", [_row("p2", "y")])
    with pytest.raises(DataError, match="required: train, validation and test"):
        load_folder(d)
    (d / "test.jsonl").unlink()
    raw = load_folder(d)  # train alone: the pipeline makes its own splits
    assert raw.given_splits is None and [p["post_id"] for p in raw.posts] == ["p1"]


def test_unaligned_evidence_is_a_warning_not_an_error(tmp_path, caplog):
    from workflow_lib.data.prepare import build_records

    anns = ANN_HEADER + "p1,p1_0,Completely unrelated words about bicycles.,SLEEP_ISSUES,1,e\n"
    raw = load_folder(_folder(tmp_path, GOOD_POSTS, anns))
    with caplog.at_level(logging.WARNING, logger="workflow_lib.data.prepare"):
        records, counts = build_records(raw, 0.5)
    assert counts["unaligned"] == 1 and records[0]["labels"][SYMPTOMS.index("SLEEP_ISSUES")] == 1
    assert any("1 of 1" in r.getMessage() and "could not be located" in r.getMessage() for r in caplog.records)
