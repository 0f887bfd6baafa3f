"""Snakemake adapter for rule baseline: the TF-IDF + logistic regression baselines (post and sentence level)
on the same folds."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    stages.baseline(cfg, data_dir=smk.params.data_dir, out=smk.output.baseline, out_sentences=smk.output.sentences)
