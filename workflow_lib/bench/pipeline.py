"""Whole-pipeline benchmarks: wall time of a preset, and of a no-op rerun after it finished.

    python -m workflow_lib.bench pipeline [--preset smoke|main] [--workdir DIR]
    python -m workflow_lib.bench noop     [--preset smoke|main] [--workdir DIR]

Each runs real snakemake with profiles/local in a fresh folder (or --workdir) and prints the
measured time next to its target as a ratio (time / target; <= 1 meets it).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"smoke": 90.0, "main": 600.0}
NOOP_TARGET = 5.0


def snakemake(workdir: Path, preset: str, *extra: str) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--profile", str(REPO / "profiles" / "local")]
    if preset == "smoke":
        cmd += ["--configfile", str(REPO / "config" / "smoke.yaml")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + list(extra), capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
        raise SystemExit(f"{what} failed (exit {proc.returncode})")


def bench_pipeline(preset: str, workdir: Path) -> float:
    seconds, proc = snakemake(workdir, preset)
    _check(proc, f"{preset} pipeline")
    target = TARGETS[preset]
    print(f"{preset} pipeline wall time: {seconds:.1f} s  (target <= {target:.0f} s, ratio {seconds / target:.2f})")
    return seconds


def bench_noop(preset: str, workdir: Path) -> float:
    if not list((workdir / "results").glob("final/*/evaluation_report.json")):
        bench_pipeline(preset, workdir)
    dry_s, dry = snakemake(workdir, preset, "-n")
    _check(dry, "dry run")
    nothing = "Nothing to be done" in dry.stdout + dry.stderr
    run_s, run = snakemake(workdir, preset)
    _check(run, "no-op rerun")
    print(f"no-op dry run (-n): {dry_s:.2f} s, says nothing to do: {nothing}")
    print(f"no-op rerun: {run_s:.2f} s  (target <= {NOOP_TARGET:.0f} s, ratio {run_s / NOOP_TARGET:.2f})")
    return run_s


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m workflow_lib.bench pipeline|noop")
    ap.add_argument("what", choices=["pipeline", "noop"])
    ap.add_argument("--preset", choices=sorted(TARGETS), default="smoke")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a fresh temporary folder")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.preset}-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.what == "pipeline":
            bench_pipeline(args.preset, workdir)
        else:
            bench_noop(args.preset, workdir)
