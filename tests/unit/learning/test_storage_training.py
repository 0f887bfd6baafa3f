"""The storage monitor inside a real training run on a small real filesystem (tmpfs):
critical space -> prune -> tighten -> a StorageError at the next save, losing nothing."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.training import CFG, SCORED, TINY, toy
from workflow_lib.config import Checkpoints, Storage
from workflow_lib.learning.epoch_states import StatePolicy
from workflow_lib.learning.training import train
from workflow_lib.persistence.storage import StorageError

MiB = 1 << 20


@pytest.fixture
def fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused ({(res.stderr or res.stdout).strip()})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _fill_to_free(path: Path, free_bytes: int) -> Path:
    import shutil

    filler = path / "filler.bin"
    total, _, free = shutil.disk_usage(path)
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - free_bytes))
    return filler


def test_monitor_prunes_tightens_then_stops_training_at_the_next_save_and_the_state_survives(fs, caplog):
    tr, va = toy(96, 0), toy(32, 1)
    state = fs / "results" / "state"
    disk = Storage.resolve(
        {"preflight": False, "monitor": True, "monitor_interval_s": 0.05, "critical_free_fraction": 0.10}
    )
    policy = StatePolicy(Checkpoints.resolve({"keep_last_n": 2, "keep_best_k": 1}), disk, str(fs / "results"))
    filler = _fill_to_free(fs, 34 * MiB)  # 13% free: not critical until the first state is written

    def slow(epoch, score):  # give the monitor time to see the disk after each save
        time.sleep(0.5)

    caplog.set_level(logging.INFO)
    with pytest.raises(StorageError) as err:
        train(TINY, CFG, tr, va, epochs=4, state_dir=str(state), state_policy=policy, on_epoch=slow, **SCORED)
    msgs = [r.getMessage() for r in caplog.records]
    order = [i for i, m in enumerate(msgs) if "policy tightened" in m]
    assert order, msgs[-20:]
    assert "free" in str(err.value) and "checkpoints.keep_last_n (now 2) -> 0" in str(err.value)
    # nothing finished is lost: the newest epoch's state is still there and a rerun resumes from it
    kept = sorted(p.name for p in state.iterdir() if p.name.startswith("epoch_"))
    assert kept, "the monitor pruned the state a resume needs"
    filler.unlink()
    caplog.clear()
    res = train(
        TINY,
        CFG,
        tr,
        va,
        epochs=4,
        state_dir=str(state),
        state_policy=StatePolicy(Checkpoints.resolve({}), disk, str(fs / "results")),
        **SCORED,
    )
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert any("resuming from" in r.getMessage() for r in caplog.records)
