rule prepare_data:
    output:
        posts=L.data_file("{data_key}", "posts.jsonl"),
        splits=L.data_file("{data_key}", "splits.json"),
        folds=L.data_file("{data_key}", "folds.json"),
        card=L.data_file("{data_key}", "data_card.json"),
    params:
        data=CFG["data"],
    conda:
        "../envs/environment.yaml"
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
        metric=CFG["hpo"]["metric"],
    conda:
        "../envs/environment.yaml"
    log:
        L.log("baseline", "{data_key}"),
    threads: 1
    script:
        "../scripts/baseline.py"
