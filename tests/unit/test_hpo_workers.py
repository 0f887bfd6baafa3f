"""Parallel HPO workers: stale-trial recovery (heartbeats), the study definition, warm-start lookup."""
import os
import time

import optuna
from optuna.trial import TrialState

from workflow_lib.persistence.paths import Layout
from workflow_lib.search.hpo import heartbeat, open_study, recover_stale_trials


def _study(tmp_path, base_config):
    return open_study(base_config, tmp_path / "study.journal", "s")


def _running(study, worker):
    t = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)})
    t.set_user_attr("worker", worker)
    return t


def test_stale_trials_are_failed_and_requeued_live_ones_kept(tmp_path, base_config):
    study = _study(tmp_path, base_config)
    beats = tmp_path / "heartbeats"
    beats.mkdir()
    mine = _running(study, "0")          # left by an earlier process of this worker
    silent = _running(study, "1")        # worker 1 died: heartbeat 60 s old
    alive = _running(study, "1")         # worker 1's other trial beats
    for t, age in ((silent, 60), (alive, 0), (mine, 0)):
        p = beats / str(t.number)
        p.touch()
        os.utime(p, (time.time() - age, time.time() - age))
    n = recover_stale_trials(study, "0", heartbeat_dir=beats, heartbeat_s=5)
    assert n == 2
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[mine.number] == states[silent.number] == TrialState.FAIL
    assert states[alive.number] == TrialState.RUNNING
    waiting = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.WAITING]
    # queued with the same parameters (Optuna keeps an enqueued trial's parameters as fixed_params)
    assert sorted(t.system_attrs["fixed_params"]["learning_rate"] for t in waiting) == \
        sorted([mine.params["learning_rate"], silent.params["learning_rate"]])
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == sorted([mine.number, silent.number])
    # a second look finds nothing more to recover (the live trial keeps beating)
    assert recover_stale_trials(study, "2", heartbeat_dir=beats, heartbeat_s=5) == 0


def test_heartbeat_touches_its_file_while_the_block_runs(tmp_path):
    p = tmp_path / "hb" / "7"
    with heartbeat(p, 0.05):
        t0 = p.stat().st_mtime_ns
        time.sleep(0.3)
        assert p.stat().st_mtime_ns > t0
    t1 = p.stat().st_mtime_ns
    time.sleep(0.2)
    assert p.stat().st_mtime_ns == t1  # stopped with the block


def test_fold_metrics_elsewhere_finds_every_variant_of_the_backbone(tmp_path):
    lay = Layout(str(tmp_path))
    for sk, v in (("aaaaaaaaaaaa", 1), ("bbbbbbbbbbbb", 2)):
        p = lay.fold_metrics(lay.study_dir("tiny-a", sk, v), "cccccccccccc", 0)
        os.makedirs(os.path.dirname(p))
        open(p, "w").write("{}")
    other = lay.fold_metrics(lay.study_dir("tiny-b", "aaaaaaaaaaaa", 1), "cccccccccccc", 0)
    os.makedirs(os.path.dirname(other))
    open(other, "w").write("{}")
    found = lay.fold_metrics_elsewhere("tiny-a", "cccccccccccc", 0)
    assert [f.split("/hpo/")[1].split("/trials")[0] for f in found] == ["tiny-a/aaaaaaaaaaaa/v1",
                                                                         "tiny-a/bbbbbbbbbbbb/v2"]
    assert lay.fold_metrics_elsewhere("tiny-a", "cccccccccccc", 1) == []
