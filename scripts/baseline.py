"""Snakemake adapter for rule baseline: TF-IDF + logistic regression on the same folds."""

from pathlib import Path

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    stages.baseline(cfg, data_dir=str(Path(smk.input.posts).parent), out=smk.output[0])
