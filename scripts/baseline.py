"""Snakemake adapter for rule baseline: TF-IDF + logistic regression on the same folds."""
from pathlib import Path

from workflow_lib import jobs, stages

cfg, _ = jobs.start(snakemake)  # noqa: F821 - injected by Snakemake
stages.baseline(cfg, data_dir=str(Path(snakemake.input.posts).parent), out=snakemake.output[0])  # noqa: F821
