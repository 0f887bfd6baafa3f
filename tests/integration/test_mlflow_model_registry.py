"""The final model in MLflow, through real processes: a tiny BERT checkpoint logged through a Tracker spool +
replayer into a SQLite store, registered with lineage tags and an alias; the pyfunc model predicts the
Predictor's rows, also in a fresh process from its own code copy; replays are idempotent; an outage loses
nothing (checks without a replayer: tests/unit/shipping/test_mlflow_model.py)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.mlflow_model import ALIAS, CARD, NAME, lineage, model_store, registry_client
from tests.helpers.tracking import changed, free_port
from workflow_lib.tracking.replay import Replayer
from workflow_lib.tracking.tracker import Tracker, tag

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
mlflow = pytest.importorskip("mlflow")
from workflow_lib.shipping import mlflow_model as mm  # noqa: E402 - needs mlflow

POSTS = [
    {"post_id": "p1", "text": "I can't sleep and nothing is fun anymore, I feel worthless."},
    {"post_id": "p2", "text": "Great day at the beach with friends."},
    {"post_id": "p3", "text": "So tired all the time; I can't focus on anything at work."},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results folder with two final model folders, a SQLite store and a config pointing at it."""
    return model_store(tmp_path_factory.mktemp("mlflow_model"))


def _log_final(tr: Tracker, model_dir: Path, final_key: str) -> None:
    """What stages.final does at its end, for one final model."""
    ids = {k: v for k, v in lineage(final_key).items() if k != "code_version"}
    with tr.run("final", ids) as run:
        tr.log_model(run, str(model_dir), NAME, ALIAS, lineage(final_key))


def _versions(uri: str) -> list:
    return sorted(registry_client(uri).search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version))


def _numbers(uri: str) -> list[str]:
    return [str(v.version) for v in _versions(uri)]


def _expected_rows(model_dir: Path, threshold=None) -> list[dict]:
    from workflow_lib.shipping.predictor import Predictor

    return Predictor.load(model_dir).predict(POSTS, threshold=threshold, progress=False)


@pytest.fixture(scope="module")
def registered(store):
    """The first final model, logged the way stages.final does: a real Tracker, its replayer, close()."""
    tr = Tracker(store["cfg"])
    _log_final(tr, store["models"]["a" * 12], "a" * 12)
    t0 = time.monotonic()
    ok = tr.close()
    log = Path(str(tr.spool) + ".log")
    assert ok is True, log.read_text()[-3000:] if log.exists() else "replay failed"
    return {"close_s": time.monotonic() - t0}


@pytest.mark.integration  # MLflow replayer/registry processes: 14-37 s on 2 shared cores
def test_logged_through_the_spool_registered_with_lineage_and_alias(store, registered, monkeypatch):
    uri, model_dir = store["uri"], store["models"]["a" * 12]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # for models:/ URIs (no global mlflow.set_tracking_uri)
    print(f"the job's close() waited {registered['close_s']:.1f} s for the replayer to log and register the model")
    client = registry_client(uri)
    version = client.get_model_version_by_alias(NAME, ALIAS)
    assert str(version.version) == "1" and _numbers(uri) == ["1"]
    for k, v in lineage("a" * 12).items():
        assert version.tags[tag(k)] == str(v), k
    assert "A research tool" in version.description and "license: mit" not in version.description  # card, no YAML
    run = client.get_run(version.run_id)
    assert run.data.tags[tag("final_key")] == "a" * 12 and run.info.status == "FINISHED"
    # the model folder (weights, tokenizer, thresholds, model card, manifest) is the pyfunc artifact "model"
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{NAME}@{ALIAS}", tracking_uri=uri, registry_uri=uri, dst_path=str(store["root"] / "download")
        )
    )
    folder = local / "artifacts" / "model"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in model_dir.iterdir())
    assert (folder / "README.md").read_text() == CARD
    stored = json.loads((folder / "checkpoint.json").read_text())["meta"]["thresholds"]
    assert stored == json.loads((model_dir / "checkpoint.json").read_text())["meta"]["thresholds"]
    mlmodel = (local / "MLmodel").read_text()
    assert "model_card: artifacts/model/README.md" in mlmodel and "python_model.py" in mlmodel
    assert (local / "code" / "workflow_lib" / "shipping" / "predictor.py").is_file() and not list(
        local.rglob("__pycache__")
    )
    assert [p.name for p in (local / "code").iterdir()] == ["workflow_lib"]  # the package only: no devbench/
    reqs = (local / "requirements.txt").read_text().split()
    assert "torch==2.13.0" in reqs and f"mlflow=={metadata.version('mlflow')}" in reqs
    size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    print(
        f"logged model: {size / 2**20:.1f} MB ({sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 2**20:.1f} MB model folder)"
    )
    # the registered model predicts exactly the Predictor's rows (tuned thresholds, and one given threshold)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")
    frame = pd.DataFrame(POSTS)
    rows = pyfunc.predict(frame)
    assert rows == _expected_rows(model_dir)
    assert rows[0]["threshold"] == "tuned" and rows[0]["final_key"] == "a" * 12
    assert pyfunc.predict(frame, params={"threshold": 0.5}) == _expected_rows(model_dir, threshold=0.5)
    # post_id is optional: rows are numbered as Predictor numbers posts without one
    no_ids = pyfunc.predict(frame[["text"]])
    assert [r["post_id"] for r in no_ids] == ["0", "1", "2"]
    assert [r["probabilities"] for r in no_ids] == [r["probabilities"] for r in rows]
    # numeric ids (what pandas reads from a CSV of numbers) become strings, as redsm5-predict reads them
    numeric = pyfunc.predict(pd.DataFrame({"post_id": [7, 8, 9], "text": [p["text"] for p in POSTS]}))
    assert [r["post_id"] for r in numeric] == ["7", "8", "9"]
    assert [r["probabilities"] for r in numeric] == [r["probabilities"] for r in rows]
    with pytest.raises(Exception, match="text"):
        pyfunc.predict(pd.DataFrame({"post_id": ["x"], "body": ["no text column"]}))


