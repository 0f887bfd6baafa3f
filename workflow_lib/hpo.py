"""The HPO stage: an Optuna study whose every trial is k-fold cross-validation.

One study per (backbone, study_key, variant) lives in an Optuna journal file
(safe for several worker processes, also on a shared file system). Each trial
trains the k folds of the prepared data; each fold's result is a file
``trials/{trial_key}/fold_{k}/metrics.json`` written atomically, so a fold
that finished is never trained again: after an interruption, after a retry of
a failed trial, or when another trial proposes the same configuration.
"""
from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import optuna
from optuna.trial import TrialState

from workflow_lib import keys
from workflow_lib.paths import Layout
from workflow_lib.provenance import code_version
from workflow_lib.reports import read_json, write_json
from workflow_lib.search_space import suggest, trial_training_config
from workflow_lib.tracking import RunRef, Tracker

log = logging.getLogger(__name__)

CV_SPLIT = "cv heldout folds (train split)"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(backbone: str, study_key: str, variant: int) -> str:
    return f"{backbone}-{study_key}-v{variant}"


def make_sampler(cfg: Mapping, n_finished: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler for the next trial, seeded from the config seed and the number of finished trials.

    Re-seeding per trial makes the sequence of proposals a function of the study's history alone,
    so a study interrupted and resumed proposes what an uninterrupted one would have.
    """
    s = cfg["hpo"]["sampler"]
    seed = s["seed"] + 1_000_003 * n_finished
    if s["name"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s["n_startup_trials"])
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(cfg: Mapping, storage_path: str | Path, name: str) -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    hpo = cfg["hpo"]
    Path(storage_path).parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(storage_path)))
    sampler = make_sampler(cfg)
    p = hpo["pruner"]
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=p["n_startup_trials"], n_warmup_steps=p["n_warmup_steps"])
              if p["enabled"] else optuna.pruners.NopPruner())
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                               direction="maximize", load_if_exists=True)


def recover_stale_trials(study: optuna.Study, worker: str) -> int:
    """Trials left RUNNING by an earlier process of this worker are dead (Snakemake never runs
    the same worker job twice at once): mark them FAILED and queue their parameters again, so
    the retry finds their finished folds on disk. Returns how many were recovered."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker") == worker:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number}, skip_if_exists=False)
            log.warning("trial %d was left running by an interrupted run of worker %s: marked failed and "
                        "queued again (its finished folds are reused)", t.number, worker)
            n += 1
    return n


def train_fold(spec: Mapping, tcfg: Mapping, prepared, fold: Mapping, *, metric: str, objective: Mapping,
               threads: int | None, desc: str) -> dict:
    """Train on a fold's train part for the configured epochs and score its held-out part."""
    from workflow_lib.examples import objective_value
    from workflow_lib.training import predict, train

    heldout = prepared.of(fold["heldout"])
    t0 = time.perf_counter()
    res = train(spec, tcfg, prepared.of(fold["train"]), progress_desc=desc, threads=threads)
    pred = predict(res.model, res.tokenizer, heldout, tcfg, max_length=spec["max_length"])
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
    if res.augmentation:
        result["augmentation"] = {"recipe": tcfg["augment"], "prob": tcfg["augment_prob"],
                                  "n_changed": len(res.augmentation), "changes": res.augmentation}
    return result


def fold_score(result: Mapping, metric: str, objective: Mapping) -> float:
    """A fold's objective value from its stored metrics (criteria, and evidence when present)."""
    from workflow_lib.examples import objective_value

    metrics = {"criteria": result["metrics"]}
    if "evidence_metrics" in result:
        metrics["evidence"] = result["evidence_metrics"]
    return objective_value(metrics, metric, objective)


def make_objective(cfg: Mapping, *, backbone: str, data_key: str, prepared, study_dir: str, worker: str,
                   tracker: Tracker, study_run: RunRef, threads: int | None):
    spec = cfg["encoders"][backbone]
    metric = cfg["hpo"]["metric"]
    objective_cfg = cfg["hpo"]["objective"]
    space = cfg["hpo"]["search_space"]

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space, cfg["training"])
        tcfg = trial_training_config(cfg["training"], params)
        tkey = keys.trial_key(data_key, spec, tcfg)
        trial.set_user_attr("trial_key", tkey)
        trial.set_user_attr("worker", worker)
        ids = {"backbone": backbone, "trial_key": tkey, "trial_number": trial.number,
               "study_key": study_run.ids["study_key"], "variant": study_run.ids["variant"]}
        scores: list[float] = []
        criteria: list[float] = []  # the criteria metric alone (the objective may weigh evidence too)
        reused = 0
        with tracker.run("trial", ids, parent=study_run, params={"params": params, "config": tcfg}) as trun:
            for fold in prepared.folds:
                k = fold["fold"]
                path = Layout.fold_metrics(study_dir, tkey, k)
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
                        result = train_fold(spec, tcfg, prepared, fold, metric=metric, objective=objective_cfg,
                                            threads=threads,
                                            desc=f"trial {trial.number} fold {k + 1}/{len(prepared.folds)}")
                        result["trial_key"] = tkey
                        for h in result["history"]:
                            tracker.log_metrics(frun, {"train_loss": h["train_loss"]}, step=h["epoch"])
                        tracker.log_metrics(frun, {"heldout_objective": result["score"],
                                                   f"heldout_{metric}": result["metrics"][metric],
                                                   "heldout_micro_f1": result["metrics"]["micro_f1"]})
                        write_json(path, result)
                scores.append(result["score"])
                criteria.append(result["metrics"][metric])
                trial.set_user_attr("reused_folds", reused)
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


