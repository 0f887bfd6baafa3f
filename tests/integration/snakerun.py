"""Running real snakemake on the smoke preset in a temporary folder (used by the integration tests)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake_cmd(workdir: Path, *extra: str, preset: str | list = "smoke.yaml") -> list[str]:
    """preset: a file name in config/, or paths (several config files, merged in order)."""
    files = [
        str(REPO / "config" / p) if "/" not in str(p) else str(p)
        for p in ([preset] if isinstance(preset, (str, Path)) else preset)
    ]
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / "local"),
        "--configfile",
        *files,
        "--cores",
        "2",
        *extra,
    ]


def env() -> dict:
    e = dict(os.environ)
    e.pop("MLFLOW_TRACKING_URI", None)
    e.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return e


def run_snakemake(
    workdir: Path, *extra: str, timeout: float = 600, preset: str | list = "smoke.yaml"
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        snakemake_cmd(workdir, *extra, preset=preset), capture_output=True, text=True, timeout=timeout, env=env()
    )
    (workdir / "snakemake_runs.log").open("a").write(
        f"\n==== {' '.join(extra)} rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}\n"
    )
    return proc


def start_snakemake(workdir: Path, *extra: str, preset: str | list = "smoke.yaml") -> subprocess.Popen:
    log = open(workdir / "snakemake_bg.log", "a")
    return subprocess.Popen(
        snakemake_cmd(workdir, *extra, preset=preset),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env(),
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL snakemake and every job it started (its whole process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake exited (rc={proc.returncode}) before the condition was met")
        time.sleep(interval)
    raise AssertionError("timed out waiting for condition")
