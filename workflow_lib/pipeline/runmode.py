"""Run modes: the one module that reads ``run.mode``.

| mode                 | hpo                                                  | benchmark, selection, final |
|----------------------|------------------------------------------------------|-----------------------------|
| reuse_if_exists      | the newest variant of this study definition (a new   | Snakemake's up-to-date check |
|                      | variant when the definition is new); finished trials |                              |
|                      | and folds reused, an interrupted study continues     |                              |
| force_new            | a new variant v{n+1} beside the existing ones        | recomputed, with what depends on it |
| resume_if_incomplete | as reuse_if_exists: continue the newest variant      | as reuse_if_exists; interrupted training continues from its last valid checkpoint |

``benchmark: null`` inherits the HPO mode. The functions read the resolved ``run`` section
(``cfg.run``), whose defaults the schema fills. force_new for benchmark, selection or final works
through Snakemake's own up-to-date check: each of those rules has an input "force token"
file (results/.force/<stage>) that a force_new invocation touches, so the stage's jobs, and the
jobs depending on them, are older than an input and rerun - what ``--forcerun <rule>`` does. Interrupted jobs are rerun because the profiles set
``rerun-incomplete``; interrupted training resumes from its epoch checkpoints unless the stage's
mode is force_new.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from workflow_lib.config import Config, Run
from workflow_lib.persistence.paths import Layout

MODES = ("reuse_if_exists", "force_new", "resume_if_incomplete")
STAGES = ("hpo", "benchmark", "selection", "final")
FORCED_STAGES = ("benchmark", "selection", "final")  # hpo's force_new makes a new variant instead
RULE_OF_STAGE = {"benchmark": "benchmark", "selection": "select_model", "final": "final"}


def run_mode(run: Run, stage: str) -> str:
    """The mode of ``stage`` in the resolved ``run`` section (benchmark: null -> the hpo mode)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages with a run mode: {', '.join(STAGES)}")
    modes = run.mode
    return modes[stage] if modes[stage] is not None else modes["hpo"]


def study_variant(run: Run, found: Sequence[tuple[int, str]], study_key: str, *, main_process: bool = True) -> int:
    """The variant this invocation's study of one backbone works on, from what is on disk (never a clock).

    ``found``: (variant, study key) of the backbone's studies on disk. force_new: one above the
    highest variant. Otherwise the newest variant of this study key, or one above the highest when
    the study definition is new. A job process (not the main snakemake process) never creates a
    variant: it resolves to the newest variant of the key, which the main process has decided on.
    """
    highest = max((v for v, _ in found), default=0)
    mine = [v for v, k in found if k == study_key]
    if main_process and run_mode(run, "hpo") == "force_new":
        return highest + 1
    return mine[-1] if mine else highest + 1


def force_token(results_dir: str, stage: str) -> str:
    return Layout(results_dir).force_token(stage)


def prepare_force_tokens(cfg: Config, *, touch: bool) -> list[str]:
    """Make sure every stage's force token exists (a new one dated 1970, so it forces nothing);
    with ``touch`` (a real run of the main process) date the tokens of force_new stages now.
    Returns the stages forced."""
    forced = []
    for stage in FORCED_STAGES:
        path = Path(force_token(cfg.results_dir, stage))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("never forced\n")
            os.utime(path, (0, 0))
        if touch and run_mode(cfg.run, stage) == "force_new":
            # new content too: Snakemake ignores a newer input whose checksum it has seen before
            path.write_text(f"forced at {time.time_ns()} by pid {os.getpid()}\n")
            forced.append(stage)
    return forced


def forced_rules_hint(stage: str) -> str:
    """The Snakemake rule a stage's force_new redoes (what ``--forcerun`` would name)."""
    return RULE_OF_STAGE[stage]


def resumes_training(run: Run, stage: str) -> bool:
    """Whether interrupted training of ``stage`` continues from its checkpoints (not under force_new)."""
    return run_mode(run, stage) != "force_new"
