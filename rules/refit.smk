rule refit:
    input:
        summary=summary_of_refit,
        folds=fold_metrics_of_refit,  # the trial's out-of-fold probabilities (thresholds, calibration)
        posts=data_file("posts.jsonl"),
        splits=data_file("splits.json"),
    output:
        manifest=LAYOUT.refit_manifest("{refit_key}"),
        metrics=LAYOUT.refit_metrics("{refit_key}"),
    params:
        refit=CFG.refit,  # rerun trigger only (the script reads the config); refit_key covers it too
        thresholds=CFG.thresholds,  # rerun trigger only, as refit: refit_key covers it too
        trial_key=lambda wc: candidate(wc.refit_key)["trial_key"],
        data_dir=lambda wc, input: os.path.dirname(input.posts),
        model_dir=lambda wc, output: os.path.dirname(output.manifest),
    log:
        LAYOUT.log("refit", "{refit_key}"),
    threads: training_threads()
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/refit.py"


rule benchmark:
    input:
        summary=summary_of_refit,  # its params read the candidate: the study summary must be an input
        manifest=LAYOUT.refit_manifest("{refit_key}"),
        posts=data_file("posts.jsonl"),  # per-post figures sample the prepared train+validation posts
        splits=data_file("splits.json"),
        force=LAYOUT.force_token("benchmark"),
    output:
        benchmark=LAYOUT.benchmark("{refit_key}"),
    params:
        benchmark=CFG.benchmark,  # rerun trigger only (the script reads the config): the benchmark path
        # (refit_key) does not cover the benchmark settings, so this is what redoes it when they change
        model_dir=lambda wc, input: os.path.dirname(input.manifest),
        data_dir=lambda wc, input: os.path.dirname(input.posts),
        trial_key=lambda wc: candidate(wc.refit_key)["trial_key"],
        backbone=lambda wc: candidate(wc.refit_key)["backbone"],
    log:
        LAYOUT.log("benchmark", "{refit_key}"),
    threads: training_threads()
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/benchmark.py"
