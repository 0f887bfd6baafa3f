rule refit:
    input:
        summary=summary_of_trial,
        posts=data_file("posts.jsonl"),
        splits=data_file("splits.json"),
    output:
        manifest=f"{L.refit_dir('{trial_key}')}/model/manifest.json",
        metrics=f"{L.refit_dir('{trial_key}')}/metrics.json",
    params:
        refit=CFG["refit"],
        data_dir=L.data_dir(PLAN.data_key),
        out_dir=L.refit_dir("{trial_key}"),
    log:
        L.log("refit", "{trial_key}"),
    threads: training_threads()
    script:
        "../scripts/refit.py"


rule benchmark:
    input:
        manifest=f"{L.refit_dir('{trial_key}')}/model/manifest.json",
    output:
        L.benchmark("{trial_key}"),
    params:
        benchmark=CFG["benchmark"],
        refit_dir=L.refit_dir("{trial_key}"),
        backbone=lambda wc: backbone_of_trial(wc.trial_key),
    log:
        L.log("benchmark", "{trial_key}"),
    threads: training_threads()
    script:
        "../scripts/benchmark.py"
