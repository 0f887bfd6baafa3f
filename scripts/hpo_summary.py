"""Snakemake adapter for checkpoint hpo_summary: write study_summary.json from the study storage."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    wc = smk.wildcards
    stages.hpo_summary(
        cfg,
        backbone=wc.backbone,
        study_key=wc.study_key,
        variant=int(wc.variant),
        data_key=smk.params.data_key,
        out=smk.output.summary,
    )
