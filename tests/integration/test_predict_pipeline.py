"""redsm5-predict and the predict rule on the smoke run's final model; MiniLM prediction throughput.

Uses the session's smoke run (tests/integration/conftest.py); the predict rule runs in its workdir.
The measured figures are printed (pytest -s shows them) and recorded as test properties.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from snakerun import env, run_snakemake

from workflow_lib.config.keys import input_digest
from workflow_lib.symptoms import SYMPTOMS

pytestmark = pytest.mark.integration


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def smoke(smoke_run):
    """The smoke run's workdir, final model folder and its test posts (in split order) as JSONL."""
    wd = smoke_run["dir"]
    data = _one((wd / "results" / "data").glob("*/posts.jsonl")).parent
    posts = {p["post_id"]: p for p in _rows(data / "posts.jsonl")}
    test_ids = json.loads((data / "splits.json").read_text())["test"]
    inputs = wd / "predict_inputs"
    inputs.mkdir(exist_ok=True)
    test_posts = inputs / "test_posts.jsonl"
    test_posts.write_text("".join(json.dumps(posts[i]) + "\n" for i in test_ids), encoding="utf-8")
    model = _one((wd / "results" / "final").glob("*/model/manifest.json")).parent
    return {"dir": wd, "model": model, "final_key": model.parent.name, "test_posts": test_posts, "test_ids": test_ids}


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["redsm5-predict", *map(str, args)], capture_output=True, text=True, timeout=600, env=env())


