"""The HPO stage: an Optuna study whose every trial is k-fold cross-validation.

One study per (backbone, study_key, variant) lives in an Optuna journal file
(safe for several worker processes, also on a shared file system) or in the
database ``hpo.storage`` names. Each trial trains the k folds of the prepared
data; each fold's result is a file ``trials/{trial_key}/fold_{k}/metrics.json``
written atomically, so a fold that finished is never trained again: after an
interruption, after a retry of a failed trial, when another trial proposes the
same configuration, or when another variant of the backbone already trained it
(warm start: the file is copied from there). Beside the scores it holds the held-out part's
``input_coverage`` (what the trial's tokenizer and window settings read and cut); the study
summary gives each trial's coverage over its folds together (:func:`pooled_coverage`).

Parallel workers (``hpo.n_workers``, each its own Snakemake job) share the study.
A worker claims a trial under a file lock only while finished + running trials
are fewer than n_trials, so the study ends with exactly n_trials finished
(complete or pruned) trials. A running trial's worker touches a heartbeat file;
a RUNNING trial whose heartbeat is older than 4 x ``hpo.heartbeat_s`` (or that
an earlier process of the same worker left behind) is marked failed and its
parameters queued again, so a killed worker never leaves the study stuck.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.trial import TrialState

from workflow_lib.config import Training, keys
from workflow_lib.config.search_space import suggest, trial_training_config
from workflow_lib.devices import describe
from workflow_lib.learning.retention import release
from workflow_lib.persistence.locks import file_lock
from workflow_lib.persistence.paths import Layout
from workflow_lib.persistence.reports import read_json, write_json
from workflow_lib.provenance import code_version
from workflow_lib.tracking.secrets import mask
from workflow_lib.tracking.tracker import RunRef, Tracker

if TYPE_CHECKING:
    from workflow_lib.config.sections import Config, Encoder, Objective
    from workflow_lib.learning.epoch_states import StatePolicy

log = logging.getLogger(__name__)

CV_SPLIT = "cv heldout folds (train split)"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(backbone: str, study_key: str, variant: int) -> str:
    return f"{backbone}-{study_key}-v{variant}"


def make_sampler(cfg: Config, n_finished: int = 0, variant: int = 1) -> optuna.samplers.BaseSampler:
    """The sampler for the next trial, seeded from the config seed, the variant and the number of
    finished trials.

    Re-seeding per trial makes the sequence of proposals a function of the study's history alone,
    so a study interrupted and resumed proposes what an uninterrupted one would have. A forced new
    variant of the same definition draws other proposals (v1 keeps the config seed).
    """
    s = cfg.hpo.sampler
    seed = s.seed + 1_000_003 * n_finished + 7_919 * (int(variant) - 1)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials)
    return optuna.samplers.RandomSampler(seed=seed)


# Seconds a journal lock may stand unchanged before a worker takes it as left by a killed process
# (Optuna's default; a journal write under the lock takes milliseconds).
JOURNAL_LOCK_GRACE_S = 30


def open_study(cfg: Config, storage_path: str | Path, name: str) -> optuna.Study:
    """The study ``name`` in the journal file ``storage_path``, or in the database of ``hpo.storage``."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    hpo = cfg.hpo
    if hpo.storage:
        storage = _rdb_storage(hpo.storage)
    else:
        # An absolute path: Optuna's lock is a symlink to the journal, and it breaks a lock left by a killed
        # worker once the journal has not changed for the grace period - which it measures by stat() through
        # the link. A relative link resolves beside itself, the stat fails, and every later run waited forever.
        journal = Path(storage_path).resolve()
        journal.parent.mkdir(parents=True, exist_ok=True)
        lock = JournalFileSymlinkLock(str(journal), grace_period=JOURNAL_LOCK_GRACE_S)
        storage = JournalStorage(JournalFileBackend(str(journal), lock_obj=lock))
    sampler = make_sampler(cfg)
    p = hpo.pruner
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)
        if p.enabled
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True
    )


