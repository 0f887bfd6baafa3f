"""Snakemake adapter for rule predict_posts: the selected final model on the posts file predict_input."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (_, threads):
    stages.predict_posts(
        model_dir=smk.params.model_dir,
        input_path=smk.input.posts,
        input_digest=smk.wildcards.input_digest,
        out=smk.output.predictions,
        summary_path=smk.output.summary,
        threads=threads,
    )
