rule final:
    input:
        unpack(final_inputs),
    output:
        report=L.evaluation_report("{final_key}"),
        manifest=f"{L.final_dir('{final_key}')}/model/manifest.json",
    params:
        out_dir=L.final_dir("{final_key}"),
        data_dir=L.data_dir(PLAN.data_key),
        final=CFG["final"],
    log:
        L.log("final", "{final_key}"),
    threads: workflow.cores
    script:
        "../scripts/final.py"