def _rdb_storage(url: str, attempts: int = 5):
    """Optuna's storage in the database ``url``. Workers that start together on an empty database race to
    create its tables (PostgreSQL: UniqueViolation / DuplicateTable); the loser retries and finds them."""
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    for attempt in range(attempts):
        try:
            return RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:  # the race, or no rights
            error = exc
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            error = exc
            break
    raise RuntimeError(
        f"hpo.storage {mask(url)}: cannot open the database ({mask(str(error).splitlines()[0])}). "
        "Check the URL (user, password, host, port, database), that the server is running, that "
        "the user may create tables there (the database's owner may), and that the driver is "
        "installed (postgresql: psycopg2-binary, in envs/requirements.lock)"
    ) from None


def _heartbeat_age(t, heartbeat_dir: str | Path, now: float) -> float:
    """Seconds since the trial's worker last showed life (its heartbeat file, else its start)."""
    try:
        return now - os.stat(Path(heartbeat_dir) / str(t.number)).st_mtime
    except FileNotFoundError:
        return now - t.datetime_start.timestamp() if t.datetime_start else 0.0


def recover_stale_trials(
    study: optuna.Study, worker: str, *, heartbeat_dir: str | Path | None = None, heartbeat_s: float = 60.0
) -> int:
    """RUNNING trials whose worker is dead: left by an earlier process of this worker (Snakemake never
    runs the same worker job twice at once), or silent for more than 4 heartbeats. Each is marked
    FAILED and its parameters queued again, so the retry finds its finished folds on disk.
    Returns how many were recovered."""
    n = 0
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        mine = t.user_attrs.get("worker") == worker
        silent = heartbeat_dir is not None and _heartbeat_age(t, heartbeat_dir, now) > 4 * heartbeat_s
        if mine or silent:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number}, skip_if_exists=False)
            why = (
                f"an interrupted run of worker {worker}"
                if mine
                else f"worker {t.user_attrs.get('worker')}, silent for more than {4 * heartbeat_s:.0f} s"
            )
            log.warning(
                "trial %d was left running by %s: marked failed and queued again (its finished folds are reused)",
                t.number,
                why,
            )
            n += 1
    return n


