"""Devices: how many GPUs this machine has, which one a job uses, how many CPU threads torch runs on, and
what reports record.

Training rules declare ``resources: gpu=1`` when the machine has GPUs (0 otherwise) and the
Snakefile registers the machine's GPU count as the global ``gpu`` resource, so Snakemake never
runs more GPU jobs at once than there are GPUs. Snakemake does not say *which* GPU a job gets:
``claim_gpu`` takes the first free one under a per-GPU file lock (held for the job's life) and
sets CUDA_VISIBLE_DEVICES. Under SLURM the scheduler has already set CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from workflow_lib.persistence.locks import hold

_HELD: list = []


@lru_cache(maxsize=1)
def gpu_count() -> int:
    """GPUs visible to this process, without importing torch (CUDA_VISIBLE_DEVICES, else nvidia-smi -L)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def claim_gpu(lock_dir: str = ".snakemake/gpu_locks") -> int | None:
    """Pin this job to one free GPU (CUDA_VISIBLE_DEVICES); None without GPUs or when SLURM assigned one."""
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    n = gpu_count()
    if n == 0:
        return None
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(n)))).split(",")]

    for i, dev in enumerate(visible):
        fh = hold(Path(lock_dir) / f"{dev}.lock")
        if fh is None:  # another job has this GPU
            continue
        _HELD.append(fh)  # released when the process ends
        os.environ["CUDA_VISIBLE_DEVICES"] = dev
        return i
    raise RuntimeError(
        f"all {len(visible)} GPU(s) are in use by other jobs ({lock_dir}); Snakemake's gpu resource "
        f"should prevent this - run with --resources gpu={len(visible)} or fewer parallel jobs"
    )


def configure_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n`` (None: leave as is); return the number in force."""
    import torch

    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()


def describe(device=None) -> dict:
    """What a report records about where it ran: device type and name, torch threads."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = {"type": dev.type, "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        out["name"] = torch.cuda.get_device_name(dev)
        out["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return out
