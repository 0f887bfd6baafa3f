"""The predictor (workflow_lib/shipping/predictor.py, cli.py; and pipeline.stages.predict_posts, the predict rule's
stage): rows, thresholds, evidence layout, inputs, errors, CLI (an MLflow model URI and the CLI in fresh
processes: tests/integration/test_predict_processes.py)."""

from __future__ import annotations

import csv
import io
import json
import logging
import sys

import numpy as np
import pytest

from tests.helpers.predict import KINDS, POSTS, TINY, saved_models
from workflow_lib.data.loader import DataError
from workflow_lib.learning.checkpoint import CheckpointError, save_checkpoint
from workflow_lib.learning.inference import predict as inference_predict
from workflow_lib.pipeline import stages
from workflow_lib.shipping import cli
from workflow_lib.shipping import predictor as P
from workflow_lib.symptoms import SYMPTOMS


def _ids_texts(rows):
    return [r["post_id"] for r in rows]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One saved checkpoint per kind; the thresholds split each symptom's probabilities in two."""
    return saved_models(tmp_path_factory.mktemp)


@pytest.fixture(scope="module")
def predictors(models):
    return {k: P.Predictor.load(m["folder"], threads=1) for k, m in models.items()}


def _direct(m, posts=POSTS):
    """What the final stage's evaluation computes: one inference.predict over every post."""
    return inference_predict(m["model"], m["tok"], P.post_records(posts), m["cfg"], max_length=48)