@contextlib.contextmanager
def heartbeat(path: str | Path, interval: float):
    """Touch ``path`` every ``interval`` seconds while the block runs (a daemon thread)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.touch()
    stop = threading.Event()

    def beat():
        while not stop.wait(interval):
            with contextlib.suppress(OSError):
                os.utime(p, None)

    th = threading.Thread(target=beat, name=f"heartbeat {p.name}", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(timeout=5)


def train_fold(
    spec: Encoder,
    tcfg: Training,
    prepared,
    fold: Mapping,
    *,
    metric: str,
    objective: Objective,
    threads: int | None,
    desc: str,
    state_dir: str | None = None,
    state_policy: StatePolicy | None = None,
) -> dict:
    """Train the trial's configuration ``tcfg`` (a resolved Training) on a fold's train part for its
    epochs and score its held-out part on ``metric`` and ``objective`` (the hpo section's).

    ``state_dir`` (the fold folder's ``state/``): epoch-level training state, resumed after an
    interruption and removed once the held-out scores exist (learning/retention.py), as ``state_policy``
    (StatePolicy.of(cfg); required with a state_dir) says.
    """
    from workflow_lib.learning.examples import objective_value, sentence_threshold_counts
    from workflow_lib.learning.inference import predict
    from workflow_lib.learning.training import train

    heldout = prepared.of(fold["heldout"])
    t0 = time.perf_counter()
    # no validation records: the fold trains its epochs and is scored once, on the held-out part, below
    res = train(
        spec,
        tcfg,
        prepared.of(fold["train"]),
        progress_desc=desc,
        threads=threads,
        state_dir=state_dir,
        state_policy=state_policy,
    )
    pred = predict(res.model, res.tokenizer, heldout, tcfg, max_length=spec.max_length)
    metrics = pred.metrics(heldout)
    result = {
        "fold": fold["fold"],
        "metric": metric,
        "objective": dict(objective),
        "score": objective_value(metrics, metric, objective),
        "split": f"fold {fold['fold']} heldout (train split)",
        "metrics": metrics["criteria"],
        "history": res.history,
        "n_train": len(fold["train"]),
        "n_heldout": len(fold["heldout"]),
        "seconds": time.perf_counter() - t0,
        # out-of-fold probabilities: data this fold's model never trained on (for thresholds / analysis)
        "heldout_post_ids": list(fold["heldout"]),
        "heldout_probs": np.round(pred.probs, 6).tolist(),
    }
    if "evidence" in metrics:
        result["evidence_metrics"] = metrics["evidence"]
    if pred.sentence_probs is not None:
        # the sentence model: its sentence-level metrics, and the counts behind the out-of-fold evidence threshold
        result["sentence_metrics"] = metrics["sentences"]
        result["heldout_sentence_counts"] = sentence_threshold_counts(pred.examples, heldout, pred.sentence_probs)
    # what the window policy read of the held-out posts with this trial's tokenizer and window settings
    result["input_coverage"] = pred.examples.coverage(result["split"])
    if res.augmentation:
        result["augmentation"] = {
            "recipe": tcfg.augment,
            "prob": tcfg.augment_prob,
            "n_changed": len(res.augmentation),
            "changes": res.augmentation,
        }
    if res.resumed_from:
        result["resumed_from_epoch"] = res.resumed_from
    if state_dir is not None:
        release(state_dir)
    return result


COVERAGE_SETTINGS = ("policy", "policy_text", "max_length", "window_overlap", "max_windows", "aggregation")


def pooled_coverage(coverages: Sequence[Mapping | None]) -> dict | None:
    """One trial's input coverage over its scored folds' held-out posts together (the folds partition the
    train split, so each train post counts once), from the folds' ``input_coverage``
    (examples.Examples.coverage); folds without one (written by older code) are left out; None without any.

    Window means are weighted by the folds' posts; maxima are over all folds. The settings (policy,
    max_length, overlap, cap, aggregation) are the trial's, the same in every fold; the sentence model's
    sentence coverage adds up too."""
    covs = [c for c in coverages if c]
    if not covs:
        return None
    n = sum(int(c["n_posts"]) for c in covs)
    n_ev = sum(int(c["n_evidence_sentences"]) for c in covs)
    longer = sum(int(c["n_longer_than_window"]) for c in covs)
    beyond = sum(int(c["n_evidence_beyond_read"]) for c in covs)

    def windows(key: str) -> dict:
        mean = sum(float(c[key]["mean"]) * int(c["n_posts"]) for c in covs) / n if n else 0.0
        return {"mean": mean, "max": max(int(c[key]["max"]) for c in covs)}

    pooled = {
        "split": CV_SPLIT,
        "n_folds": len(covs),
        **{k: covs[0].get(k) for k in COVERAGE_SETTINGS},
        "n_posts": n,
        "n_longer_than_window": longer,
        "share_longer_than_window": longer / n if n else 0.0,
        "windows_needed": windows("windows_needed"),
        "windows_read": windows("windows_read"),
        "n_posts_capped": sum(int(c["n_posts_capped"]) for c in covs),
        "n_evidence_sentences": n_ev,
        "n_evidence_beyond_read": beyond,
        "share_evidence_beyond_read": beyond / n_ev if n_ev else 0.0,
    }
    sentences = [c["sentences"] for c in covs if c.get("sentences")]
    if sentences:
        pooled["sentences"] = _pooled_sentences(sentences)
    return pooled


def _pooled_sentences(covs: Sequence[Mapping]) -> dict:
    """The sentence model's sentence coverage (examples._sentence_coverage) of the folds together: counts add."""
    keys = ("n_sentences", "n_read", "n_read_in_part", "n_not_read", "n_evidence_sentences", "n_evidence_not_read")
    total = {k: sum(int(c[k]) for c in covs) for k in keys}
    n, n_ev = total["n_sentences"], total["n_evidence_sentences"]
    return {
        **total,
        "share_not_read": total["n_not_read"] / n if n else 0.0,
        "share_evidence_not_read": total["n_evidence_not_read"] / n_ev if n_ev else 0.0,
    }


def fold_score(result: Mapping, metric: str, objective: Mapping) -> float:
    """A fold's objective value from its stored metrics (criteria, and evidence when present)."""
    from workflow_lib.learning.examples import objective_value

    metrics = {"criteria": result["metrics"]}
    if "evidence_metrics" in result:
        metrics["evidence"] = result["evidence_metrics"]
    return objective_value(metrics, metric, objective)


def make_objective(
    cfg: Config,
    *,
    backbone: str,
    data_key: str,
    prepared,
    study_dir: str,
    worker: str,
    tracker: Tracker,
    study_run: RunRef,
    threads: int | None,
):
    """The Optuna objective of one worker: each trial's configuration (the resolved training section with
    the trial's parameters) trained and scored on every fold."""
    from workflow_lib.learning.epoch_states import StatePolicy

    spec = cfg.encoders[backbone]
    metric = cfg.hpo.metric
    objective_cfg = cfg.hpo.objective
    space = cfg.hpo.search_space
    state_policy = StatePolicy.of(cfg)
    layout = Layout(cfg.results_dir)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space, cfg.training)
        tcfg = trial_training_config(cfg.training, params)
        tkey = keys.trial_key(data_key, spec, tcfg)
        trial.set_user_attr("trial_key", tkey)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("device", describe()["type"])
        ids = {
            "backbone": backbone,
            "trial_key": tkey,
            "trial_number": trial.number,
            "study_key": study_run.ids["study_key"],
            "variant": study_run.ids["variant"],
        }
        scores: list[float] = []
        criteria: list[float] = []  # the criteria metric alone (the objective may weigh evidence too)
        coverages: list[dict | None] = []  # each scored fold's held-out input coverage
        reused = warm = 0
        with tracker.run("trial", ids, parent=study_run, params={"params": params, "config": tcfg}) as trun:
            for fold in prepared.folds:
                k = fold["fold"]
                path = Layout.fold_metrics(study_dir, tkey, k)
                if not Path(path).exists() and (elsewhere := layout.fold_metrics_elsewhere(backbone, tkey, k)):
                    write_json(path, read_json(elsewhere[0]))  # warm start: trained by another variant
                    warm += 1
                    log.info("trial %d fold %d: warm start from %s", trial.number, k, elsewhere[0])
                if Path(path).exists():
                    result = read_json(path)
                    reused += 1
                    # the trained fold is the same; this study's objective may weigh it differently
                    result["score"] = fold_score(result, metric, objective_cfg)
                    log.info("trial %d fold %d: reusing %s (score %.4f)", trial.number, k, path, result["score"])
                else:
                    fold_ids = {**ids, "fold": k}
                    fold_ids.pop("trial_number")
                    with tracker.run("fold", fold_ids, parent=trun) as frun:
                        result = train_fold(
                            spec,
                            tcfg,
                            prepared,
                            fold,
                            metric=metric,
                            objective=objective_cfg,
                            threads=threads,
                            state_dir=Layout.fold_state(study_dir, tkey, k),
                            state_policy=state_policy,
                            desc=f"trial {trial.number} fold {k + 1}/{len(prepared.folds)}",
                        )
                        result["trial_key"] = tkey
                        for h in result["history"]:
                            tracker.log_metrics(frun, {"train_loss": h["train_loss"]}, step=h["epoch"])
                        cov = result["input_coverage"]
                        tracker.log_metrics(
                            frun,
                            {
                                "heldout_objective": result["score"],
                                f"heldout_{metric}": result["metrics"][metric],
                                "heldout_micro_f1": result["metrics"]["micro_f1"],
                                "heldout_share_longer_than_window": cov["share_longer_than_window"],
                                "heldout_windows_per_post": cov["windows_read"]["mean"],
                                "heldout_share_evidence_beyond_read": cov["share_evidence_beyond_read"],
                            },
                        )
                        write_json(path, result)
                scores.append(result["score"])
                criteria.append(result["metrics"][metric])
                coverages.append(result.get("input_coverage"))
                trial.set_user_attr("input_coverage", pooled_coverage(coverages))
                trial.set_user_attr("reused_folds", reused)
                trial.set_user_attr("warm_started_folds", warm)
                trial.set_user_attr("criteria_fold_scores", criteria)
                trial.report(result["score"], step=k)
                tracker.log_metrics(trun, {f"fold_{metric}": result["score"]}, step=k)
                if trial.should_prune():
                    log.info("trial %d pruned after fold %d (score %.4f)", trial.number, k, result["score"])
                    raise optuna.TrialPruned()
            mean = statistics.fmean(scores)
            tracker.log_metrics(trun, {f"cv_{metric}_mean": mean, f"cv_{metric}_std": _std(scores)})
        return mean

    return objective


