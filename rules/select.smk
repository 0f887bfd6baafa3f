checkpoint select_model:
    input:
        unpack(selection_inputs),
    output:
        report=L.selection_report("{selection_key}"),
        html=L.selection_html("{selection_key}"),
    params:
        selection=CFG["selection"],
        benchmarks=lambda wc: {c["trial_key"]: L.benchmark(c["refit_key"]) for c in candidates()},
    conda:
        "../envs/environment.yaml"
    log:
        L.log("select_model", "{selection_key}"),
    threads: 1
    script:
        "../scripts/select_model.py"
