# Keys -> paths, input functions and targets. No rules here.
import json
import os

from workflow_lib.plan import candidates_from_summaries


wildcard_constraints:
    data_key="[0-9a-f]{12}",
    study_key="[0-9a-f]{12}",
    trial_key="[0-9a-f]{12}",
    selection_key="[0-9a-f]{12}",
    final_key="[0-9a-f]{12}",
    variant="[0-9]+",
    worker="[0-9]+",
    backbone="[A-Za-z0-9][A-Za-z0-9_.-]*",


def data_file(name):
    return L.data_file(PLAN.data_key, name)


def training_threads():
    return PLAN.training_threads(workflow.cores)


def worker_targets(wildcards):
    return [
        L.worker_done(wildcards.backbone, wildcards.study_key, wildcards.variant, w)
        for w in range(PLAN.n_workers())
    ]


def early_targets():
    """Targets known before any study runs: every study summary and the baseline.
    Requesting them up front lets independent studies run side by side."""
    targets = [s["summary"] for s in PLAN.studies()]
    if CFG["selection"]["baseline"]:
        targets.append(L.baseline(PLAN.data_key))
    return targets


def study_summaries():
    """Summary paths of every study, once the hpo_summary checkpoints have run."""
    return [
        checkpoints.hpo_summary.get(
            backbone=s["backbone"], study_key=s["study_key"], variant=s["variant"]
        ).output.summary
        for s in PLAN.studies()
    ]


def candidates():
    summaries = []
    for path in study_summaries():
        with open(path) as fh:
            summaries.append(json.load(fh))
    return candidates_from_summaries(summaries)


def summary_of_trial(wildcards):
    for s in PLAN.studies():
        for c in candidates():
            if c["trial_key"] == wildcards.trial_key and c["study_key"] == s["study_key"]:
                return s["summary"]
    raise ValueError(f"trial {wildcards.trial_key} is not a selection candidate of this config")


def backbone_of_trial(trial_key):
    for c in candidates():
        if c["trial_key"] == trial_key:
            return c["backbone"]
    raise ValueError(f"trial {trial_key} is not a selection candidate")


def selection_report_path():
    return L.selection_report(PLAN.selection_key(candidates()))


def selection_inputs(wildcards):
    cands = candidates()
    inputs = {
        "summaries": study_summaries(),
        "benchmarks": [L.benchmark(c["trial_key"]) for c in cands],
    }
    if CFG["selection"]["baseline"]:
        inputs["baseline"] = L.baseline(PLAN.data_key)
    return inputs


def selection_report():
    path = checkpoints.select_model.get(selection_key=PLAN.selection_key(candidates())).output.report
    with open(path) as fh:
        return json.load(fh)


def selected():
    return selection_report()["selected"]


def co_best_keys():
    return [c["trial_key"] for c in selection_report()["co_best"]]


def final_inputs(wildcards):
    sel = selected()
    study = next(
        s
        for s in PLAN.studies()
        if s["backbone"] == sel["backbone"] and s["study_key"] == sel["study_key"]
    )
    return {
        "selection": selection_report_path(),
        "summary": study["summary"],
        "refit": L.refit_metrics(sel["trial_key"]),
        "posts": data_file("posts.jsonl"),
        "splits": data_file("splits.json"),
        "co_best": [f for k in co_best_keys() for f in (L.refit_manifest(k), L.refit_metrics(k))],
    }


def final_report(wildcards):
    return L.evaluation_report(PLAN.final_key(selected()["trial_key"], co_best_keys()))