def _std(xs) -> float:
    return statistics.pstdev(xs) if len(xs) > 1 else 0.0


def _mean_or_none(xs) -> float | None:
    return statistics.fmean(xs) if xs else None


def run_worker(
    cfg: Config,
    *,
    backbone: str,
    study_key: str,
    variant: int,
    worker: str,
    data_key: str,
    data_dir: str,
    threads: int | None = None,
) -> dict:
    """Run this worker's share of the study until it holds n_trials finished (complete or pruned) trials."""
    from workflow_lib.data.prepare import load_prepared

    tracker = Tracker(cfg)  # first: its replayer opens the store while this job works
    layout = Layout(cfg.results_dir)
    study_dir = layout.study_dir(backbone, study_key, variant)
    prepared = load_prepared(data_dir)
    write_definition(
        cfg,
        layout.study_definition(backbone, study_key, variant),
        backbone=backbone,
        study_key=study_key,
        variant=variant,
        data_key=data_key,
    )
    study = open_study(
        cfg, layout.study_storage(backbone, study_key, variant), study_name(backbone, study_key, variant)
    )
    n_trials = cfg.hpo.n_trials
    heartbeat_s = cfg.hpo.heartbeat_s
    beats = layout.heartbeats_dir(backbone, study_key, variant)
    lock = layout.study_lock(backbone, study_key, variant)
    ids = {"backbone": backbone, "study_key": study_key, "variant": variant, "data_key": data_key}
    srun = tracker.start("study", ids, params={"hpo": cfg.hpo, "training": cfg.training})
    objective = make_objective(
        cfg,
        backbone=backbone,
        data_key=data_key,
        prepared=prepared,
        study_dir=study_dir,
        worker=worker,
        tracker=tracker,
        study_run=srun,
        threads=threads,
    )
    progress = StudyProgress(n_trials)

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=FINISHED))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = True
    while True:
        with file_lock(lock):  # claim a trial only while finished + running < n_trials
            recover_stale_trials(study, worker if first else "", heartbeat_dir=beats, heartbeat_s=heartbeat_s)
            first = False
            # one read for both counts: a trial that another worker tells between two reads would be
            # counted in neither (running in the first, finished in the second) and a trial too many claimed
            states = [t.state for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))]
            running = states.count(TrialState.RUNNING)
            n = len(states) - running
            if n >= n_trials:
                break
            trial = None
            if n + running < n_trials:
                # seeded by the trials claimed so far: one worker's sequence is that of an uninterrupted
                # study; parallel workers claiming at once get different seeds (never the same proposal)
                study.sampler = make_sampler(cfg, n + running, variant)
                trial = study.ask()
                trial.set_user_attr("worker", worker)
        if trial is None:  # the last trials run in other workers; wait in case one of them dies
            time.sleep(min(5.0, heartbeat_s / 4))
            continue
        with heartbeat(layout.heartbeat(backbone, study_key, variant, trial.number), heartbeat_s):
            try:
                frozen = study.tell(trial, objective(trial))
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=TrialState.PRUNED)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
        progress(study, frozen)
    tracker.end(srun)
    tracker.close()
    return {"finished": finished(), "n_trials": n_trials, "worker": worker}