def run_worker(cfg: Mapping, *, backbone: str, study_key: str, variant: int, worker: str, data_key: str,
               data_dir: str, threads: int | None = None) -> dict:
    """Run this worker's share of the study until it holds n_trials finished (complete or pruned) trials."""
    from workflow_lib.data.prepare import load_prepared

    tracker = Tracker(cfg)  # first: its replayer opens the store while this job works
    layout = Layout(cfg["results_dir"])
    study_dir = layout.study_dir(backbone, study_key, variant)
    prepared = load_prepared(data_dir)
    study = open_study(cfg, layout.study_storage(backbone, study_key, variant), study_name(backbone, study_key, variant))
    recover_stale_trials(study, worker)
    n_trials = cfg["hpo"]["n_trials"]
    ids = {"backbone": backbone, "study_key": study_key, "variant": variant, "data_key": data_key}
    srun = tracker.start("study", ids, params={"hpo": cfg["hpo"], "training": cfg["training"]})
    objective = make_objective(cfg, backbone=backbone, data_key=data_key, prepared=prepared, study_dir=study_dir,
                               worker=worker, tracker=tracker, study_run=srun, threads=threads)
    progress = StudyProgress(n_trials)

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=FINISHED))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while (n := finished()) < n_trials:
        # one trial at a time, re-counting between trials so parallel workers stop at n_trials
        study.sampler = make_sampler(cfg, n)
        study.optimize(objective, n_trials=1, catch=(), callbacks=[progress])
    tracker.end(srun)
    tracker.close()
    return {"finished": finished(), "n_trials": n_trials}


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
        value = "pruned" if trial.state == TrialState.PRUNED else (
            f"{trial.value:.4f}" if trial.value is not None else trial.state.name.lower())
        msg = (f"trial {done}/{self.n_trials} (#{trial.number}: {value}), best so far {best}, "
               f"ETA {eta:.0f}s")
        log.info(msg)


def summarize(cfg: Mapping, *, backbone: str, study_key: str, variant: int, data_key: str) -> dict:
    """The study summary: every trial with params, per-fold and mean±std scores, state; the best trial."""
    layout = Layout(cfg["results_dir"])
    storage = layout.study_storage(backbone, study_key, variant)
    study = open_study(cfg, storage, study_name(backbone, study_key, variant))
    trials = []
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        folds = [t.intermediate_values.get(k) for k in range(cfg["data"]["n_folds"])]
        done = [f for f in folds if f is not None]
        state = t.state.name
        counts_key = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(state, "running")
        counts[counts_key] += 1
        trials.append({
            "number": t.number,
            "trial_key": t.user_attrs.get("trial_key", ""),
            "state": state,
            "params": dict(t.params),
            "fold_scores": folds,
            "mean": t.value if t.state == TrialState.COMPLETE else (statistics.fmean(done) if done else None),
            "std": _std(done) if done else None,
            "criteria_mean": _mean_or_none(t.user_attrs.get("criteria_fold_scores")),
            "reused_folds": int(t.user_attrs.get("reused_folds", 0)),
            "duration_s": t.duration.total_seconds() if t.duration else None,
        })
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    best = None
    if complete:
        # highest mean; ties -> lower std, then the earlier trial (deterministic)
        ranked = sorted(complete, key=lambda t: (-t["mean"], t["std"], t["number"]))
        fields = ("number", "trial_key", "params", "mean", "std", "fold_scores", "criteria_mean")
        best = {k: ranked[0][k] for k in fields}
        # co-best: other configurations with exactly the best mean (each becomes a selection candidate)
        seen = {best["trial_key"]}
        best["co_best"] = []
        for t in ranked[1:]:
            if t["mean"] == best["mean"] and t["trial_key"] not in seen:
                seen.add(t["trial_key"])
                best["co_best"].append({k: t[k] for k in fields})
    summary = {
        "backbone": backbone, "study_key": study_key, "variant": int(variant), "data_key": data_key,
        "study_name": study.study_name, "metric": cfg["hpo"]["metric"], "objective": dict(cfg["hpo"]["objective"]),
        "direction": "maximize",
        "n_trials": cfg["hpo"]["n_trials"], "n_folds": cfg["data"]["n_folds"], "storage": storage,
        "trials": trials, "best_trial": best, "counts": counts, "code_version": code_version(), "split": CV_SPLIT,
    }
    return summary


def best_trial_config(cfg: Mapping, summary: Mapping, trial_key: str) -> dict:
    """The full training configuration of a trial of a study summary (for refit and final)."""
    for t in summary["trials"]:
        if t["trial_key"] == trial_key:
            return trial_training_config(cfg["training"], t["params"])
    raise KeyError(f"trial {trial_key} not in study {summary['study_name']} ({summary['storage']})")
