"""Parallel HPO workers: stale-trial recovery (heartbeats), the study definition, warm-start lookup."""

import os
import time

import optuna
import pytest
from optuna.trial import TrialState

from workflow_lib.config import Encoder, Training, deep_merge, resolve
from workflow_lib.config.search_space import trial_training_config
from workflow_lib.persistence.paths import Layout
from workflow_lib.search.hpo import best_trial_config, heartbeat, open_study, recover_stale_trials, train_fold
from workflow_lib.symptoms import SYMPTOMS


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
    mine = _running(study, "0")  # left by an earlier process of this worker
    silent = _running(study, "1")  # worker 1 died: heartbeat 60 s old
    alive = _running(study, "1")  # worker 1's other trial beats
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
    assert sorted(t.system_attrs["fixed_params"]["learning_rate"] for t in waiting) == sorted(
        [mine.params["learning_rate"], silent.params["learning_rate"]]
    )
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
    assert [f.split("/hpo/")[1].split("/trials")[0] for f in found] == [
        "tiny-a/aaaaaaaaaaaa/v1",
        "tiny-a/bbbbbbbbbbbb/v2",
    ]
    assert lay.fold_metrics_elsewhere("tiny-a", "cccccccccccc", 1) == []


# ---------------------------------------------------------------- one fold of a trial, with its epoch states
TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
        "max_length": 32,
    }
)


def _prepared():
    from workflow_lib.data.prepare import Prepared

    records = {
        f"p{i}": {
            "post_id": f"p{i}",
            "text": f"post number {i} about sleep and mood",
            "evidence": [],
            "labels": [int(i % 2 == k % 2) for k in range(len(SYMPTOMS))],
        }
        for i in range(8)
    }
    a, b = ["p0", "p1", "p2", "p3"], ["p4", "p5", "p6", "p7"]
    folds = [{"fold": 0, "train": b, "heldout": a}, {"fold": 1, "train": a, "heldout": b}]
    return Prepared(records, {"train": a + b, "validation": [], "test": []}, folds, {})


class _Interrupted(Exception):
    pass


def test_a_fold_resumes_its_epoch_states_under_the_configs_state_policy(tmp_path, smoke_config):
    from workflow_lib.learning.epoch_states import StatePolicy
    from workflow_lib.learning.training import train

    prepared, fold = _prepared(), _prepared().folds[0]
    study_training = Training.resolve({"epochs": 2, "batch_size": 4, "threads": 1})
    tcfg = trial_training_config(study_training, {"learning_rate": 1e-3})
    hpo = smoke_config.hpo
    args = dict(metric=hpo.metric, objective=hpo.objective, threads=1, desc="trial 0 fold 1/2")
    state_dir = tmp_path / "fold_0" / "state"
    with pytest.raises(ValueError, match="state_policy"):  # states need the config's checkpoints/storage settings
        train_fold(TINY, tcfg, prepared, fold, state_dir=str(state_dir), **args)
    policy = StatePolicy.of(resolve(deep_merge(smoke_config, {"results_dir": str(tmp_path)})))
    assert policy.checkpoints is not None and policy.checkpoints.enabled  # the smoke config keeps states

    def stop_after_first(epoch, _score):
        if epoch == 1:
            raise _Interrupted  # the job is killed after epoch 1's state is saved

    with pytest.raises(_Interrupted):
        train(
            TINY,
            tcfg,
            prepared.of(fold["train"]),
            on_epoch=stop_after_first,
            progress_desc="trial 0 fold 1/2",
            threads=1,
            state_dir=str(state_dir),
            state_policy=policy,
        )
    assert (state_dir / "epoch_1").is_dir()
    resumed = train_fold(TINY, tcfg, prepared, fold, state_dir=str(state_dir), state_policy=policy, **args)
    assert resumed["resumed_from_epoch"] == 1 and [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert not state_dir.exists()  # released once the held-out scores exist
    fresh = train_fold(TINY, tcfg, prepared, fold, **args)  # no states: the same two epochs uninterrupted
    assert resumed["heldout_probs"] == fresh["heldout_probs"] and resumed["score"] == fresh["score"]


def test_best_trial_config_is_the_stored_or_rebuilt_resolved_training(smoke_config):
    stored = trial_training_config(smoke_config.training, {"learning_rate": 4.2e-4})
    summary = {
        "study_name": "s",
        "storage": "x",
        "best_trial": {"trial_key": "a" * 12, "config": dict(stored)},
        "trials": [{"trial_key": "b" * 12, "params": {"head": "mlp"}}],
    }
    got = best_trial_config(smoke_config, summary, "a" * 12)
    assert type(got) is Training and got == stored
    rebuilt = best_trial_config(smoke_config, summary, "b" * 12)
    assert type(rebuilt) is Training and rebuilt == smoke_config.training.with_params({"head": "mlp"})
    with pytest.raises(KeyError, match="c" * 12):
        best_trial_config(smoke_config, summary, "c" * 12)


def test_a_journal_lock_left_by_a_killed_worker_is_taken_over(tmp_path, base_config, monkeypatch):
    """A worker SIGKILLed inside a journal write leaves Optuna's lock (a symlink to the journal). The
    next worker takes it over once the journal has stood still for the grace period - also when the
    study lives at a relative path, as results/hpo/... does under Snakemake. (With the relative path
    handed to Optuna the link resolved beside itself, the stale check failed, and the run hung.)"""
    from threading import Thread

    from workflow_lib.search import hpo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hpo, "JOURNAL_LOCK_GRACE_S", 3)
    rel = os.path.join("results", "hpo", "study.journal")
    # the killed worker: takes the journal's lock as a write does, and dies holding it
    killed = open_study(base_config, rel, "s")
    killed._storage._backend._lock.acquire()
    assert os.path.lexists(rel + ".lock")
    done = {}

    def second_worker():
        study = open_study(base_config, rel, "s")
        study.enqueue_trial({"learning_rate": 1e-4})
        done["trials"] = len(study.get_trials())

    t = Thread(target=second_worker, daemon=True)
    t.start()
    t.join(30)
    assert done.get("trials") == 1, "the second worker still waits on the stale journal lock"
    assert not os.path.lexists(rel + ".lock")
