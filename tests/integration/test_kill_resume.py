"""SIGKILL the whole snakemake process group during a fold, between folds, during refit and during final
training (one results folder, restarted in the background after each kill); the finished run reports
what an uninterrupted run reports, and MLflow holds every (run, metric, step) once."""

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
from snakerun import kill_group, run_snakemake, start_snakemake, wait_for

pytestmark = pytest.mark.integration
POLL = 0.05


def _unfinished_state(res: Path, pattern: str, result: str):
    """Epoch states (manifest written) of runs whose result file does not exist yet."""
    return [p for p in res.glob(pattern) if not (p.parents[2] / result).exists()]


def _folds_done(res: Path) -> int:
    return len(list(res.glob("hpo/*/*/v*/trials/*/fold_*/metrics.json")))


def _kill_when(workdir: Path, predicate, what: str, timeout: float = 240):
    proc = start_snakemake(workdir)
    try:
        found = wait_for(predicate, timeout, proc, interval=POLL)
    except AssertionError as exc:
        kill_group(proc)
        log = (workdir / "snakemake_bg.log").read_text()[-4000:]
        raise AssertionError(f"{what}: {exc}\n{log}") from None
    kill_group(proc)
    return found


def _comparable(report: dict) -> dict:
    return {
        "metrics": report["metrics"],
        "selected": report["selected"],
        "epochs": report["training"]["epochs"],
        "co_best": [{k: c[k] for k in ("trial_key", "metrics")} for c in report["co_best"]],
        "thresholds": report["thresholds"],
    }


def test_killed_at_every_stage_then_resumed_matches_an_uninterrupted_run(tmp_path, smoke_run):
    res = tmp_path / "results"
    t0 = time.perf_counter()
    # 1. during a fold: an epoch state exists, the fold has no metrics.json
    fold_states = _kill_when(
        tmp_path,
        lambda: _unfinished_state(res, "hpo/*/*/v*/trials/*/fold_*/state/epoch_*/manifest.json", "metrics.json"),
        "during a fold",
    )
    assert any(p.parent.is_dir() and not (p.parents[2] / "metrics.json").exists() for p in fold_states)
    # 2. between folds: right after the next fold's metrics.json appears
    n = _folds_done(res)
    _kill_when(tmp_path, lambda: _folds_done(res) > n, "between folds")
    finished = {p: p.stat().st_mtime_ns for p in res.glob("hpo/*/*/v*/trials/*/fold_*/metrics.json")}
    # 3. during refit, 4. during final training
    _kill_when(
        tmp_path, lambda: _unfinished_state(res, "refit/*/state/epoch_*/manifest.json", "metrics.json"), "during refit"
    )
    _kill_when(
        tmp_path,
        lambda: _unfinished_state(res, "final/*/state/epoch_*/manifest.json", "evaluation_report.json"),
        "during final training",
    )
    assert not list(res.glob("final/*/evaluation_report.json"))
    done = run_snakemake(tmp_path)
    assert done.returncode == 0, done.stderr[-6000:]
    print(f"kill/resume at four points and the final run: {time.perf_counter() - t0:.0f} s")

    # Snakemake empties a job's log file when it reruns the job, so read what every run printed
    printed = (tmp_path / "snakemake_bg.log").read_text() + (tmp_path / "snakemake_runs.log").read_text()
    for rule, pattern in (
        ("hpo_worker", r"trial \d+ fold \d+/\d+: resuming from"),
        ("refit", r"refit \S+: resuming from"),
        ("final", r"final \S+: resuming from"),
    ):
        assert re.search(pattern, printed), f"{rule} never resumed from a training state"
    assert not list(res.rglob("state")), "finished runs keep no training state"
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was retrained"

    (report_path,) = res.glob("final/*/evaluation_report.json")
    (ref_path,) = (smoke_run["dir"] / "results").glob("final/*/evaluation_report.json")
    report, ref = json.loads(report_path.read_text()), json.loads(ref_path.read_text())
    assert report_path.parent.name == ref_path.parent.name  # same final key
    assert json.dumps(_comparable(report), sort_keys=True) == json.dumps(_comparable(ref), sort_keys=True)
    assert report["training"]["resumed_from_epoch"] >= 1

    con = sqlite3.connect(res / "mlflow.db")
    dup = con.execute(
        "select run_uuid, key, step, count(*) from metrics group by run_uuid, key, step having count(*) > 1"
    ).fetchall()
    n_metrics = con.execute("select count(*) from metrics").fetchone()[0]
    epoch_steps = con.execute("select count(*) from metrics where key = 'train_loss'").fetchone()[0]
    con.close()
    assert n_metrics > 0 and epoch_steps > 0
    assert dup == [], f"(run, metric, step) logged more than once: {dup[:10]}"
