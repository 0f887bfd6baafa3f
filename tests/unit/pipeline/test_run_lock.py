"""The workflow's run lock: a second run is refused; a SIGKILLed run leaves no stale lock."""

import os
import signal
import subprocess
import sys
import time

HOLD = "from workflow_lib.pipeline.jobs import acquire_run_lock; import time; acquire_run_lock('{p}'); print('held', flush=True); time.sleep(60)"
TRY = "from workflow_lib.pipeline.jobs import acquire_run_lock; acquire_run_lock('{p}'); print('got it')"


def test_second_run_refused_and_lock_gone_after_sigkill(tmp_path):
    lock = str(tmp_path / ".snakemake" / "pipeline.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(p=lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run([sys.executable, "-c", TRY.format(p=lock)], capture_output=True, text=True)
        assert second.returncode != 0
        assert "another snakemake run is active" in second.stderr and f"pid {holder.pid}" in second.stderr
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    time.sleep(0.1)
    third = subprocess.run([sys.executable, "-c", TRY.format(p=lock)], capture_output=True, text=True)
    assert third.returncode == 0, third.stderr
    assert "got it" in third.stdout