@pytest.mark.parametrize("kind", list(KINDS))
def test_rows_equal_the_final_stages_prediction_and_tuned_thresholds(models, predictors, kind):
    m, pr = models[kind], predictors[kind]
    rows = pr.predict(POSTS, progress=False)
    direct = _direct(m)
    assert _ids_texts(rows) == [p["post_id"] for p in POSTS]
    probs = np.array([[r["probabilities"][s] for s in SYMPTOMS] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(probs, direct.probs)  # bit-identical
    thr = np.array([m["thresholds"][s] for s in SYMPTOMS])
    for r, p in zip(rows, direct.probs):
        assert list(r["probabilities"]) == list(SYMPTOMS) and list(r["decisions"]) == list(SYMPTOMS)
        assert [r["decisions"][s] for s in SYMPTOMS] == [int(x) for x in p >= thr]
        assert r["predicted"] == [s for s in SYMPTOMS if r["decisions"][s]]
        assert r["threshold"] == "tuned" and r["final_key"] == "abc123abc123"
        assert r["code_version"] == pr.code_version
    decided = np.array([[r["decisions"][s] for s in SYMPTOMS] for r in rows])
    assert 0 < decided.sum() < decided.size  # the median thresholds split the posts
    assert pr.final_key == "abc123abc123" and pr.thresholds == m["thresholds"]
    assert pr.has_evidence == (kind != "plain")


def test_model_without_evidence_has_no_evidence_keys(predictors):
    rows = predictors["plain"].predict(POSTS[:2], progress=False)
    assert all("evidence" not in r and "evidence_scope" not in r for r in rows)


def test_multi_label_evidence_is_the_posts_spans_for_every_predicted_symptom(models, predictors):
    rows = predictors["evidence"].predict(POSTS, progress=False)
    spans = _direct(models["evidence"]).spans
    assert len(spans) == len(POSTS)
    assert sum(len(s) for s in spans) > 0
    for i, (r, post) in enumerate(zip(rows, POSTS)):
        assert r["evidence_scope"] == "post"
        assert list(r["evidence"]) == r["predicted"]
        want = [{"start": s, "end": e, "text": post["text"][s:e]} for s, e in spans[i]]
        assert all(r["evidence"][sym] == want for sym in r["predicted"])


def test_binary_pairs_evidence_is_per_symptom(models, predictors):
    rows = predictors["pairs"].predict(POSTS, progress=False)
    spans = _direct(models["pairs"]).spans
    assert len(spans) == 9 * len(POSTS)  # post-major, symptoms in SYMPTOMS order
    assert any(spans[i * 9 + j] != spans[i * 9] for i in range(len(POSTS)) for j in range(9))
    n = 0
    for i, (r, post) in enumerate(zip(rows, POSTS)):
        assert r["evidence_scope"] == "symptom" and list(r["evidence"]) == r["predicted"]
        for sym in r["predicted"]:
            j = SYMPTOMS.index(sym)
            assert r["evidence"][sym] == [
                {"start": s, "end": e, "text": post["text"][s:e]} for s, e in spans[i * 9 + j]
            ]
            n += len(r["evidence"][sym])
    assert n > 0


def test_threshold_override(predictors):
    pr = predictors["plain"]
    tuned = pr.predict(POSTS, progress=False)
    rows = pr.predict(POSTS, threshold=0.5, progress=False)
    for r, t in zip(rows, tuned):
        assert r["threshold"] == 0.5 and r["probabilities"] == t["probabilities"]
        assert r["decisions"] == {s: int(r["probabilities"][s] >= 0.5) for s in SYMPTOMS}
    assert [r["decisions"] for r in rows] != [t["decisions"] for t in tuned]
    with pytest.raises(P.PredictError, match=r"threshold 1.5 is outside \[0, 1\]"):
        pr.predict(POSTS, threshold=1.5, progress=False)


def test_model_without_thresholds_uses_half_with_a_warning(models, tmp_path, caplog):
    m = models["plain"]
    folder = tmp_path / "refit" / "model"
    save_checkpoint(folder, m["model"], m["tok"], backbone_spec=TINY, train_cfg=m["cfg"], meta={"stage": "refit"})
    with caplog.at_level(logging.WARNING, logger="workflow_lib.shipping.predictor"):
        pr = P.Predictor.load(folder.parent)  # the stage folder holding model/
    assert any("no tuned thresholds" in r.getMessage() for r in caplog.records)
    assert pr.thresholds == dict.fromkeys(SYMPTOMS, 0.5) and pr.final_key is None
    rows = pr.predict(POSTS[:3], progress=False)
    assert all(r["decisions"] == {s: int(r["probabilities"][s] >= 0.5) for s in SYMPTOMS} for r in rows)
    assert all(r["final_key"] is None for r in rows)


@pytest.mark.parametrize("kind", ["evidence", "pairs"])
def test_deterministic_and_chunks_agree(predictors, kind):
    pr = predictors[kind]
    posts = POSTS * 3
    posts = [{"post_id": f"{p['post_id']}-{k}", "text": p["text"]} for k, p in enumerate(posts)]
    one = pr.predict(posts, progress=False, chunk_size=None)
    assert pr.predict(posts, progress=False, chunk_size=None) == one  # run to run: identical
    assert pr.predict(posts, progress=True) == one  # the default chunk holds them all: one call, bar or not
    chunked = pr.predict(posts, progress=False, chunk_size=4)
    assert [r["post_id"] for r in chunked] == [r["post_id"] for r in one]
    a = np.array([[r["probabilities"][s] for s in SYMPTOMS] for r in one])
    b = np.array([[r["probabilities"][s] for s in SYMPTOMS] for r in chunked])
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # other batch compositions: float rounding only
    assert [r["decisions"] for r in chunked] == [r["decisions"] for r in one]
    assert [r["evidence"] for r in chunked] == [r["evidence"] for r in one]
    assert pr.predict(posts, progress=False, chunk_size=4) == chunked


@pytest.mark.parametrize("kind", ["plain", "pairs"])
def test_a_progress_bar_that_redraws_leaves_the_predictions_alone(predictors, kind, monkeypatch):
    """tqdm's update() returns True whenever it redraws; the bar advances from a forward hook, and a
    hook's return value would replace the model's output (a long MiniLM run hit this)."""
    import tqdm.auto

    pr = predictors[kind]
    posts = [{"post_id": f"{p['post_id']}-{k}", "text": p["text"]} for k, p in enumerate(POSTS * 3)]
    quiet = pr.predict(posts, progress=False, batch_size=2)
    monkeypatch.setattr(tqdm.auto.tqdm, "update", lambda self, n=1: True)  # as if it redrew at every step
    assert pr.predict(posts, progress=True, batch_size=2) == quiet


def test_posts_with_bad_text_are_refused(predictors):
    with pytest.raises(P.PredictError, match=r"post 1 \(post_id 'b'\): 'text' must be a non-empty string"):
        predictors["plain"].predict([{"post_id": "a", "text": "ok"}, {"post_id": "b", "text": " "}])


# -------------------------------------------------------------------------------------------- inputs


def test_read_posts_csv_jsonl_json_and_stdin(tmp_path, monkeypatch):
    rows = [("p1", 'She said "no", then left.\nSecond line.'), ("7", "ünïcode ✓")]
    path = tmp_path / "posts.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["post_id", "text", "extra"])
        w.writerows([(a, b, "x") for a, b in rows])
    want = [{"post_id": a, "text": b} for a, b in rows]
    assert P.read_posts(path) == want
    jl = tmp_path / "posts.jsonl"
    jl.write_text(
        "\n".join(json.dumps({"post_id": a if a != "7" else 7, "text": b, "labels": [1]}) for a, b in rows) + "\n\n",
        encoding="utf-8",
    )
    assert P.read_posts(jl) == want  # an int id becomes its string; other keys are ignored
    js = tmp_path / "posts.json"
    js.write_text(json.dumps([{"post_id": a, "text": b} for a, b in rows]), encoding="utf-8")
    assert P.read_posts(js) == want
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"first post\nsecond post\n")))
    assert P.read_posts("-") == [{"post_id": "1", "text": "first post"}, {"post_id": "2", "text": "second post"}]


