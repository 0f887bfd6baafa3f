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
    tr.end(study)
    assert tr.close() is True
    assert not list(tr.spool.parent.glob("*.jsonl")), "an applied spool is removed"
    # a later job asking for the same fold logs into the same run (no duplicate fold runs)
    tr2 = Tracker(cfg)
    with tr2.run("fold", {"trial_key": "t" * 12, "fold": 0}) as again:
        tr2.log_metrics(again, {"train_loss": 0.25}, step=2)
    assert tr2.close() is True
    runs = tr2.client.search_runs([tr2.client.get_experiment_by_name("redsm5").experiment_id])
    assert sorted(r.data.tags[tag("stage")] for r in runs) == ["fold", "study", "trial"]
    f = tr2.find_run("fold", {"trial_key": "t" * 12, "fold": 0})
    t = tr2.find_run("trial", {"trial_key": "t" * 12, "trial_number": 0})
    assert f.data.tags[PARENT_TAG] == t.info.run_id
    assert f.data.tags[tag("code_version")]
    hist = tr2.client.get_metric_history(f.info.run_id, "train_loss")
    assert sorted((m.step, m.value) for m in hist) == [(1, 0.5), (2, 0.25)]
    assert t.data.params["lr"] == "0.1"
    assert t.info.status == "FINISHED"


def test_failed_run_is_marked(cfg):
    tr = Tracker(cfg)
    with pytest.raises(RuntimeError):
        with tr.run("refit", {"trial_key": "f" * 12}):
            raise RuntimeError("boom")
    assert tr.close()
    assert tr.find_run("refit", {"trial_key": "f" * 12}).info.status == "FAILED"


def test_orphaned_spool_is_replayed_by_the_next_job(cfg):
    """A job killed before its events were applied: the next job's replayer applies them."""
    tr = Tracker(cfg, start_replayer=False)
    with tr.run("benchmark", {"trial_key": "e" * 12}) as r:
        tr.log_metrics(r, {"p95": 3.0})
    tr._fh.close()
    tr._fh = None  # the writer "dies" without a close event and without a replayer
    spool = tr.spool
    # pretend the writer's pid is dead: rename to a pid that cannot exist
    dead = spool.with_name(spool.name.replace(f"-{__import__('os').getpid()}-", "-999999999-"))
    spool.rename(dead)
    tr2 = Tracker(cfg)
    tr2.start("selection", {"selection_key": "c" * 12})
    assert tr2.close()
    run = tr2.find_run("benchmark", {"trial_key": "e" * 12})
    assert run is not None and run.data.metrics["p95"] == 3.0
    assert not dead.exists()


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
        assert tr.close()
        print("ok", w)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    tr = Tracker(cfg, start_replayer=False)
    runs = tr.client.search_runs([tr.client.get_experiment_by_name("redsm5").experiment_id])
    assert len(runs) == 3
    for r in runs:
        assert len(tr.client.get_metric_history(r.info.run_id, "m")) == 30
