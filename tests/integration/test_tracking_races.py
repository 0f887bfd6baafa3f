"""Races between a job, its replayer, an outage of the store and late replays of other spools, made
deterministic: a real SQLite store, the failure injected at the replayer's store-call boundary.
Each test checks that a run's end status is neither lost nor undone."""

import json
import os
import subprocess
import sys
import time

import pytest

from workflow_lib.tracking import replay as tracking_replay
from workflow_lib.tracking.replay import Replayer, drain
from workflow_lib.tracking.tracker import Tracker, run_tags

FOLD = {"trial_key": "t" * 12, "fold": 0}


# every test runs replayer processes against a real store: 7-12 s each on 2 shared cores
pytestmark = pytest.mark.integration


@pytest.fixture
def cfg(tmp_path, repo, monkeypatch):
    from workflow_lib import config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking_replay, "BASE_BACKOFF_S", 0.01)
    return config.load(repo / "config" / "config.yaml", overrides={"results_dir": str(tmp_path / "results")})


def _run(rep: Replayer):
    return rep.find_run(run_tags("fold", {k: str(v) for k, v in FOLD.items()}))


def _steps(rep: Replayer, run) -> list[int]:
    return sorted(m.step for m in rep.client.get_metric_history(run.info.run_id, "loss"))


def _killed(tr: Tracker):
    """The job dies: no close event, and its spool names a pid that cannot exist (an orphan)."""
    tr._fh.close()
    tr._fh = None
    dead = tr.spool.with_name(tr.spool.name.replace(f"-{os.getpid()}-", "-999999999-"))
    tr.spool.rename(dead)
    return dead


@pytest.mark.parametrize("closed", [True, False], ids=["job-closes", "job-killed"])
def test_last_events_written_while_a_flush_waits_for_the_store_are_applied(cfg, closed):
    """The store goes away while the replayer, caught up with the job, sends its last metrics; meanwhile the
    job writes its last steps and its end events and exits. Once the store answers again the replayer must
    read and apply the rest before it reports the spool complete (the spool is deleted then): the run ends
    FINISHED with every step. (Before the fix it stopped at the end of what it had read, the job being gone,
    and the spool was deleted with the end event never applied: the run stayed RUNNING.)"""
    tr = Tracker(cfg, start_replayer=False)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # the writing job's pid
    rep = Replayer(tr.uri, tr.experiment_name, tr.artifact_root, follow_pid=job.pid)
    store_log_batch, outage = rep.client.log_batch, []

    def log_batch(*args, **kwargs):  # the store call, as the replayer makes it
        if kwargs.get("metrics") and any(m.step == 1 for m in kwargs["metrics"]) and not outage:
            outage.append(time.monotonic())  # while this call fails, the job finishes and exits
            tr.log_metrics(run, {"loss": 0.25}, step=2)
            tr.set_tags(run, {"steps": "3"})
            tr.end(run)
            if closed:
                tr.close()
            else:
                tr._fh.close()
                tr._fh = None
            job.kill()
            job.wait()
            raise ConnectionError("Connection refused")  # transient: the replayer retries
        return store_log_batch(*args, **kwargs)

    rep.client.log_batch = log_batch
    try:
        run = tr.start("fold", FOLD, params={"lr": 0.1})
        tr.log_metrics(run, {"loss": 1.0}, step=0)
        tr.log_metrics(run, {"loss": 0.5}, step=1)
        complete = rep.replay(tr.spool, follow=True)
    finally:
        job.kill()
        job.wait()
    assert outage, "the injected outage never happened"
    lines = len(tr.spool.read_text().splitlines())
    assert int(tr.spool.with_name(tr.spool.name + ".offset").read_text()) == lines, "every event applied"
    assert complete
    stored = _run(rep)
    assert stored.info.status == "FINISHED"
    assert _steps(rep, stored) == [0, 1, 2] and stored.data.tags["steps"] == "3"


