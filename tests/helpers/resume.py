"""What the resume tests share (tests/unit/learning/test_resume.py, tests/integration/test_resume_kill.py):
the state policy of a run and the comparison of two runs' histories."""

from __future__ import annotations

from pathlib import Path

from workflow_lib.config import Checkpoints, Storage
from workflow_lib.learning.epoch_states import StatePolicy

NO_STORAGE = {"preflight": False, "monitor": False}


def policy(state_dir, storage=NO_STORAGE, **checkpoints) -> StatePolicy:
    """The state policy of a config with these checkpoints settings (and, unless given, no storage checks)."""
    return StatePolicy(
        Checkpoints.resolve(checkpoints), Storage.resolve(storage), results_dir=str(Path(state_dir).parent)
    )


def without_timings(history: list[dict]) -> list[dict]:
    """A run's epoch history without its timings (what two runs of the same training share)."""
    return [{k: v for k, v in e.items() if "seconds" not in k} for e in history]