def write_definition(cfg: Config, path: str, *, backbone: str, study_key: str, variant: int, data_key: str) -> None:
    """study.json: what the study is (written once, by its first worker), for people and tools."""
    if Path(path).exists():
        return
    write_json(
        path,
        {
            "backbone": backbone,
            "study_key": study_key,
            "variant": int(variant),
            "data_key": data_key,
            "backbone_spec": cfg.encoders[backbone],
            "training": cfg.training,
            "hpo": {k: v for k, v in cfg.hpo.items() if k not in ("n_workers", "storage")},
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
        },
    )


class StudyProgress:
    """Prints 'trial i/n, best so far, ETA' after every trial."""

    def __init__(self, n_trials: int):
        self.n_trials = n_trials
        self.t0 = time.perf_counter()
        self.done_here = 0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.done_here += 1
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "none yet"
        elapsed = time.perf_counter() - self.t0
        left = max(0, self.n_trials - done)
        eta = elapsed / self.done_here * left
        value = (
            "pruned"
            if trial.state == TrialState.PRUNED
            else (f"{trial.value:.4f}" if trial.value is not None else trial.state.name.lower())
        )
        msg = f"trial {done}/{self.n_trials} (#{trial.number}: {value}), best so far {best}, ETA {eta:.0f}s"
        log.info(msg)


