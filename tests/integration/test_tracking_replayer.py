"""Tracking against a real MLflow SQLite store, through replayer processes: nesting, find-again, failed
runs, orphaned spools, parallel writers, idempotent replays, an unreachable store and the drain CLI."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from tests.helpers.tracking import changed, free_port, job_config, spool_job
from workflow_lib.tracking.replay import Replayer
from workflow_lib.tracking.tracker import PARENT_TAG, Tracker, run_tags, tag


def _replayer(tr: Tracker) -> Replayer:
    """A replayer on the tracker's store, for reading runs back (one per store: it keeps its client)."""
    key = (tr.uri, tr.experiment_name, tr.artifact_root)
    if key not in _REPLAYERS:
        _REPLAYERS[key] = Replayer(*key)
    return _REPLAYERS[key]


_REPLAYERS: dict = {}


def _client(tr: Tracker):
    return _replayer(tr).client


def _find_run(tr: Tracker, stage: str, ids: dict):
    return _replayer(tr).find_run(run_tags(stage, {k: str(v) for k, v in ids.items()}))


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return job_config(tmp_path / "results")


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
def test_nesting_and_find_again(cfg):
    tr = Tracker(cfg)
    study = tr.start("study", {"backbone": "b", "study_key": "s" * 12, "variant": 1})
    with (
        tr.run("trial", {"trial_key": "t" * 12, "trial_number": 0}, parent=study, params={"lr": 0.1}) as trial,
        tr.run("fold", {"trial_key": "t" * 12, "fold": 0}, parent=trial) as fold,
    ):
        tr.log_metrics(fold, {"train_loss": 0.5}, step=1)
    tr.end(study)
    assert tr.close() is True
    assert not list(tr.spool.parent.glob("*.jsonl")), "an applied spool is removed"
    # a later job asking for the same fold logs into the same run (no duplicate fold runs)
    tr2 = Tracker(cfg)
    with tr2.run("fold", {"trial_key": "t" * 12, "fold": 0}) as again:
        tr2.log_metrics(again, {"train_loss": 0.25}, step=2)
    assert tr2.close() is True
    runs = _client(tr2).search_runs([_client(tr2).get_experiment_by_name("redsm5").experiment_id])
    assert sorted(r.data.tags[tag("stage")] for r in runs) == ["fold", "study", "trial"]
    f = _find_run(tr2, "fold", {"trial_key": "t" * 12, "fold": 0})
    t = _find_run(tr2, "trial", {"trial_key": "t" * 12, "trial_number": 0})
    assert f.data.tags[PARENT_TAG] == t.info.run_id
    assert f.data.tags[tag("code_version")]
    hist = _client(tr2).get_metric_history(f.info.run_id, "train_loss")
    assert sorted((m.step, m.value) for m in hist) == [(1, 0.5), (2, 0.25)]
    assert t.data.params["lr"] == "0.1"
    assert t.info.status == "FINISHED"


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
def test_failed_run_is_marked(cfg):
    tr = Tracker(cfg)
    with pytest.raises(RuntimeError), tr.run("refit", {"trial_key": "f" * 12}):
        raise RuntimeError("boom")
    assert tr.close()
    assert _find_run(tr, "refit", {"trial_key": "f" * 12}).info.status == "FAILED"


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
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
    run = _find_run(tr2, "benchmark", {"trial_key": "e" * 12})
    assert run is not None and run.data.metrics["p95"] == 3.0
    assert not dead.exists()


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
def test_parallel_processes_share_a_new_store(cfg, repo):
    """Three processes create and write the same fresh SQLite store at once: none fails on a lock."""
    code = textwrap.dedent(f"""
        import sys
        from workflow_lib import config
        from workflow_lib.tracking.tracker import Tracker
        cfg = config.load({str(repo / "config" / "config.yaml")!r}, overrides={{"results_dir": {cfg.results_dir!r}}})
        tr = Tracker(cfg)
        w = sys.argv[1]
        with tr.run("study", {{"backbone": "b", "study_key": "a" * 12, "variant": 1, "worker": w}}) as r:
            for i in range(30):
                tr.log_metrics(r, {{"m": i}}, step=i)
        assert tr.close()
        print("ok", w)
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(w)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for w in range(3)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    tr = Tracker(cfg, start_replayer=False)
    runs = _client(tr).search_runs([_client(tr).get_experiment_by_name("redsm5").experiment_id])
    assert len(runs) == 3
    for r in runs:
        assert len(_client(tr).get_metric_history(r.info.run_id, "m")) == 30


def _history(tr, worker="0"):
    run = _find_run(tr, "fold", {"trial_key": "d" * 12, "fold": 0, "worker": worker})
    return run, {k: sorted(m.step for m in _client(tr).get_metric_history(run.info.run_id, k)) for k in ("loss", "acc")}


def _replay(tr):
    return Replayer(tr.uri, tr.experiment_name, tr.artifact_root).replay(tr.spool)


@pytest.mark.integration  # replayer processes importing MLflow: 5-13 s on 2 shared cores
def test_replay_after_a_crash_and_resumed_jobs_keep_each_step_once(cfg):
    """A replayer killed between log_batch and its offset write replays the spool again; a job resumed after
    an interruption logs steps that are already stored again: every (run, metric, step) stays once."""
    tr = spool_job(cfg)
    assert _replay(tr)
    offset = tr.spool.with_name(tr.spool.name + ".offset")
    assert int(offset.read_text()) == len(tr.spool.read_text().splitlines())
    offset.write_text("3")  # the crash: only the first events were recorded as applied
    assert _replay(tr)  # a fresh replayer (no cache), as the next job's would be
    tr2 = spool_job(cfg, steps=range(5, 15))  # the resumed job: steps 5-9 again (new timestamps), then 10-14
    assert _replay(tr2)
    run, hist = _history(tr2)
    assert hist == {"loss": list(range(15)), "acc": list(range(15))}
    loss = {m.step: m.value for m in _client(tr2).get_metric_history(run.info.run_id, "loss")}
    assert loss[7] == 1.0 / 8  # the first value of a step is kept
    assert run.data.params == {"lr": "0.1"} and run.data.tags["progress"] == "14"
    assert run.info.status == "FINISHED"
    assert len(_client(tr2).search_runs([run.info.experiment_id])) == 1


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
def test_unreachable_server_does_not_hold_the_job_and_drain_applies_later(cfg, tmp_path):
    """Nothing listens at tracking.uri: close() returns at once, the replayer keeps retrying in the background,
    the spool stays; the drain CLI applies it (here to a SQLite store given with --uri)."""
    cfg = changed(cfg, {"tracking": {"uri": f"http://127.0.0.1:{free_port()}"}})
    tr = Tracker(cfg)
    try:
        with tr.run("fold", {"trial_key": "d" * 12, "fold": 0, "worker": "0"}, params={"lr": 0.1}) as r:
            for i in range(20):
                tr.log_metrics(r, {"loss": 1.0 / (i + 1), "acc": i / 10}, step=i)
        t0 = time.monotonic()
        assert tr.close() is False
        waited = time.monotonic() - t0
        assert tr._proc.poll() is None, "the replayer keeps retrying after the job"
        assert tr.spool.exists()
    finally:
        os.killpg(tr._proc.pid, 9)
        tr._proc.wait()
    assert waited < 20, waited  # the replayer's mlflow import + CLOSE_GRACE_S, not CLOSE_TIMEOUT_S
    assert "Connection refused" in (tr.spool.parent / (tr.spool.name + ".log")).read_text()
    drain = [sys.executable, "-m", "workflow_lib.tracking.replay", "--drain", str(tr.spool.parent)]
    out = subprocess.run(drain + ["--patience", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "0 applied, 1 left" in out.stdout, out.stderr[-2000:]
    assert tr.spool.exists(), "the store named in the spool is still unreachable: the spool stays"
    db = f"sqlite:///{tmp_path}/other.db"
    out = subprocess.run(drain + ["--uri", db], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 applied, 0 left" in out.stdout
    assert not list(tr.spool.parent.iterdir()), "a drained spool is removed with its offset, lock and log"
    tr.uri = db
    run, hist = _history(tr)
    assert hist == {"loss": list(range(20)), "acc": list(range(20))} and run.data.params == {"lr": "0.1"}


@pytest.mark.integration  # replayer processes importing MLflow: 14-60 s on 2 shared cores
def test_parallel_replayers_and_drain_share_one_sqlite_store(cfg, tmp_path):
    """Three replayer processes and a drain apply four spools to one SQLite store at once, while another
    writer holds the store's write lock longer than SQLite waits: all retry on "database is locked",
    every event is applied once, every spool removed."""
    trs = [spool_job(cfg, worker=str(w), steps=range(40)) for w in range(4)]
    other = tmp_path / "other_spools"  # the drain's own folder: no race with the replayers for a spool
    other.mkdir()
    trs[3].spool.rename(other / trs[3].spool.name)
    _ = _client(trs[0])  # the store exists; now a writer holds its lock
    db = sqlite3.connect(trs[0].uri[len("sqlite:///") :], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    cmd = [sys.executable, "-m", "workflow_lib.tracking.replay"]
    args = [
        ["--uri", tr.uri, "--experiment", tr.experiment_name, "--artifact-root", tr.artifact_root, str(tr.spool)]
        for tr in trs[:3]
    ] + [["--drain", str(other), "--patience", "120"]]
    errs = [tmp_path / f"err{i}.txt" for i in range(4)]
    procs = []
    for a, e in zip(args, errs):
        with open(e, "w") as fh:
            procs.append(subprocess.Popen(cmd + a, stdout=subprocess.DEVNULL, stderr=fh))
    t0 = time.monotonic()
    try:
        deadline = time.monotonic() + 180
        while not all("database is locked" in e.read_text() for e in errs):
            assert time.monotonic() < deadline, [e.read_text()[-500:] for e in errs]
            time.sleep(0.2)
        t_locked = time.monotonic() - t0
    finally:
        db.execute("ROLLBACK")
        db.close()
    for p, e in zip(procs, errs):
        assert p.wait(timeout=300) == 0, e.read_text()[-2000:]
    print(f"lock held {t_locked:.1f}s, all applied {time.monotonic() - t0:.1f}s after the replayers started")
    assert not list(trs[0].spool.parent.glob("*.jsonl*")) and not list(other.iterdir())
    runs = _client(trs[0]).search_runs([_client(trs[0]).get_experiment_by_name("redsm5").experiment_id])
    assert len(runs) == 4
    for w in range(4):
        run, hist = _history(trs[0], str(w))
        assert hist == {"loss": list(range(40)), "acc": list(range(40))}
        assert run.data.tags["progress"] == "39" and run.data.params == {"lr": "0.1"}
