"""Snakemake adapter for rule prepare_data: build splits, folds and the data card."""
from pathlib import Path

from workflow_lib import jobs, stages

cfg, _ = jobs.start(snakemake)  # noqa: F821 - injected by Snakemake
stages.prepare_data(cfg, data_key=snakemake.wildcards.data_key,  # noqa: F821
                    out_dir=str(Path(snakemake.output.card).parent))  # noqa: F821
