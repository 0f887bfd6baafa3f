"""The smoke run's final model in the MLflow Model Registry: a version with the alias and the lineage
tags; `mlflow models predict` and `mlflow models serve` on models:/redsm5-symptoms@champion give the
rows redsm5-predict gives on the same posts."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workflow_lib.tracking.tracker import tag

pytestmark = pytest.mark.integration
NAME, ALIAS = "redsm5-symptoms", "champion"
URI = f"models:/{NAME}@{ALIAS}"
LINEAGE = ("data_key", "study_key", "trial_key", "selection_key", "final_key", "variant", "backbone", "code_version")


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="module")
def registry(smoke_run):
    """The smoke run's store once its replayers registered the final model (they apply events
    asynchronously: waits at most 180 s), its evaluation report, and a posts.csv of six posts."""
    import mlflow

    results = Path(smoke_run["dir"]) / "results"
    store = f"sqlite:///{results / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    report = json.loads(_one(results.glob("final/*/evaluation_report.json")).read_text())
    deadline, version = time.monotonic() + 180, None
    while version is None:
        try:
            version = client.get_model_version_by_alias(NAME, ALIAS)
        except mlflow.exceptions.MlflowException:
            spools = sorted(p.name for p in (results / ".tracking" / "spool").glob("*"))
            assert time.monotonic() < deadline, f"no {NAME}@{ALIAS} after 180 s; spools left: {spools}"
            time.sleep(2)
    posts = [json.loads(line) for line in _one(results.glob("data/*/posts.jsonl")).read_text().splitlines()[:6]]
    csv_path = Path(smoke_run["dir"]) / "posts.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["post_id", "text"])
        w.writerows([p["post_id"], p["text"]] for p in posts)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    cli = shutil.which("redsm5-predict")
    cmd = [cli] if cli else [sys.executable, "-m", "workflow_lib.shipping.cli"]
    expected = Path(smoke_run["dir"]) / "redsm5_predict.jsonl"
    out = subprocess.run(
        cmd + [str(results / "final" / report["final_key"] / "model"), str(csv_path), "-o", str(expected)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return {
        "client": client,
        "version": version,
        "report": report,
        "store": store,
        "env": env,
        "posts": posts,
        "csv": csv_path,
        "dir": Path(smoke_run["dir"]),
        "expected": [json.loads(line) for line in expected.read_text().splitlines()],
    }


def test_registry_holds_the_final_model_with_alias_and_lineage(registry):
    version, report, client = registry["version"], registry["report"], registry["client"]
    for key in LINEAGE:
        assert version.tags[tag(key)] == str(report["lineage"][key]), key
    assert (
        len(client.search_model_versions(f"name = '{NAME}' and tags.`{tag('final_key')}` = '{report['final_key']}'"))
        == 1
    )
    run = client.get_run(version.run_id)
    assert run.data.tags[tag("stage")] == "final" and run.data.tags[tag("final_key")] == report["final_key"]
    names = {a.path for a in client.list_artifacts(version.run_id)}
    assert "evaluation_report.json" in names
    assert ("evaluation_report.html" in names) == (
        registry["dir"] / "results" / "final" / report["final_key"] / "evaluation_report.html"
    ).exists()
    from workflow_lib.shipping.mlflow_model import model_card

    card = model_card(registry["dir"] / "results" / "final" / report["final_key"] / "model")
    assert card and version.description == card  # the model card (README.md) without its YAML front matter


def test_mlflow_models_predict_equals_redsm5_predict(registry):
    out_json = registry["dir"] / "mlflow_predict.json"
    t0 = time.monotonic()
    out = subprocess.run(
        [
            "mlflow",
            "models",
            "predict",
            "-m",
            URI,
            "-i",
            str(registry["csv"]),
            "-t",
            "csv",
            "--env-manager",
            "local",
            "-o",
            str(out_json),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=registry["env"],
        cwd=registry["dir"],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"mlflow models predict: {time.monotonic() - t0:.1f} s for {len(registry['posts'])} posts")
    rows = json.loads(out_json.read_text())["predictions"]
    assert rows == registry["expected"]
    assert [r["post_id"] for r in rows] == [p["post_id"] for p in registry["posts"]]
    assert all(r["final_key"] == registry["report"]["final_key"] and r["threshold"] == "tuned" for r in rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_answers_with_the_same_rows(registry):
    port = _free_port()
    log = open(registry["dir"] / "mlflow_serve.log", "w")
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", URI, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=registry["env"],
        cwd=registry["dir"],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (registry["dir"] / "mlflow_serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping within 180 s"
            time.sleep(1)
        two = registry["posts"][:2]
        body = json.dumps(
            {"dataframe_split": {"columns": ["post_id", "text"], "data": [[p["post_id"], p["text"]] for p in two]}}
        ).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
        assert answer["predictions"] == registry["expected"][:2]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the group this test started
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        log.close()
    assert _group_gone(proc.pid, 30), "a process of the server's group is still running"


def _group_gone(pgid: int, timeout: float) -> bool:
    """Wait (bounded) until no process of the group is left; SIGKILL the rest halfway through."""
    deadline, killed = time.monotonic() + timeout, False
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        if not killed and time.monotonic() > deadline - timeout / 2:
            os.killpg(pgid, signal.SIGKILL)  # uvicorn workers still shutting down
            killed = True
        time.sleep(0.2)
