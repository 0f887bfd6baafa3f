# Predictions of the selected final model on a file of posts:
#   snakemake --profile profiles/local predict --config predict_input=PATH
# writes results/predictions/{final_key}/{input_digest}/predictions.jsonl (+ predictions.json, a summary).
# The folder is named by the model and by the sha256 of the input's content, so the job reruns only
# when either changes (the input is ancient(): touching it without changing it reruns nothing).
from workflow_lib.config.keys import input_digest


rule predict:
    input:
        # the selected final model's predictions on predict_input (checked first: without it the target
        # fails at once, before the selection checkpoint is waited for)
        lambda wc: LAYOUT.predictions(input_digest=input_digest(PLAN.predict_input()), final_key=final_key()),
    localrule: True


rule predict_posts:
    input:
        manifest=LAYOUT.final_manifest("{final_key}"),
        posts=lambda wc: ancient(PLAN.predict_input()),
    output:
        predictions=LAYOUT.predictions("{final_key}", "{input_digest}"),
        summary=LAYOUT.predictions_summary("{final_key}", "{input_digest}"),
    wildcard_constraints:
        input_digest="[0-9a-f]{12}",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.manifest),
    log:
        LAYOUT.log("predict_posts", "{final_key}-{input_digest}"),
    threads: workflow.cores
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/predict_posts.py"
