"""The whole DAG with the sentence model (training.criteria_from: sentences) on embedded v3 data: CV, refit (its
evidence threshold chosen out of fold), benchmark, selection, final, the predict rule, redsm5-predict and the
registered MLflow model, each giving per-symptom evidence sentences with their scores."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from snakerun import REPO, run_snakemake

from workflow_lib.symptoms import SYMPTOMS

pytestmark = pytest.mark.integration

OVERLAY = """
data:
  embedded: {n_posts: 120, seed: 5, generator: "3"}
backbones: [tiny-a]
training:
  criteria_from: sentences
  sentence_aggregation: logsumexp
hpo:
  n_trials: 2
  search_space:
    head: null
    sentence_aggregation: {type: categorical, choices: [max, logsumexp]}
"""


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("sentences")
    overlay = wd / "sentences.yaml"
    overlay.write_text(OVERLAY)
    proc = run_snakemake(wd, preset=[str(REPO / "config" / "smoke.yaml"), str(overlay)])
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = wd / "results"
    report = json.loads(_one(results.glob("final/*/evaluation_report.json")).read_text())
    return {"dir": wd, "results": results, "report": report, "overlay": overlay}


def _check_evidence(row: dict, threshold: float) -> None:
    """A row of the sentence model: evidence per predicted symptom, each a sentence of the post with its score."""
    assert row["evidence_scope"] == "symptom" and row["evidence_threshold"] == pytest.approx(threshold)
    predicted = {s for s in SYMPTOMS if row["decisions"][s]}
    assert set(row["evidence"]) == predicted
    for symptom, found in row["evidence"].items():
        assert found, symptom
        scores = [e["score"] for e in found]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert len(found) == 1 or min(scores) >= threshold  # the passing sentences, else the top one


def test_the_sentence_model_runs_every_stage_with_its_evidence_threshold_chosen_out_of_fold(run):
    results, report = run["results"], run["report"]
    assert report["task"]["criteria_from"] == "sentences"
    assert report["task"]["sentence_aggregation"] in ("max", "logsumexp")
    assert report["task"]["sentence_context"] == "alone"  # the main config's: each sentence encoded on its own
    evidence = report["thresholds"]["evidence"]
    assert evidence["source"] == "oof" and evidence["split"].startswith("cv heldout folds")
    assert (
        evidence["value"] in evidence["grid"]
        and max(evidence["f1"]) == evidence["f1"][evidence["grid"].index(evidence["value"])]
    )
    sentences = report["metrics"]["sentences"]
    assert sentences["threshold"] == evidence["value"] and set(sentences["per_symptom"]) == set(SYMPTOMS)
    assert {"token_f1", "char_f1", "exact_match"} <= set(report["metrics"]["evidence"])
    # every fold kept its sentence counts; the benchmark timed the sentence model; selection compared it
    folds = list(results.glob("hpo/tiny-a/*/v*/trials/*/fold_*/metrics.json"))
    assert folds and all("heldout_sentence_counts" in json.loads(f.read_text()) for f in folds)
    bench = json.loads(_one(results.glob("benchmark/*/benchmark.json")).read_text())
    assert bench["results"]
    model = results / "final" / report["final_key"] / "model"
    info = json.loads((model / "checkpoint.json").read_text())
    assert info["meta"]["evidence_threshold"] == evidence["value"]
    rows = _rows(model.parent / "test_predictions.jsonl")
    assert len(rows) == report["n_test_posts"]
    for row in rows:
        _check_evidence(row, evidence["value"])
    assert any(row["evidence"] for row in rows)
    card = (model / "README.md").read_text()
    assert "sentence" in card and f"{evidence['value']:g}" in card


def test_predict_rule_cli_and_mlflow_model_return_per_symptom_evidence(run):
    import mlflow

    wd, results, report = run["dir"], run["results"], run["report"]
    threshold = report["thresholds"]["evidence"]["value"]
    data = _one(results.glob("data/*/posts.jsonl")).parent
    posts = _rows(data / "posts.jsonl")[:8]
    inputs = wd / "posts.jsonl"
    inputs.write_text("".join(json.dumps({"post_id": p["post_id"], "text": p["text"]}) + "\n" for p in posts))
    proc = run_snakemake(
        wd,
        "predict",
        "--config",
        f"predict_input={inputs}",
        preset=[str(REPO / "config" / "smoke.yaml"), str(run["overlay"])],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rule_rows = _rows(_one(results.glob(f"predictions/{report['final_key']}/*/predictions.jsonl")))
    assert [r["post_id"] for r in rule_rows] == [p["post_id"] for p in posts]
    for row in rule_rows:
        _check_evidence(row, threshold)
        text = next(p["text"] for p in posts if p["post_id"] == row["post_id"])
        assert all(text[e["start"] : e["end"]] == e["text"] for found in row["evidence"].values() for e in found)

    # the registered MLflow model (the replayer registers it asynchronously)
    store = f"sqlite:///{results / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    deadline = time.monotonic() + 180
    while True:
        try:
            client.get_model_version_by_alias("redsm5-symptoms", "champion")
            break
        except mlflow.exceptions.MlflowException:
            assert time.monotonic() < deadline, "the final model was not registered within 180 s"
            time.sleep(2)
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    import pandas as pd

    pyfunc = mlflow.pyfunc.load_model("models:/redsm5-symptoms@champion")
    out = pyfunc.predict(pd.DataFrame({"post_id": [p["post_id"] for p in posts], "text": [p["text"] for p in posts]}))
    got = out.to_dict("records") if hasattr(out, "to_dict") else list(out)
    by_id = {r["post_id"]: r for r in rule_rows}
    for row in got:
        evidence = row["evidence"] if isinstance(row["evidence"], dict) else json.loads(row["evidence"])
        assert evidence == by_id[row["post_id"]]["evidence"]
