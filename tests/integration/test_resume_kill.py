"""Epoch-level resume after a real SIGKILL: a training process killed after its epoch-2 state resumes from
it to the result of an uninterrupted run (the other resume tests: tests/unit/learning/test_resume.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.resume import without_timings

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from tests.helpers.resume import policy
from tests.helpers.training import CFG, SCORED, TINY, toy
from workflow_lib.learning.training import train
state = sys.argv[1] if sys.argv[1] != "-" else None
res = train(TINY, CFG, toy(160, 0), toy(48, 1), epochs=5, state_dir=state,
            state_policy=policy(state) if state else None, on_epoch=lambda e, s: __import__("time").sleep(0.3),
            **SCORED)
json.dump({"history": res.history, "best_epoch": res.best_epoch, "val_probs": res.val_probs.tolist(),
           "resumed_from": res.resumed_from}, open(sys.argv[2], "w"))
"""


def _child(tmp_path, state, out):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), state, str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.integration  # SIGKILLs real training processes: about 60 s
def test_sigkilled_process_resumes_to_the_uninterrupted_result(tmp_path):
    state = tmp_path / "state"
    victim = _child(tmp_path, str(state), tmp_path / "killed.json")
    deadline = time.monotonic() + 300
    while not (state / "epoch_2" / "manifest.json").is_file():
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL and not (tmp_path / "killed.json").exists()
    resumed, plain = (
        _child(tmp_path, str(state), tmp_path / "resumed.json"),
        _child(tmp_path, "-", tmp_path / "plain.json"),
    )
    for p in (resumed, plain):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "resumed"))
    assert b["resumed_from"] >= 2 and a["resumed_from"] == 0
    assert without_timings(a["history"]) == without_timings(b["history"]) and a["best_epoch"] == b["best_epoch"]
    np.testing.assert_allclose(a["val_probs"], b["val_probs"], atol=1e-6)