def test_cli_and_predict_rule_agree_and_rule_is_content_addressed(smoke, record_property):
    wd, fk = smoke["dir"], smoke["final_key"]
    cli_out = wd / "predict_inputs" / "cli.jsonl"
    proc = _cli(smoke["model"], smoke["test_posts"], "-o", cli_out, "--threads", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli_rows = _rows(cli_out)
    assert [r["post_id"] for r in cli_rows] == smoke["test_ids"]
    assert all(
        r["final_key"] == fk and r["threshold"] == "tuned" and list(r["probabilities"]) == list(SYMPTOMS)
        for r in cli_rows
    )

    # the final stage's own test predictions (helper C's file) are the same numbers: the same code path
    test_pred = smoke["model"].parent / "test_predictions.jsonl"
    if test_pred.exists():
        stage = {r["post_id"]: r for r in _rows(test_pred)}
        assert all(stage[r["post_id"]]["probabilities"] == r["probabilities"] for r in cli_rows)

    # the predict rule: same rows, in results/predictions/{final_key}/{input_digest}/
    t0 = time.perf_counter()
    proc = run_snakemake(wd, "predict", "--config", f"predict_input={smoke['test_posts']}")
    rule_seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    digest = input_digest(smoke["test_posts"])
    out = wd / "results" / "predictions" / fk / digest / "predictions.jsonl"
    assert _rows(out) == cli_rows
    summary = json.loads((out.parent / "predictions.json").read_text())
    assert summary["n_posts"] == len(cli_rows) and summary["final_key"] == fk and summary["input_digest"] == digest
    record_property("predict_rule_seconds", round(rule_seconds, 1))
    print(
        f"\npredict rule (snakemake call, {len(cli_rows)} posts, tiny BERT): {rule_seconds:.1f} s wall; "
        f"prediction itself {summary['seconds']:.2f} s ({summary['posts_per_second']:.0f} posts/s)"
    )

    # a second invocation, also after touching the input without changing it, does nothing
    mtime = out.stat().st_mtime_ns
    os.utime(smoke["test_posts"])
    proc = run_snakemake(wd, "predict", "--config", f"predict_input={smoke['test_posts']}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert out.stat().st_mtime_ns == mtime

    # changed content: a new digest folder; the old predictions stay as they were
    changed = wd / "predict_inputs" / "test_posts_minus_one.jsonl"
    lines = smoke["test_posts"].read_text(encoding="utf-8").splitlines(keepends=True)
    changed.write_text("".join(lines[1:]), encoding="utf-8")
    proc = run_snakemake(wd, "predict", "--config", f"predict_input={changed}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    new = wd / "results" / "predictions" / fk / input_digest(changed) / "predictions.jsonl"
    new_rows = _rows(new)
    assert new.parent != out.parent and [r["post_id"] for r in new_rows] == [r["post_id"] for r in cli_rows[1:]]
    # one post fewer changes the batches; in bf16 (precision auto on a CPU with AMX) the same post then
    # rounds slightly differently, so the probabilities agree to bf16 rounding, not bit for bit
    for a, b in zip(new_rows, cli_rows[1:]):
        assert all(abs(a["probabilities"][s] - b["probabilities"][s]) < 2e-2 for s in SYMPTOMS), a["post_id"]
    assert out.stat().st_mtime_ns == mtime

    # without predict_input the target fails at once with the fix
    proc = run_snakemake(wd, "predict")
    assert proc.returncode != 0
    assert "pass --config predict_input=PATH" in proc.stdout + proc.stderr


def test_cli_on_the_registered_model_equals_the_folder(smoke):
    """models:/redsm5-symptoms@champion (registered by the final stage through the tracking spool)."""
    wd = smoke["dir"]
    store = f"sqlite:///{wd / 'results' / 'mlflow.db'}"
    out = wd / "predict_inputs" / "registered.jsonl"
    deadline = time.monotonic() + 120  # the spool replayer may still be registering the model
    while True:
        proc = _cli(
            "models:/redsm5-symptoms@champion",
            smoke["test_posts"],
            "-o",
            out,
            "--threads",
            "2",
            "--tracking-uri",
            store,
        )
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = wd / "predict_inputs" / "folder.jsonl"
    assert _cli(smoke["model"], smoke["test_posts"], "-o", folder, "--threads", "2").returncode == 0
    assert _rows(out) == _rows(folder)
    proc = _cli("models:/redsm5-symptoms@nosuchalias", smoke["test_posts"], "-o", out, "--tracking-uri", store)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "registered models in that store: redsm5-symptoms (@champion -> v" in proc.stderr


def test_minilm_prediction_throughput(tmp_path, record_property):
    """MiniLM-L6 (package source, as in config/config.yaml) over 200 generated posts with 2 threads."""
    from workflow_lib import config
    from workflow_lib.data.synthetic import generate
    from workflow_lib.learning.checkpoint import save_checkpoint
    from workflow_lib.learning.models.model import build_model
    from workflow_lib.shipping.predictor import Predictor, read_posts

    cfg = config.load(Path(__file__).resolve().parents[2] / "config" / "config.yaml")
    spec = cfg.encoders["minilm-l6"]
    tcfg = cfg.training
    model, tok = build_model(spec, tcfg)  # an untrained head: throughput only
    save_checkpoint(
        tmp_path / "model",
        model,
        tok,
        backbone_spec=spec,
        train_cfg=tcfg,
        meta={"stage": "final", "thresholds": dict.fromkeys(SYMPTOMS, 0.5)},
    )
    generate(tmp_path / "posts", n_posts=200, seed=7)
    posts = read_posts(tmp_path / "posts" / "posts.csv")
    predictor = Predictor.load(tmp_path / "model", threads=2)
    predictor.predict(posts[:8], progress=False)  # warm-up
    times, runs = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        runs.append(predictor.predict(posts, progress=False))
        times.append(time.perf_counter() - t0)
    rows = runs[0]
    assert [r["post_id"] for r in rows] == [p["post_id"] for p in posts]
    assert runs[1] == rows  # run to run: identical
    seconds = min(times)
    rate = len(rows) / seconds
    record_property("minilm_posts_per_second", round(rate, 1))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nMiniLM-L6 predict: {len(rows)} posts in {seconds:.2f} s = {rate:.1f} posts/s (2 threads, batch "
        f"{predictor.train_cfg['eval_batch_size']}, max_length {predictor.max_length}, load average {load:.1f})",
        file=sys.stderr,
    )
