"""Snakemake adapter for rule baseline: TF-IDF + logistic regression on the same folds."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    stages.baseline(cfg, data_dir=smk.params.data_dir, out=smk.output.baseline)
