"""Run modes: the one function that reads ``run.mode``.

| mode                 | meaning                                           |
|----------------------|---------------------------------------------------|
| reuse_if_exists      | finished outputs are reused (Snakemake up-to-date) |
| force_new            | HPO: a new study variant v{n+1}; others: recompute |
| resume_if_incomplete | interrupted work continues from what is on disk   |

``benchmark: null`` inherits the HPO mode.
"""
from __future__ import annotations

from typing import Mapping

from workflow_lib.paths import existing_variants

MODES = ("reuse_if_exists", "force_new", "resume_if_incomplete")
DEFAULT_MODE = "reuse_if_exists"
STAGES = ("hpo", "benchmark", "selection", "final")


def run_mode(cfg: Mapping, stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages with a run mode: {', '.join(STAGES)}")
    modes = (cfg.get("run") or {}).get("mode") or {}
    mode = modes.get(stage)
    if mode is None and stage == "benchmark":
        mode = modes.get("hpo")
    return mode or DEFAULT_MODE


def study_variant(cfg: Mapping, study_root: str) -> int:
    """The variant number this invocation works on, scanned from disk (never a clock).

    reuse_if_exists / resume_if_incomplete: the newest existing variant (v1 if none);
    force_new: one above the newest.
    """
    found = existing_variants(study_root)
    newest = found[-1] if found else 0
    if run_mode(cfg, "hpo") == "force_new":
        return newest + 1
    return newest or 1
