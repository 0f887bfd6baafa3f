rule hpo_worker:
    input:
        posts=data_file("posts.jsonl"),
        folds=data_file("folds.json"),
    output:
        done=LAYOUT.worker_done("{backbone}", "{study_key}", "{variant}", "{worker}"),
    wildcard_constraints:
        variant=PLAN.variant_pattern(),
    params:
        data_key=PLAN.data_key,
        data_dir=lambda wc, input: os.path.dirname(input.posts),
    log:
        LAYOUT.log("hpo_worker", "{backbone}-{study_key}-v{variant}-w{worker}"),
    threads: training_threads()
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/hpo_worker.py"


checkpoint hpo_summary:
    input:
        worker_targets,
    output:
        summary=LAYOUT.study_summary("{backbone}", "{study_key}", "{variant}"),
    wildcard_constraints:
        variant=PLAN.variant_pattern(),
    params:
        data_key=PLAN.data_key,
    log:
        LAYOUT.log("hpo_summary", "{backbone}-{study_key}-v{variant}"),
    threads: 1
    script:
        "../scripts/hpo_summary.py"
