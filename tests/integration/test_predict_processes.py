"""The predictor in fresh processes and against an MLflow store: a model URI resolved and downloaded from a real
SQLite registry, the redsm5-predict console script and ``python -m workflow_lib.shipping.cli`` (the rest of the
predictor's tests: tests/unit/shipping/test_predict.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.predict import POSTS, saved_models
from workflow_lib.shipping import predictor as P


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The plain and the evidence model, saved as final-stage checkpoints."""
    return saved_models(tmp_path_factory.mktemp, kinds=("plain", "evidence"))


@pytest.mark.integration  # fresh processes / an MLflow store: 11-16 s on 2 shared cores
def test_mlflow_uri_download_and_unresolved_uri(models, tmp_path, monkeypatch):
    """A real SQLite store: a registered version whose source is a pyfunc-shaped folder (artifacts/model)."""
    import shutil

    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    pyfunc = tmp_path / "logged"
    shutil.copytree(models["plain"]["folder"], pyfunc / "artifacts" / "model")
    (pyfunc / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "store").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # a store made by mistake in the working directory would show here
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.create_registered_model("redsm5-symptoms")
    mv = client.create_model_version("redsm5-symptoms", source=str(pyfunc))
    client.set_registered_model_alias("redsm5-symptoms", "champion", mv.version)
    pr = P.Predictor.load("models:/redsm5-symptoms@champion", tracking_uri=store)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ  # restored
    assert list((tmp_path / "cwd").iterdir()) == []
    want = P.Predictor.load(models["plain"]["folder"]).predict(POSTS, progress=False)
    assert pr.predict(POSTS, progress=False) == want
    assert P.Predictor.load("models:/redsm5-symptoms/1", tracking_uri=store).final_key == "abc123abc123"
    with pytest.raises(P.PredictError) as err:
        P.Predictor.load("models:/redsm5-symptoms@production", tracking_uri=store)
    msg = str(err.value)
    assert "MLflow model 'models:/redsm5-symptoms@production' could not be resolved in the tracking store" in msg
    assert "redsm5-symptoms (@champion -> v1; versions 1)" in msg and "--tracking-uri" in msg
    # no results/mlflow.db in the working directory, no --tracking-uri, no MLFLOW_TRACKING_URI
    with pytest.raises(P.PredictError, match=r"no tracking store is given .* pass --tracking-uri"):
        P.Predictor.load("models:/redsm5-symptoms@champion")
    with pytest.raises(P.PredictError, match=r"tracking store sqlite:///\S+missing.db does not exist"):
        P.Predictor.load("models:/redsm5-symptoms@champion", tracking_uri=f"sqlite:///{tmp_path}/missing.db")


@pytest.mark.integration  # fresh processes / an MLflow store: 11-16 s on 2 shared cores
def test_console_script_and_module_run(models, tmp_path):
    posts = tmp_path / "posts.csv"
    with open(posts, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["post_id", "text"]] + [[p["post_id"], p["text"]] for p in POSTS])
    out = tmp_path / "pred.jsonl"
    proc = subprocess.run(
        ["redsm5-predict", str(models["evidence"]["folder"]), str(posts), "-o", str(out), "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"-> {out}" in proc.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["post_id"] for r in rows] == [p["post_id"] for p in POSTS]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workflow_lib.shipping.cli",
            str(models["evidence"]["folder"]),
            str(tmp_path / "missing.csv"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("redsm5-predict: error: ")
    assert "missing.csv: no such file" in proc.stderr
