"""Snakemake adapter for rule refit: the best trial on the full train split, early-stopped on validation."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, threads):
    stages.refit(
        cfg,
        summary_path=smk.input.summary,
        trial_key=smk.params.trial_key,
        data_dir=smk.params.data_dir,
        model_dir=smk.params.model_dir,
        metrics_path=smk.output.metrics,
        fold_metrics=list(smk.input.folds),
        threads=threads,
    )
