"""Snakemake adapter for rule prepare_data: build splits, folds and the data card."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    stages.prepare_data(cfg, data_key=smk.wildcards.data_key, out_dir=smk.params.data_dir)
