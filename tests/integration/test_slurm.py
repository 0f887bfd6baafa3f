"""profiles/slurm for real: the smoke pipeline through sbatch on a single-node SLURM cluster on this machine.

The profile run is profiles/slurm/config.yaml with slurm_test_profile/config.yaml merged over it
(snakemake takes one --profile). Every job must be a SLURM job the controller completed, and the
final evaluation report must equal the local smoke run's (same seed, same torch threads per job).
"""

import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import slurm_cluster
import yaml
from snakerun import REPO, env

pytestmark = pytest.mark.integration
TIMEOUT_S = 900  # hard limit of the snakemake run; `timeout -k`: snakemake and the plugin can ignore SIGTERM
RULES = {"prepare_data", "baseline", "hpo_worker", "hpo_summary", "refit", "benchmark", "select_model", "final"}
VOLATILE = {"created_at", "seconds", "path"}  # timings and paths differ between runs


def merge(base: dict, over: dict) -> dict:
    """``over`` merged key by key into ``base``; a null in ``over`` deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _stable(obj):
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    return [_stable(v) for v in obj] if isinstance(obj, list) else obj


def _one(paths):
    paths = sorted(paths)
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="session")
def slurm():
    """The running test cluster (skipped with the reason when this machine cannot run one)."""
    t0 = time.perf_counter()
    try:
        slurm_cluster.start()
    except slurm_cluster.Unavailable as exc:
        pytest.skip(f"no local SLURM cluster: {exc}")
    try:
        yield {"start_seconds": time.perf_counter() - t0}
    finally:
        slurm_cluster.stop()


def test_smoke_pipeline_through_slurm_matches_local_run(slurm, smoke_run, tmp_path):
    profile = merge(
        yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text()),
        yaml.safe_load((Path(__file__).parent / "slurm_test_profile" / "config.yaml").read_text()),
    )
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    work = tmp_path / "work"
    cmd = [
        "timeout",
        "-k",
        "10",
        str(TIMEOUT_S),
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(work),
        "--profile",
        str(tmp_path / "profile"),
        "--configfile",
        str(REPO / "config" / "smoke.yaml"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env())
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    (tmp_path / "snakemake.log").write_text(out)
    assert proc.returncode not in (124, 137, -9), f"snakemake on SLURM timed out after {TIMEOUT_S} s:\n{out[-4000:]}"
    done = slurm_cluster.completed_jobs()
    failed = [p for p in work.glob(".snakemake/slurm_logs/**/*.log") if done.get(p.stem) != "COMPLETED"]
    assert proc.returncode == 0, out[-4000:] + "".join(f"\n--- SLURM log {p}:\n{p.read_text()[-1500:]}" for p in failed)

    # every job went through sbatch and the controller completed it
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", out))
    assert submitted and all(done.get(j) == "COMPLETED" for j in submitted.values()), (submitted, done)
    local_rules = set(re.findall(r"^localrule (\w+):", out, re.M))
    assert local_rules <= {"all"}, f"jobs ran on the submit host, not through sbatch: {local_rules}"
    slurm_logs = {
        p.stem: p.relative_to(work / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        for p in (work / ".snakemake" / "slurm_logs").rglob("*.log")
    }
    assert sorted(slurm_logs) == sorted(submitted.values()), "a SLURM log per submitted job, named by its job id"
    assert set(slurm_logs.values()) == RULES
    job_logs = list((work / "results" / "logs").rglob("*.log"))
    assert len(job_logs) == len(submitted), "every job that wrote a log was a SLURM job"
    for log in job_logs:  # the thread count the comparison below relies on
        threads = int(re.search(r"rule \w+, wildcards .*, (\d+) thread", log.read_text()).group(1))
        assert threads == {"final": 2}.get(log.parent.name, 1), (log, threads)

    # the same final evaluation report as the local run, and bit-identical final weights
    reports = [_one(d.glob("results/final/*/evaluation_report.json")) for d in (smoke_run["dir"], work)]
    local, remote = (json.loads(p.read_text()) for p in reports)
    assert _stable(remote) == _stable(local)
    weights = [
        json.loads((p.parent / "model" / "manifest.json").read_text())["files"]["model.safetensors"] for p in reports
    ]
    assert weights[0] == weights[1]

    stamps = [
        {k: datetime.fromisoformat(v).timestamp() for k, v in t.items()}
        for t in slurm_cluster.completed_jobs(times=True).values()
    ]
    timings = {
        "cluster_start_s": round(slurm["start_seconds"], 1),
        "local_smoke_s": round(smoke_run["seconds"], 1),
        "slurm_smoke_s": round(seconds, 1),
        "slurm_jobs": len(submitted),
        "mean_job_s": round(sum(t["EndTime"] - t["StartTime"] for t in stamps) / len(stamps), 1),
        "mean_queue_s": round(sum(t["StartTime"] - t["SubmitTime"] for t in stamps) / len(stamps), 1),
    }
    (slurm_cluster.ROOT / "timings.json").write_text(json.dumps(timings) + "\n")
    print(f"\nSLURM profile test timings: {timings}")
