"""Snakemake adapter for rule benchmark: inference latency and throughput of a refit checkpoint."""
from workflow_lib import jobs, stages

smk = snakemake  # noqa: F821 - injected by Snakemake
cfg, threads = jobs.start(smk)
stages.benchmark(cfg, model_dir=smk.params.model_dir, trial_key=smk.wildcards.trial_key,
                 backbone=smk.params.backbone, out=smk.output[0], threads=threads)
