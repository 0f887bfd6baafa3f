checkpoint select_model:
    input:
        unpack(selection_inputs),
    output:
        report=L.selection_report("{selection_key}"),
        html=report(
            L.selection_html("{selection_key}"),
            caption="report/selection_page.rst",
            category="2. Model selection",
            subcategory="Selection page",
            labels={"page": "selection", "selection_key": "{selection_key}"},
        ),
        plots=report(
            directory(L.selection_plots("{selection_key}")),
            patterns=["{plot}.png"],
            caption="report/selection_plot.rst",
            category="2. Model selection",
            subcategory="Selection plots",
            labels={"figure": "{plot}", "selection_key": "{selection_key}"},
        ),
    params:
        selection=CFG["selection"],  # not read by the script (it reads the config): a rerun trigger, which
        # selection_key covers too, and the selection rule quoted by the report caption selection_page.rst
        benchmarks=lambda wc: {c["trial_key"]: L.benchmark(c["refit_key"]) for c in candidates()},
    log:
        L.log("select_model", "{selection_key}"),
    threads: 1
    script:
        "../scripts/select_model.py"