@pytest.mark.integration  # MLflow replayer/registry processes: 14-37 s on 2 shared cores
def test_fresh_process_loads_from_the_models_own_code_and_requirements_cover_its_imports(store, registered):
    """`mlflow.pyfunc.load_model` in a new interpreter imports workflow_lib from the model's code/ copy;
    every third-party package that code imported is a pinned requirement or installed with one."""
    code = f"""
import json, sys, mlflow, pandas as pd
m = mlflow.pyfunc.load_model("models:/{NAME}@{ALIAS}")
rows = m.predict(pd.DataFrame({json.dumps(POSTS)}))
import workflow_lib
print(json.dumps({{"rows": rows, "workflow_lib": workflow_lib.__file__, "loaded": sorted(sys.modules),
                  "files": sorted(getattr(v, "__file__", None) or "" for k, v in list(sys.modules.items())
                                  if k.split(".")[0] == "workflow_lib")}}))
"""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"]}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=store["root"]
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "/artifacts/code/workflow_lib/" in got["workflow_lib"], got["workflow_lib"]
    # the code copy carries the version it was copied from (no git checkout there): no version warning
    assert "written by code_version" not in out.stderr, out.stderr[-2000:]
    assert got["rows"] == _expected_rows(store["models"]["a" * 12])
    # third-party modules the model's workflow_lib modules import (and that were imported) -> distributions
    tops = set()
    for f in got["files"]:
        if f.endswith(".py"):
            for node in ast.walk(ast.parse(Path(f).read_text())):
                if isinstance(node, ast.Import):
                    tops |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    tops.add(node.module.split(".")[0])
    loaded = set(got["loaded"])
    used = {
        d
        for t in tops - {"workflow_lib"}
        if t in loaded and t not in sys.stdlib_module_names
        for d in metadata.packages_distributions().get(t, [t])
    }
    covered = _closure([r.split("==")[0] for r in mm.pip_requirements()])
    assert used and {"torch", "transformers", "safetensors"} <= {mm._norm(u) for u in used}
    assert not [u for u in used if mm._norm(u) not in covered], used


def _closure(names: list[str]) -> set[str]:
    """The distributions pip installs for ``names`` (their requirements, recursively, without extras)."""
    from packaging.requirements import Requirement

    seen, stack = set(), [mm._norm(n) for n in names]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                stack.append(mm._norm(r.name))
    return seen


