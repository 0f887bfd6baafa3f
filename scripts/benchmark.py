"""Snakemake adapter for rule benchmark: inference latency and throughput of a refit checkpoint."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, threads):
    stages.benchmark(
        cfg,
        model_dir=smk.params.model_dir,
        trial_key=smk.params.trial_key,
        backbone=smk.params.backbone,
        data_dir=smk.params.data_dir,
        out=smk.output.benchmark,
        threads=threads,
    )