def summarize(cfg: Config, *, backbone: str, study_key: str, variant: int, data_key: str) -> dict:
    """The study summary: every trial with params, per-fold and mean±std scores, state, input coverage
    (over its scored folds' held-out posts); the best trial."""
    layout = Layout(cfg.results_dir)
    storage = layout.study_storage(backbone, study_key, variant)
    study = open_study(cfg, storage, study_name(backbone, study_key, variant))
    trials = []
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        folds = [t.intermediate_values.get(k) for k in range(cfg.data.n_folds)]
        done = [f for f in folds if f is not None]
        state = t.state.name
        counts_key = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(state, "running")
        counts[counts_key] += 1
        trials.append(
            {
                "number": t.number,
                "trial_key": t.user_attrs.get("trial_key", ""),
                "state": state,
                "params": dict(t.params),
                "fold_scores": folds,
                "mean": t.value if t.state == TrialState.COMPLETE else (statistics.fmean(done) if done else None),
                "std": _std(done) if done else None,
                "criteria_mean": _mean_or_none(t.user_attrs.get("criteria_fold_scores")),
                "criteria_fold_scores": t.user_attrs.get("criteria_fold_scores"),
                "reused_folds": int(t.user_attrs.get("reused_folds", 0)),
                "warm_started_folds": int(t.user_attrs.get("warm_started_folds", 0)),
                "duration_s": t.duration.total_seconds() if t.duration else None,
                "input_coverage": t.user_attrs.get("input_coverage"),
            }
        )
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = None
    if complete:
        # highest mean; ties -> lower std, then the earlier trial (deterministic)
        ranked = sorted(complete, key=lambda t: (-t["mean"], t["std"], t["number"]))
        fields = (
            "number",
            "trial_key",
            "params",
            "mean",
            "std",
            "fold_scores",
            "criteria_mean",
            "criteria_fold_scores",
            "input_coverage",
        )
        best = {k: ranked[0][k] for k in fields}
        best["config"] = trial_training_config(cfg.training, best["params"])
        # co-best: other configurations with exactly the best mean (each becomes a selection candidate)
        seen = {best["trial_key"]}
        best["co_best"] = []
        for t in ranked[1:]:
            if t["mean"] == best["mean"] and t["trial_key"] not in seen:
                seen.add(t["trial_key"])
                best["co_best"].append(
                    {**{k: t[k] for k in fields}, "config": trial_training_config(cfg.training, t["params"])}
                )
    summary = {
        "backbone": backbone,
        "study_key": study_key,
        "variant": int(variant),
        "data_key": data_key,
        "study_name": study.study_name,
        "metric": cfg.hpo.metric,
        "objective": dict(cfg.hpo.objective),
        "direction": "maximize",
        "n_trials": cfg.hpo.n_trials,
        "n_folds": cfg.data.n_folds,
        "storage": mask(cfg.hpo.storage) if cfg.hpo.storage else storage,
        "trials": trials,
        "best_trial": best,
        "counts": counts,
        "code_version": code_version(),
        "split": CV_SPLIT,
        "backbone_spec": cfg.encoders[backbone],
        "devices": sorted(
            {t.user_attrs["device"] for t in study.get_trials(deepcopy=False) if "device" in t.user_attrs}
        ),
        "warm_start": {
            "trials": sum(1 for t in trials if t["warm_started_folds"]),
            "folds": sum(t["warm_started_folds"] for t in trials),
        },
    }
    return summary


def best_trial_config(cfg: Config, summary: Mapping, trial_key: str) -> Training:
    """The training configuration (a resolved Training) of a trial of a study summary, for refit and
    final: the one the summary stored (an earlier variant may have had other fixed settings), resolved once
    as it is read back (a setting it lacks takes the schema's default, as its trial key did), else the
    trial's parameters applied to the training section (Training.with_params)."""
    best = summary.get("best_trial") or {}
    for t in [best, *best.get("co_best", [])]:
        if t.get("trial_key") == trial_key and t.get("config"):
            return Training.resolve(
                t["config"],
                what=f"configuration of trial {trial_key} stored in the summary of study {summary['study_name']}",
            )
    for t in summary["trials"]:
        if t["trial_key"] == trial_key:
            return trial_training_config(cfg.training, t["params"])
    raise KeyError(f"trial {trial_key} not in study {summary['study_name']} ({summary['storage']})")
