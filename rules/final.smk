rule final:
    input:
        unpack(final_inputs),
    output:
        report=L.evaluation_report("{final_key}"),
        manifest=L.final_manifest("{final_key}"),
        plots=report(
            directory(L.final_plots("{final_key}")),
            patterns=["{plot}.png"],
            caption="report/evaluation_plot.rst",
            category="3. Test evaluation",
            subcategory="Evaluation plots",
            labels={"figure": "{plot}", "final_key": "{final_key}"},
        ),
        html=report(
            L.evaluation_html("{final_key}"),
            caption="report/evaluation_page.rst",
            category="3. Test evaluation",
            subcategory="Evaluation page",
            labels={"page": "evaluation", "final_key": "{final_key}"},
        ),
    params:
        model_dir=lambda wc, output: os.path.dirname(output.manifest),
        data_dir=os.path.dirname(data_file("posts.jsonl")),
        final=CFG["final"],  # not read by the script (it reads the config): a rerun trigger, which final_key
        # covers too, and the epoch setting quoted by the report caption evaluation_page.rst
        co_best=lambda wc: {
            k: {"model_dir": L.refit_model_dir(refit_key_of(k)), "metrics": L.refit_metrics(refit_key_of(k))}
            for k in co_best_keys()
        },
    log:
        L.log("final", "{final_key}"),
    threads: workflow.cores
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/final.py"
