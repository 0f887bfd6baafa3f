# Predictions of the selected final model on a file of posts:
#   snakemake --profile profiles/local predict --config predict_input=PATH
# writes results/predictions/{final_key}/{input_digest}/predictions.jsonl (+ predictions.json, a summary).
# The folder is named by the model and by the sha256 of the input's content, so the job reruns only
# when either changes (the input is ancient(): touching it without changing it reruns nothing).
from workflow_lib.config.keys import input_digest
from workflow_lib.shipping.predict import rule_input


rule predict:
    input:
        # the selected final model's predictions on predict_input (checked first: without it the target
        # fails at once, before the selection checkpoint is waited for)
        lambda wc: L.predictions(
            input_digest=input_digest(rule_input(CFG)),
            final_key=PLAN.final_key(selection_report()["selected"]["trial_key"], co_best_keys()),
        ),
    localrule: True


rule predict_posts:
    input:
        manifest=L.final_manifest("{final_key}"),
        posts=lambda wc: ancient(rule_input(CFG)),
    output:
        predictions=L.predictions("{final_key}", "{input_digest}"),
        summary=L.predictions_summary("{final_key}", "{input_digest}"),
    wildcard_constraints:
        input_digest="[0-9a-f]{12}",
    params:
        model_dir=lambda wc, input: os.path.dirname(input.manifest),
    log:
        L.log("predict_posts", "{final_key}-{input_digest}"),
    threads: workflow.cores
    resources:
        gpu=PLAN.gpus_per_job,
    script:
        "../scripts/predict.py"