@pytest.mark.integration  # MLflow replayer/registry processes: 14-37 s on 2 shared cores
def test_replays_are_idempotent_and_the_alias_follows_the_newest_final(store, registered):
    """A spool replayed twice creates one version; a model logged by an interrupted attempt is reused;
    another final_key becomes version 2 and takes the alias; replaying the older spool leaves it there."""
    cfg, uri = store["cfg"], store["uri"]
    assert _numbers(uri) == ["1"]
    tr = Tracker(cfg, start_replayer=False)
    _log_final(tr, store["models"]["b" * 12], "b" * 12)
    tr.close()
    spool = tr.spool
    copy = spool.read_text()
    client = registry_client(uri)
    # an earlier replay attempt logged the pyfunc model and died before registering it
    rep = Replayer(uri, cfg.tracking.experiment, tr.artifact_root)
    ref = json.loads(copy.splitlines()[1])  # the start event
    rid = rep.run_id(ref["run"], create=ref)
    mm.log_pyfunc_model(
        store["models"]["b" * 12],
        run_id=rid,
        experiment_id=rep.experiment_id,
        tags={tag(k): str(v) for k, v in lineage("b" * 12).items()},
        client=rep.client,
    )
    for attempt in range(2):
        spool.write_text(copy)
        Path(str(spool) + ".offset").unlink(missing_ok=True)
        assert Replayer(uri, cfg.tracking.experiment, tr.artifact_root).replay(spool)
        assert _numbers(uri) == ["1", "2"], attempt
        assert str(client.get_model_version_by_alias(NAME, ALIAS).version) == "2"
    models = client.search_logged_models([rep.experiment_id], filter_string=f"source_run_id = '{rid}'")
    assert len(models) == 1, "the model logged by the interrupted attempt is registered, not logged again"
    v2 = client.get_model_version(NAME, "2")
    assert v2.tags[tag("final_key")] == "b" * 12 and v2.run_id == rid
    assert int(v2.tags[tag("event_time_ms")]) > int(client.get_model_version(NAME, "1").tags[tag("event_time_ms")])
    # the first final's event, replayed late (say a drained spool): no new version, the alias stays on v2
    ev = {
        "op": "model",
        "time_ms": int(client.get_model_version(NAME, "1").tags[tag("event_time_ms")]),
        "run": {"stage": "final", "ids": {k: str(v) for k, v in lineage("a" * 12).items() if k != "code_version"}},
        "path": str(store["models"]["a" * 12]),
        "registered_model": NAME,
        "alias": ALIAS,
        "tags": {tag(k): str(v) for k, v in lineage("a" * 12).items()},
    }
    rep2 = Replayer(uri, cfg.tracking.experiment, tr.artifact_root)
    assert str(mm.apply_model_event(rep2, rep2.run_id(ev["run"]), ev).version) == "1"
    assert _numbers(uri) == ["1", "2"]
    assert str(client.get_model_version_by_alias(NAME, ALIAS).version) == "2"


@pytest.mark.integration  # MLflow replayer/registry processes: 14-37 s on 2 shared cores
def test_store_down_the_job_does_not_wait_and_drain_registers_later(store, tmp_path):
    cfg = changed(
        store["cfg"],
        {
            "results_dir": str(tmp_path / "results"),
            "tracking": {"uri": f"http://127.0.0.1:{free_port()}", "registered_model": "redsm5-outage"},
        },
    )
    model_dir = tmp_path / "results" / "final" / ("c" * 12) / "model"
    shutil.copytree(store["models"]["a" * 12], model_dir)
    tr = Tracker(cfg)
    try:
        ids = {k: v for k, v in lineage("c" * 12).items() if k != "code_version"}
        with tr.run("final", ids) as run:
            tr.log_model(run, str(model_dir), "redsm5-outage", ALIAS, lineage("c" * 12))
        t0 = time.monotonic()
        assert tr.close() is False
        waited = time.monotonic() - t0
        assert tr._proc.poll() is None, "the replayer keeps retrying after the job"
    finally:
        os.killpg(tr._proc.pid, signal.SIGKILL)  # the replayer this test's Tracker started
        tr._proc.wait(timeout=30)
    assert waited < 20, waited  # the replayer's mlflow import + CLOSE_GRACE_S, not CLOSE_TIMEOUT_S
    events = [json.loads(line) for line in tr.spool.read_text().splitlines()]
    assert [e["op"] for e in events if e["op"] == "model"] == ["model"]
    db = f"sqlite:///{tmp_path}/later.db"
    out = subprocess.run(
        [sys.executable, "-m", "workflow_lib.tracking.replay", "--drain", str(tr.spool.parent), "--uri", db],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and "1 applied, 0 left" in out.stdout, out.stderr[-3000:]
    version = registry_client(db).get_model_version_by_alias("redsm5-outage", ALIAS)
    assert str(version.version) == "1" and version.tags[tag("final_key")] == "c" * 12
