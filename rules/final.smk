rule final:
    input:
        unpack(final_inputs),
    output:
        report=L.evaluation_report("{final_key}"),
        manifest=L.final_manifest("{final_key}"),
    params:
        model_dir=lambda wc, output: os.path.dirname(output.manifest),
        data_dir=os.path.dirname(data_file("posts.jsonl")),
        final=CFG["final"],
        co_best=lambda wc: {
            k: {"model_dir": L.refit_model_dir(refit_key_of(k)), "metrics": L.refit_metrics(refit_key_of(k))}
            for k in co_best_keys()
        },
    conda:
        "../envs/environment.yaml"
    log:
        L.log("final", "{final_key}"),
    threads: workflow.cores
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/final.py"
