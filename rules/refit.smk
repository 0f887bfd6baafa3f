rule refit:
    input:
        summary=summary_of_trial,
        posts=data_file("posts.jsonl"),
        splits=data_file("splits.json"),
    output:
        manifest=L.refit_manifest("{trial_key}"),
        metrics=L.refit_metrics("{trial_key}"),
    params:
        refit=CFG["refit"],
        data_dir=lambda wc, input: os.path.dirname(input.posts),
        model_dir=lambda wc, output: os.path.dirname(output.manifest),
    conda:
        "../envs/environment.yaml"
    log:
        L.log("refit", "{trial_key}"),
    threads: training_threads()
    script:
        "../scripts/refit.py"


rule benchmark:
    input:
        manifest=L.refit_manifest("{trial_key}"),
    output:
        L.benchmark("{trial_key}"),
    params:
        benchmark=CFG["benchmark"],
        model_dir=lambda wc, input: os.path.dirname(input.manifest),
        backbone=lambda wc: backbone_of_trial(wc.trial_key),
    conda:
        "../envs/environment.yaml"
    log:
        L.log("benchmark", "{trial_key}"),
    threads: training_threads()
    script:
        "../scripts/benchmark.py"
