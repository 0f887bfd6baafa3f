"""Snakemake adapter for rule hpo_worker: run this worker's share of the Optuna study."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, threads):
    wc = smk.wildcards
    stages.hpo_worker(
        cfg,
        backbone=wc.backbone,
        study_key=wc.study_key,
        variant=int(wc.variant),
        worker=wc.worker,
        data_key=smk.params.data_key,
        data_dir=smk.params.data_dir,
        out=smk.output.done,
        threads=threads,
    )
