rule final:
    input:
        unpack(final_inputs),
    output:
        report=L.evaluation_report("{final_key}"),
        manifest=f"{L.final_dir('{final_key}')}/model/manifest.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.report),
        data_dir=lambda wc, input: os.path.dirname(input.posts),
        final=CFG["final"],
    conda:
        "../envs/environment.yaml"
    log:
        L.log("final", "{final_key}"),
    threads: workflow.cores
    script:
        "../scripts/final.py"
