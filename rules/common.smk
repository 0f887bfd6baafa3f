# Keys -> paths, input functions and targets. No rules here.
import json
import os


wildcard_constraints:
    data_key="[0-9a-f]{12}",
    study_key="[0-9a-f]{12}",
    trial_key="[0-9a-f]{12}",
    refit_key="[0-9a-f]{12}",
    selection_key="[0-9a-f]{12}",
    final_key="[0-9a-f]{12}",
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
    """Summary paths of this config's studies (once their hpo_summary checkpoints have run)
    and of the earlier variants selection compares."""
    current = [
        checkpoints.hpo_summary.get(
            backbone=s["backbone"], study_key=s["study_key"], variant=s["variant"]
        ).output.summary
        for s in PLAN.studies()
    ]
    return current + [s["summary"] for s in PLAN.earlier_variants()]


def candidates():
    return PLAN.candidates(study_summaries())[0]


def candidate(refit_key):
    for c in candidates():
        if c["refit_key"] == refit_key:
            return c
    raise ValueError(f"refit {refit_key} is not a selection candidate of this config")


def summary_of_refit(wildcards):
    c = candidate(wildcards.refit_key)
    return L.study_summary(c["backbone"], c["study_key"], c["variant"])


def selection_report_path():
    return L.selection_report(PLAN.selection_key(candidates()))


def selection_inputs(wildcards):
    inputs = {
        "summaries": study_summaries(),
        "benchmarks": [L.benchmark(c["refit_key"]) for c in candidates()],
    }
    if CFG["selection"]["baseline"]:
        inputs["baseline"] = L.baseline(PLAN.data_key)
    inputs["force"] = force_token(CFG["results_dir"], "selection")
    return inputs


def selection_report():
    path = checkpoints.select_model.get(selection_key=PLAN.selection_key(candidates())).output.report
    with open(path) as fh:
        return json.load(fh)


def refit_key_of(trial_key):
    return PLAN.refit_key(trial_key)


def co_best_keys():
    return [c["trial_key"] for c in selection_report()["co_best"]]


def final_inputs(wildcards):
    sel = selection_report()["selected"]
    return {
        "selection": selection_report_path(),
        "summary": L.study_summary(sel["backbone"], sel["study_key"], sel["variant"]),
        "refit": L.refit_metrics(refit_key_of(sel["trial_key"])),
        "posts": data_file("posts.jsonl"),
        "splits": data_file("splits.json"),
        "force": force_token(CFG["results_dir"], "final"),
        "co_best": [
            f
            for k in co_best_keys()
            for f in (L.refit_manifest(refit_key_of(k)), L.refit_metrics(refit_key_of(k)))
        ],
    }


def final_report(wildcards):
    sel = selection_report()["selected"]
    return L.evaluation_report(PLAN.final_key(sel["trial_key"], co_best_keys()))