def test_read_posts_accepts_a_post_longer_than_csvs_default_field_limit(tmp_path):
    long = "word " * 60000  # 300 000 characters > csv's 131 072 default
    path = tmp_path / "long.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["post_id", "text"], ["p1", long]])
    assert P.read_posts(path) == [{"post_id": "p1", "text": long}]


@pytest.mark.parametrize(
    "name, content, match",
    [
        (
            "posts.csv",
            b"post_id,body\np1,hello\n",
            r"posts.csv: line 1 \(header\): missing required column\(s\) text; found columns post_id, body.*"
            r"Fix: rename column 'body' to 'text'",
        ),
        (
            "posts.csv",
            b"id,text\np1,hello\n",
            r"line 1 \(header\): missing required column\(s\) post_id.*"
            r"rename column 'id' to 'post_id'",
        ),
        (
            "posts.csv",
            b"post_id,text\np1,hello\np2,  \n",
            r"posts.csv: line 3, column 'text': post 'p2' has empty text; fill in the post's text or remove the row",
        ),
        (
            "posts.csv",
            b"post_id,text\np1,hello\np2,caf\xe9\n",
            r"posts.csv: line 3, byte column 7: not valid UTF-8 \(byte 0xe9\); re-save the file as UTF-8",
        ),
        (
            "posts.csv",
            b"post_id,text\np1,hello\np1,again\n",
            r"posts.csv: line 3, column 'post_id': duplicate post_id 'p1' \(first at .*posts.csv: line 2\)",
        ),
        ("posts.csv", b"", r"posts.csv: the file is empty"),
        ("posts.csv", b"post_id,text\n", r"posts.csv: has a header but no posts"),
        (
            "posts.jsonl",
            b'{"post_id": "p1", "text": "a"}\n{"post_id": "p2"}\n',
            r"posts.jsonl: line 2: missing key\(s\) text; found keys post_id; every object needs post_id and text",
        ),
        (
            "posts.jsonl",
            b'{"post_id": "p1", "text": "a"}\n{"post_id": "p2", "text": ""}\n',
            r"posts.jsonl: line 2, column 'text': post 'p2' has empty text",
        ),
        (
            "posts.jsonl",
            b'{"post_id": "p1", "text": "a"}\n{"post_id": "p2", \n',
            r"posts.jsonl: line 2, column \d+: not valid JSON",
        ),
        (
            "posts.jsonl",
            b'{"post_id": "p1", "text": "a"}\n{"post_id": "p1", "text": "b"}\n',
            r"posts.jsonl: line 2, column 'post_id': duplicate post_id 'p1'",
        ),
        ("posts.txt", b"hello\n", r"posts.txt: unknown input type '.txt'; pass a .csv or .jsonl file"),
    ],
)
def test_bad_input_errors_name_file_line_and_fix(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        P.read_posts(path)


def test_bad_stdin_errors(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\n\nthree\n")))
    with pytest.raises(DataError, match=r"<stdin>: line 2, column 'text': post '2' has empty text"):
        P.read_posts("-")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\nbad \xff byte\n")))
    with pytest.raises(DataError, match=r"<stdin>: line 2, byte column 5: not valid UTF-8 \(byte 0xff\)"):
        P.read_posts("-")


# -------------------------------------------------------------------------------------------- outputs


def test_write_predictions_jsonl_and_csv(predictors, tmp_path):
    rows = predictors["evidence"].predict(POSTS, progress=False)
    P.write_predictions(rows, tmp_path / "out.jsonl")
    back = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert back == rows
    P.write_predictions(rows, tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        flat = list(csv.DictReader(fh))
    assert list(flat[0]) == P.csv_header()
    for f, r in zip(flat, rows):
        assert f["post_id"] == r["post_id"] and f["final_key"] == r["final_key"]
        assert [float(f[f"p_{s}"]) for s in SYMPTOMS] == [r["probabilities"][s] for s in SYMPTOMS]
        assert [int(f[f"y_{s}"]) for s in SYMPTOMS] == [r["decisions"][s] for s in SYMPTOMS]
        assert json.loads(f["evidence"]) == r["evidence"]
    with pytest.raises(
        P.PredictError,
        match=r"out.parquet: unknown output type '.parquet'; name the output file "
        r"out.jsonl .* or out.csv",
    ):
        P.write_predictions(rows, tmp_path / "out.parquet")


# -------------------------------------------------------------------------------------------- loading


def test_load_errors(models, tmp_path):
    with pytest.raises(P.PredictError, match=r"does not exist; pass a model folder"):
        P.Predictor.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(P.PredictError, match=r"empty: not a model folder \(no manifest.json, no model/ inside\)"):
        P.Predictor.load(tmp_path / "empty")
    import shutil

    bad = tmp_path / "bad" / "model"
    shutil.copytree(models["plain"]["folder"], bad)
    with open(bad / "model.safetensors", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(
        CheckpointError,
        match=r"model.safetensors: sha256 mismatch.*delete the folder .*bad/model.*"
        r"model written by code_version \S+; this code is",
    ):
        P.Predictor.load(bad)


def test_model_of_another_code_version_loads_with_a_warning(models, tmp_path, caplog):
    m = models["plain"]
    folder = tmp_path / "old" / "model"
    save_checkpoint(folder, m["model"], m["tok"], backbone_spec=TINY, train_cfg=m["cfg"], meta={"stage": "final"})
    info = json.loads((folder / "checkpoint.json").read_text())
    info["code_version"] = "0.0.1+gdeadbeef00"
    (folder / "checkpoint.json").write_text(json.dumps(info))
    from workflow_lib.config.keys import file_sha256
    from workflow_lib.learning.checkpoint import MANIFEST

    man = json.loads((folder / MANIFEST).read_text())
    man["files"]["checkpoint.json"] = {
        "sha256": file_sha256(folder / "checkpoint.json"),
        "bytes": (folder / "checkpoint.json").stat().st_size,
    }
    (folder / MANIFEST).write_text(json.dumps(man))
    with caplog.at_level(logging.WARNING, logger="workflow_lib.shipping.predictor"):
        pr = P.Predictor.load(folder)
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "model written by code_version 0.0.1+gdeadbeef00, this code is" in msg
    assert pr.code_version == "0.0.1+gdeadbeef00"
    assert pr.predict(POSTS[:1], progress=False)[0]["code_version"] == "0.0.1+gdeadbeef00"


# -------------------------------------------------------------------------------------------- CLI


def test_cli_main_exit_codes_and_summary(models, tmp_path, capsys):
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    out = tmp_path / "pred.csv"
    assert (
        cli.main(
            [
                str(models["pairs"]["folder"]),
                str(posts),
                "-o",
                str(out),
                "--threshold",
                "0.5",
                "--batch-size",
                "5",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"redsm5-predict: {len(POSTS)} posts in ") and "posts/s, 1 threads" in line
    assert line.endswith(f"-> {out}")
    with open(out, newline="", encoding="utf-8") as fh:
        assert [r["post_id"] for r in csv.DictReader(fh)] == [p["post_id"] for p in POSTS]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"post_id,txt\np1,a\n")
    assert cli.main([str(models["plain"]["folder"]), str(bad), "-o", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("redsm5-predict: error: ") and "rename column 'txt' to 'text'" in err[0]
    assert cli.main([str(models["plain"]["folder"]), str(posts), "-o", str(tmp_path / "x.xlsx")]) == 2
    assert "unknown output type '.xlsx'" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "no-model"), str(posts), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "does not exist; pass a model folder" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_predict_posts_stage_writes_rows_and_summary_and_refuses_a_changed_input(models, tmp_path):
    from workflow_lib.config.keys import input_digest

    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps(p) + "\n" for p in POSTS), encoding="utf-8")
    digest = input_digest(posts)
    assert len(digest) == 12 and digest == input_digest(posts)
    out, summary_path = tmp_path / "pred" / "predictions.jsonl", tmp_path / "pred" / "predictions.json"
    summary = stages.predict_posts(
        model_dir=str(models["plain"]["folder"]),
        input_path=str(posts),
        input_digest=digest,
        out=str(out),
        summary_path=str(summary_path),
        threads=1,
    )
    assert [json.loads(line)["post_id"] for line in out.read_text().splitlines()] == [p["post_id"] for p in POSTS]
    assert json.loads(summary_path.read_text()) == json.loads(json.dumps(summary))
    assert summary["n_posts"] == len(POSTS) and summary["input_digest"] == digest and summary["threads"] == 1
    with pytest.raises(P.PredictError, match=r"its content changed while the workflow ran .* run the predict target"):
        stages.predict_posts(
            model_dir=str(models["plain"]["folder"]),
            input_path=str(posts),
            input_digest="0" * 12,
            out=str(out),
            summary_path=str(summary_path),
        )
