"""Tracking against a real MLflow SQLite store: naming, tags, nesting, find-again, parallel writers."""
import subprocess
import sys
import textwrap

import pytest

from workflow_lib.tracking import PARENT_TAG, Tracker, run_name, tag, tracking_uri


@pytest.fixture
def cfg(tmp_path, base_config, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    c = dict(base_config)
    c["results_dir"] = str(tmp_path / "results")
    return c


def test_uri_precedence(cfg, monkeypatch, tmp_path):
    assert tracking_uri(cfg) == f"sqlite:///{tmp_path}/results/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking_uri(cfg) == "http://127.0.0.1:5999"
    cfg = {**cfg, "tracking": {**cfg["tracking"], "uri": "sqlite:////x/y.db"}}
    assert tracking_uri(cfg) == "sqlite:////x/y.db"


def test_run_names():
    assert run_name("study", {"backbone": "b", "study_key": "k", "variant": 2}) == "study b k v2"
    assert run_name("fold", {"fold": 1}) == "fold 1"
    with pytest.raises(KeyError):
        tag("not_a_key")


def test_nesting_and_find_again(cfg):
    tr = Tracker(cfg)
    study = tr.start("study", {"backbone": "b", "study_key": "s" * 12, "variant": 1})
    with tr.run("trial", {"trial_key": "t" * 12, "trial_number": 0}, parent=study, params={"lr": 0.1}) as trial:
        with tr.run("fold", {"trial_key": "t" * 12, "fold": 0}, parent=trial) as fold:
            tr.log_metrics(fold, {"train_loss": 0.5}, step=1)
    # a second process asking for the same fold finds the same run (no duplicate fold runs)
    tr2 = Tracker(cfg)
    again = tr2.start("fold", {"trial_key": "t" * 12, "fold": 0})
    assert again.run_id == fold.run_id
    run = tr2.client.get_run(fold.run_id)
    assert run.data.tags[PARENT_TAG] == trial.run_id
    assert run.data.tags[tag("stage")] == "fold"
    assert run.data.tags[tag("code_version")]
    assert run.data.metrics["train_loss"] == 0.5
    assert tr2.client.get_run(trial.run_id).data.params["lr"] == "0.1"
    assert tr2.client.get_run(trial.run_id).info.status == "FINISHED"


def test_failed_run_is_marked(cfg):
    tr = Tracker(cfg)
    with pytest.raises(RuntimeError):
        with tr.run("refit", {"trial_key": "f" * 12}) as r:
            raise RuntimeError("boom")
    assert tr.client.get_run(r.run_id).info.status == "FAILED"


def test_parallel_processes_share_a_new_store(cfg, repo):
    """Three processes create and write the same fresh SQLite store at once: none fails on a lock."""
    code = textwrap.dedent(f"""
        import sys
        from workflow_lib import config
        from workflow_lib.tracking import Tracker
        cfg = config.load({str(repo / 'config' / 'config.yaml')!r}, overrides={{"results_dir": {cfg['results_dir']!r}}})
        tr = Tracker(cfg)
        w = sys.argv[1]
        with tr.run("study", {{"backbone": "b", "study_key": "a" * 12, "variant": 1, "worker": w}}) as r:
            for i in range(30):
                tr.log_metrics(r, {{"m": i}}, step=i)
        print("ok", w)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    tr = Tracker(cfg)
    runs = tr.client.search_runs([tr.experiment_id])
    assert len(runs) == 3
    for r in runs:
        assert len(tr.client.get_metric_history(r.info.run_id, "m")) == 30