@pytest.mark.parametrize("first_job", ["killed", "failed"])
def test_a_late_orphan_spool_neither_reopens_nor_overrides_a_later_end(cfg, first_job):
    """Attempt 1 of a job starts the run and is killed (or fails) while the store is unreachable: its spool
    stays. Attempt 2 runs with the store back and finishes the run. Then another replayer (the next job's,
    or --drain) applies attempt 1's spool: its old start must not reopen the run (nothing would end it
    again: RUNNING for ever) and its old end must not replace the later FINISHED."""
    tr1 = Tracker(cfg, start_replayer=False)
    r1 = tr1.start("fold", FOLD)
    tr1.log_metrics(r1, {"loss": 1.0}, step=0)
    if first_job == "failed":
        tr1.end(r1, "FAILED")
    orphan = _killed(tr1)
    time.sleep(0.01)  # attempt 2's events are later (event times are in ms)
    tr2 = Tracker(cfg, start_replayer=False)
    with tr2.run("fold", FOLD) as r2:
        tr2.log_metrics(r2, {"loss": 0.5}, step=1)
    tr2.close()
    end2 = [json.loads(x) for x in tr2.spool.read_text().splitlines()][-2]
    assert end2["op"] == "end"
    rep2 = Replayer(tr2.uri, tr2.experiment_name, tr2.artifact_root)
    assert rep2.replay_left(tr2.spool)  # attempt 2's own replayer

    assert drain(orphan.parent) == 0 and not orphan.exists()  # attempt 1's spool, late, by a fresh replayer
    rep = Replayer(tr2.uri, tr2.experiment_name, tr2.artifact_root)
    stored = _run(rep)
    assert (stored.info.status, stored.info.end_time) == ("FINISHED", end2["time_ms"])
    assert _steps(rep, stored) == [0, 1]  # the orphan's data is kept
    assert len(rep.client.search_runs([stored.info.experiment_id])) == 1

    # a job resumed later (its start is newer than the end) still reopens the run
    time.sleep(0.01)
    tr3 = Tracker(cfg, start_replayer=False)
    tr3.start("fold", FOLD)
    tr3.close()
    assert Replayer(tr3.uri, tr3.experiment_name, tr3.artifact_root).replay_left(tr3.spool)
    assert _run(rep).info.status == "RUNNING"


def test_store_writes_applied_but_answers_lost_are_retried_without_duplicates(cfg):
    """Store writes are applied and then their answer is lost (the server went down before it replied), so
    the replayer retries them: still one run (the retried create finds the run the lost one made), each
    metric step once, the params, the tags and the FINISHED end; also when a resumed job reopens the run."""
    lost: list[tuple[int, str]] = []  # (job, store call) whose answer was lost
    for job in range(2):
        time.sleep(0.01)
        tr = Tracker(cfg, start_replayer=False)
        with tr.run("fold", FOLD, params={"lr": 0.1}) as run:
            for step in range(3 * job, 3 * job + 3):
                tr.log_metrics(run, {"loss": 1 / (step + 1)}, step=step)
            tr.set_tags(run, {"steps": str(3 * job + 3)})
        tr.close()
        rep = Replayer(tr.uri, tr.experiment_name, tr.artifact_root)
        for name in ("create_run", "update_run", "log_batch", "set_terminated"):

            def lose_answer(*args, _store=getattr(rep.client, name), _name=name, _job=job, **kwargs):  # noqa: B008
                out = _store(*args, **kwargs)
                kind = next((k for k in ("metrics", "params", "tags") if kwargs.get(k)), "")
                call = f"{_name}({kind if _name == 'log_batch' else ''})"
                if (_job, call) not in lost:  # the first of each kind per job
                    lost.append((_job, call))
                    raise ConnectionError(f"Connection reset by peer ({call} was applied)")
                return out

            setattr(rep.client, name, lose_answer)
        assert rep.replay_left(tr.spool)
    assert {c for _, c in lost} == {
        "create_run()",
        "update_run()",
        "log_batch(metrics)",
        "log_batch(params)",
        "log_batch(tags)",
        "set_terminated()",
    }, lost
    stored = _run(rep)
    assert len(rep.client.search_runs([stored.info.experiment_id])) == 1
    assert stored.info.status == "FINISHED" and stored.data.params == {"lr": "0.1"}
    assert _steps(rep, stored) == list(range(6)) and stored.data.tags["steps"] == "6"
