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
    return LAYOUT.data_file(PLAN.data_key, name)


def training_threads():
    return PLAN.training_threads(workflow.cores)


def worker_targets(wildcards):
    return [
        LAYOUT.worker_done(wildcards.backbone, wildcards.study_key, wildcards.variant, w)
        for w in range(PLAN.n_workers())
    ]


def early_targets():
    """Targets known before any study runs: every study summary and the baselines.
    Requesting them up front lets independent studies run side by side."""
    targets = [s["summary"] for s in PLAN.studies()]
    if CFG.selection.baseline:
        targets += LAYOUT.baselines(PLAN.data_key)
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
    return LAYOUT.study_summary(c["backbone"], c["study_key"], c["variant"])


def fold_metrics_of_refit(wildcards):
    """Every CV fold's metrics.json of the refit's trial: their out-of-fold probabilities are what the
    thresholds are chosen on (thresholds.source: oof) and what the out-of-fold calibration is computed on."""
    return PLAN.fold_metrics(candidate(wildcards.refit_key))


def selection_key():
    """The selection key of this config's candidates (once their studies are summarised)."""
    return PLAN.selection_key(candidates())


def selection_report_path():
    return LAYOUT.selection_report(selection_key())


def selection_inputs(wildcards):
    inputs = {
        "summaries": study_summaries(),
        "benchmarks": [LAYOUT.benchmark(c["refit_key"]) for c in candidates()],
        "data_card": data_file("data_card.json"),  # the fold sizes of the corrected t-tests
    }
    if CFG.selection.baseline:
        inputs["baselines"] = LAYOUT.baselines(PLAN.data_key)
    inputs["force"] = LAYOUT.force_token("selection")
    return inputs


def selection_report():
    path = checkpoints.select_model.get(selection_key=selection_key()).output.report
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
        "summary": LAYOUT.study_summary(sel["backbone"], sel["study_key"], sel["variant"]),
        "refit": LAYOUT.refit_metrics(refit_key_of(sel["trial_key"])),
        "posts": data_file("posts.jsonl"),
        "splits": data_file("splits.json"),
        "force": LAYOUT.force_token("final"),
        "co_best": [
            f
            for k in co_best_keys()
            for f in (LAYOUT.refit_manifest(refit_key_of(k)), LAYOUT.refit_metrics(refit_key_of(k)))
        ],
    }


def final_key():
    """The final key the selection leads to (its selected trial and the trials tied with it)."""
    return PLAN.final_key_of(selection_report())


def final_report(wildcards):
    return LAYOUT.evaluation_report(final_key())
