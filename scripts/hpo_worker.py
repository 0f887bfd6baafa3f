"""Snakemake adapter for rule hpo_worker: run this worker's share of the Optuna study."""

from workflow_lib.persistence.reports import write_json
from workflow_lib.pipeline import jobs
from workflow_lib.search.hpo import run_worker

smk = snakemake
with jobs.job(smk) as (cfg, threads):
    wc = smk.wildcards
    result = run_worker(
        cfg,
        backbone=wc.backbone,
        study_key=wc.study_key,
        variant=int(wc.variant),
        worker=wc.worker,
        data_key=smk.params.data_key,
        data_dir=smk.params.data_dir,
        threads=threads,
    )
    write_json(smk.output[0], result)
