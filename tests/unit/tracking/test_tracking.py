"""Tracking without a store: the store's URI, run names and tags, the spool-size warning (against a real
MLflow store: tests/integration/test_tracking_replayer.py)."""

import logging

import pytest

from tests.helpers.tracking import changed, job_config, spool_job
from workflow_lib.tracking import tracker as tracking
from workflow_lib.tracking.tracker import run_name, tag, tracking_uri


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return job_config(tmp_path / "results")


def test_uri_precedence(cfg, monkeypatch, tmp_path):
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/results/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(cfg) == "http://127.0.0.1:5999"
    cfg = changed(cfg, {"tracking": {"uri": "sqlite:////x/y.db"}})
    assert tracking_uri(cfg) == "sqlite:////x/y.db"


def test_run_names():
    assert run_name("study", {"backbone": "b", "study_key": "k", "variant": 2}) == "study b k v2"
    assert run_name("fold", {"fold": 1}) == "fold 1"
    with pytest.raises(KeyError):
        tag("not_a_key")


def test_spool_size_warning_once_per_job(cfg, monkeypatch, caplog):
    monkeypatch.setattr(tracking, "SPOOL_WARN_BYTES", 4000)
    monkeypatch.setattr(tracking, "SIZE_CHECK_S", 0)
    with caplog.at_level(logging.WARNING, logger="workflow_lib.tracking.tracker"):
        tr = spool_job(cfg, steps=range(100))
    warnings = [r.getMessage() for r in caplog.records if "tracking spool" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert str(tr.spool.parent) in warnings[0] and "--drain" in warnings[0]
