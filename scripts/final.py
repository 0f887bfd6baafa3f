"""Snakemake adapter for rule final: train on train+validation, evaluate once on test."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, threads):
    stages.final(
        cfg,
        selection_path=smk.input.selection,
        summary_path=smk.input.summary,
        refit_metrics_path=smk.input.refit,
        data_dir=smk.params.data_dir,
        final_key=smk.wildcards.final_key,
        model_dir=smk.params.model_dir,
        model_card_path=smk.output.model_card,
        test_predictions_path=smk.output.test_predictions,
        evaluation_html=smk.output.html,
        plots_dir=smk.output.plots,
        report_path=smk.output.report,
        selection_html=smk.params.selection_html,
        co_best_refits=smk.params.co_best,
        threads=threads,
    )
