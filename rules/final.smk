rule final:
    input:
        unpack(final_inputs),
    output:
        report=LAYOUT.evaluation_report("{final_key}"),
        manifest=LAYOUT.final_manifest("{final_key}"),
        model_card=LAYOUT.model_card("{final_key}"),  # inside the model folder, covered by its manifest
        test_predictions=LAYOUT.test_predictions("{final_key}"),
        plots=report(
            directory(LAYOUT.final_plots("{final_key}")),
            patterns=["{plot}.png"],
            caption="report/evaluation_plot.rst",
            category="3. Test evaluation",
            subcategory="Evaluation plots",
            labels={"figure": "{plot}", "final_key": "{final_key}"},
        ),
        html=report(
            LAYOUT.evaluation_html("{final_key}"),
            caption="report/evaluation_page.rst",
            category="3. Test evaluation",
            subcategory="Evaluation page",
            labels={"page": "evaluation", "final_key": "{final_key}"},
        ),
    params:
        model_dir=lambda wc, output: os.path.dirname(output.manifest),
        data_dir=os.path.dirname(data_file("posts.jsonl")),
        selection_html=lambda wc: LAYOUT.selection_html(selection_key()),  # the evaluation page links to it
        final=CFG.final,  # not read by the script (it reads the config): a rerun trigger, which final_key
        # covers too, and the epoch setting quoted by the report caption evaluation_page.rst
        co_best=lambda wc: {
            k: {"model_dir": LAYOUT.refit_model_dir(refit_key_of(k)), "metrics": LAYOUT.refit_metrics(refit_key_of(k))}
            for k in co_best_keys()
        },
    log:
        LAYOUT.log("final", "{final_key}"),
    threads: workflow.cores
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/final.py"
