checkpoint select_model:
    input:
        unpack(selection_inputs),
    output:
        report=LAYOUT.selection_report("{selection_key}"),
        html=report(
            LAYOUT.selection_html("{selection_key}"),
            caption="report/selection_page.rst",
            category="2. Model selection",
            subcategory="Selection page",
            labels={"page": "selection", "selection_key": "{selection_key}"},
        ),
        plots=report(
            directory(LAYOUT.selection_plots("{selection_key}")),
            patterns=["{plot}.png"],
            caption="report/selection_plot.rst",
            category="2. Model selection",
            subcategory="Selection plots",
            labels={"figure": "{plot}", "selection_key": "{selection_key}"},
        ),
    params:
        selection=CFG.selection,  # not read by the script (it reads the config): a rerun trigger, which
        # selection_key covers too, and the selection rule quoted by the report caption selection_page.rst
        benchmarks=lambda wc: {c["trial_key"]: LAYOUT.benchmark(c["refit_key"]) for c in candidates()},
        # the final stage's evaluation page, which the selection page links to; its final key follows
        # from the selection, so the stage fills it in
        evaluation_html_pattern=lambda wc: LAYOUT.evaluation_html("{final_key}"),
    log:
        LAYOUT.log("select_model", "{selection_key}"),
    threads: 1
    script:
        "../scripts/select_model.py"
