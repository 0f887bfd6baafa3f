"""Snakemake adapter for checkpoint select_model: pick the best candidate, write the report and HTML."""

from workflow_lib.pipeline import jobs, stages

smk = snakemake
with jobs.job(smk) as (cfg, _):
    stages.selection(
        cfg,
        summaries=list(smk.input.summaries),
        benchmarks=dict(smk.params.benchmarks),
        baseline_paths=list(smk.input.get("baselines", [])),
        data_card_path=smk.input.data_card,
        selection_key=smk.wildcards.selection_key,
        out_json=smk.output.report,
        out_html=smk.output.html,
        plots_dir=smk.output.plots,
        evaluation_html_pattern=smk.params.evaluation_html_pattern,
    )
