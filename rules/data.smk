rule prepare_data:
    output:
        posts=L.data_file("{data_key}", "posts.jsonl"),
        splits=L.data_file("{data_key}", "splits.json"),
        folds=L.data_file("{data_key}", "folds.json"),
        card=report(
            L.data_file("{data_key}", "data_card.json"),
            caption="report/data_card.rst",
            category="1. Data",
            subcategory="Data card",
            labels={"file": "data_card.json", "data_key": "{data_key}"},
        ),
    params:
        data=CFG["data"],  # rerun trigger only (the script reads the config): data_key covers the source
        # and the preprocessing settings, this redoes the job for any other change to the data section
    log:
        L.log("prepare_data", "{data_key}"),
    threads: 1
    script:
        "../scripts/prepare_data.py"


rule baseline:
    input:
        posts=L.data_file("{data_key}", "posts.jsonl"),
        folds=L.data_file("{data_key}", "folds.json"),
    output:
        L.baseline("{data_key}"),
    params:
        metric=CFG["hpo"]["metric"],  # rerun trigger only (the script reads the config): the baseline is
        # scored with hpo.metric, which its path (data_key) does not cover
    log:
        L.log("baseline", "{data_key}"),
    threads: 1
    script:
        "../scripts/baseline.py"
