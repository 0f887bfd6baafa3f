"""Whole-pipeline benchmarks: wall time of a preset, and of a no-op rerun after it finished.

    python -m devbench pipeline [--preset smoke|main] [--workdir DIR]
    python -m devbench noop     [--preset smoke|main] [--workdir DIR]
    python -m devbench workers  [--trials 6]

``workers`` runs one study (micro preset: tiny BERT, 2 folds) with hpo.n_workers 1 and then 2
on the same cores, each in a fresh folder, and prints the speed-up of 2 workers over 1.

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

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"smoke": 90.0, "main": 600.0}
NOOP_TARGET = 5.0


def snakemake(
    workdir: Path, preset: str, *extra: str, configfiles: tuple = ()
) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / "local"),
    ]
    files = ([str(REPO / "config" / "smoke.yaml")] if preset == "smoke" else []) + [str(f) for f in configfiles]
    if files:
        cmd += ["--configfile", *files]
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


def bench_workers(trials: int, cores: int = 2, backbone: str = "tiny-a") -> float:
    """Wall time of the HPO stage (up to the study summary) with 1 and with 2 workers; returns the speed-up.

    tiny-a trials take ~2 s, so per-process start-up (~8 s: imports, model build) dominates;
    ``minilm-l6`` trials (MiniLM, lowest 4 layers frozen) are closer to a real study."""
    import yaml

    micro = REPO / "tests" / "integration" / "micro.yaml"
    seconds = {}
    for n in (1, 2):
        with tempfile.TemporaryDirectory(prefix=f"bench-workers{n}-") as tmp:
            over = Path(tmp) / "workers.yaml"
            # trials big enough (240 posts, 3 epochs) that start-up does not hide the training
            training = {"epochs": 3} if backbone == "tiny-a" else {"epochs": 2, "freeze_layers": 4}
            over.write_text(
                yaml.safe_dump(
                    {
                        "data": {"embedded": {"n_posts": 240}},
                        "training": training,
                        "backbones": [backbone],
                        "hpo": {
                            "n_workers": n,
                            "n_trials": trials,
                            "search_space": {
                                "head": None,
                                "learning_rate": {"type": "float", "low": 5e-4, "high": 3e-3},
                            },
                        },
                    }
                )
            )
            # prepare the data first, so both timings cover the study only
            _check(
                snakemake(
                    Path(tmp), "micro", "--cores", str(cores), "--until", "prepare_data", configfiles=(micro, over)
                )[1],
                "data preparation",
            )
            seconds[n], proc = snakemake(
                Path(tmp), "micro", "--cores", str(cores), "--until", "hpo_summary", configfiles=(micro, over)
            )
            _check(proc, f"study with {n} worker(s)")
    speedup = seconds[1] / seconds[2]
    print(
        f"{backbone}: study of {trials} trials x 2 folds on {cores} cores: 1 worker {seconds[1]:.1f} s, 2 workers "
        f"{seconds[2]:.1f} s; speed-up {speedup:.2f}x"
    )
    return speedup


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m devbench pipeline|noop|workers")
    ap.add_argument("what", choices=["pipeline", "noop", "workers"])
    ap.add_argument("--trials", type=int, default=6, help="workers: trials in the study")
    ap.add_argument("--backbone", choices=["tiny-a", "minilm-l6"], default="tiny-a", help="workers: the encoder")
    ap.add_argument("--preset", choices=sorted(TARGETS), default="smoke")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a fresh temporary folder")
    args = ap.parse_args(argv)
    if args.what == "workers":
        bench_workers(args.trials, backbone=args.backbone)
        return
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.preset}-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.what == "pipeline":
            bench_pipeline(args.preset, workdir)
        else:
            bench_noop(args.preset, workdir)
