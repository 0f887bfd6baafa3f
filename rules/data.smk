rule prepare_data:
    output:
        posts=LAYOUT.data_file("{data_key}", "posts.jsonl"),
        splits=LAYOUT.data_file("{data_key}", "splits.json"),
        folds=LAYOUT.data_file("{data_key}", "folds.json"),
        card=report(
            LAYOUT.data_file("{data_key}", "data_card.json"),
            caption="report/data_card.rst",
            category="1. Data",
            subcategory="Data card",
            labels={"file": "data_card.json", "data_key": "{data_key}"},
        ),
    params:
        data_dir=lambda wc, output: os.path.dirname(output.card),
        data=CFG.data,  # rerun trigger only (the script reads the config): data_key covers the source
        # and the preprocessing settings, this redoes the job for any other change to the data section
    log:
        LAYOUT.log("prepare_data", "{data_key}"),
    threads: 1
    script:
        "../scripts/prepare_data.py"


rule baseline:
    input:
        posts=LAYOUT.data_file("{data_key}", "posts.jsonl"),
        folds=LAYOUT.data_file("{data_key}", "folds.json"),
    output:
        baseline=LAYOUT.baseline("{data_key}"),  # post level: one document per post
        sentences=LAYOUT.baseline_sentences("{data_key}"),  # sentence level: max over a post's sentences
    params:
        data_dir=lambda wc, input: os.path.dirname(input.posts),
        metric=CFG.hpo.metric,  # rerun trigger only (the script reads the config): the baselines are
        # scored with hpo.metric, which their path (data_key) does not cover
    log:
        LAYOUT.log("baseline", "{data_key}"),
    threads: 1
    script:
        "../scripts/baseline.py"
