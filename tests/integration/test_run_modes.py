"""Run modes and parallel HPO workers through real snakemake runs (micro preset: one tiny BERT)."""

import json
import time
from pathlib import Path

import pytest
import yaml
from snakerun import REPO, kill_group, run_snakemake, start_snakemake, wait_for

pytestmark = pytest.mark.integration
MICRO = REPO / "tests" / "integration" / "micro.yaml"
N_FOLDS = 2


def _load(p):
    return json.loads(Path(p).read_text())


def _overlay(tmp: Path, name: str, cfg: dict) -> list:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    return [str(MICRO), str(path)]


def _mtimes(res: Path, pattern: str) -> dict:
    return {p: p.stat().st_mtime_ns for p in res.glob(pattern)}


def _ok(proc):
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


def test_reuse_force_new_variants_warm_start_and_forcerun(tmp_path):
    res = tmp_path / "results"
    _ok(run_snakemake(tmp_path, preset=[str(MICRO)]))
    assert [p.name for p in res.glob("hpo/tiny-a/*/v*")] == ["v1"]

    # reuse_if_exists (default): nothing reruns, no file is touched
    before = _mtimes(res, "**/*.json")
    again = _ok(run_snakemake(tmp_path, preset=[str(MICRO)]))
    assert "Nothing to be done" in again.stdout + again.stderr
    assert _mtimes(res, "**/*.json") == before

    # force_new three times in all: v2 and v3 beside v1, each warm-started from the folds on disk
    force = _overlay(tmp_path, "force.yaml", {"run": {"mode": {"hpo": "force_new"}}})
    for n in (2, 3):
        _ok(run_snakemake(tmp_path, preset=force))
        variants = sorted(p.name for p in res.glob("hpo/tiny-a/*/v*"))
        assert variants == [f"v{i}" for i in range(1, n + 1)]
        summary = _load(next(res.glob(f"hpo/tiny-a/*/v{n}/study_summary.json")))
        assert summary["variant"] == n
        assert summary["counts"]["complete"] == 2
        # the one configuration of the space was trained by v1: every fold of v{n} came from disk
        assert summary["warm_start"] == {"trials": 1, "folds": N_FOLDS}
        assert sum(t["reused_folds"] for t in summary["trials"]) == 2 * N_FOLDS
        logs = "".join(p.read_text() for p in res.glob(f"logs/hpo_worker/*-v{n}-*.log"))
        assert "warm start from" in logs and "epoch 1/1" not in logs  # nothing trained
    for n in (1, 2, 3):  # earlier variants are kept
        assert next(res.glob(f"hpo/tiny-a/*/v{n}/study_summary.json")).exists()

    reports = sorted(res.glob("selection/*/selection_report.json"), key=lambda p: p.stat().st_mtime)
    latest = _load(reports[-1])
    assert [(v["variant"], v["compared"]) for v in latest["variants"]] == [(3, True), (1, True), (2, True)]
    assert sorted(c["variant"] for c in latest["candidates"]) == [1, 2, 3]

    # --forcerun of one stage redoes that stage and what depends on it (benchmarks carry new timings, so
    # the selection and the final model follow), nothing upstream
    up = _mtimes(res, "hpo/**/*.json") | _mtimes(res, "refit/**/*.json")
    final_report = max(res.glob("final/*/evaluation_report.json"), key=lambda p: p.stat().st_mtime_ns)
    down = {p: p.stat().st_mtime_ns for p in (reports[-1], final_report, *res.glob("benchmark/*/benchmark.json"))}
    time.sleep(1.1)
    _ok(run_snakemake(tmp_path, "--forcerun", "benchmark", preset=[str(MICRO)]))
    assert _mtimes(res, "hpo/**/*.json") | _mtimes(res, "refit/**/*.json") == up
    for p, m in down.items():
        assert p.stat().st_mtime_ns > m, f"{p} was not redone"

    # run.mode.final: force_new redoes the final stage only (through its force token)
    final_only = _overlay(tmp_path, "final.yaml", {"run": {"mode": {"final": "force_new"}}})
    before_sel = _mtimes(res, "selection/**/*.json")
    before_final = _mtimes(res, "final/*/evaluation_report.json")
    time.sleep(1.1)
    out = _ok(run_snakemake(tmp_path, preset=final_only))
    assert _mtimes(res, "selection/**/*.json") == before_sel
    assert [p for p, m in _mtimes(res, "final/*/evaluation_report.json").items() if m > before_final.get(p, 0)]
    assert sorted(p.name for p in res.glob("hpo/tiny-a/*/v*")) == ["v1", "v2", "v3"]  # no new variant
    assert "hpo_worker" not in out.stdout + out.stderr.split("Job stats")[0]


def test_sigkill_during_parallel_workers_then_rerun_finishes_with_exactly_n_trials(tmp_path):
    res = tmp_path / "results"
    n_trials = 4
    cfg = _overlay(
        tmp_path,
        "workers.yaml",
        {
            "hpo": {
                "n_workers": 2,
                "n_trials": n_trials,
                "heartbeat_s": 2,
                "search_space": {"head": None, "learning_rate": {"type": "float", "low": 5e-4, "high": 3e-3}},
            }
        },
    )
    until = ("--until", "hpo_summary")  # the study is what this test is about
    proc = start_snakemake(tmp_path, *until, preset=cfg)
    try:
        wait_for(lambda: list(res.glob("hpo/*/*/v1/trials/*/fold_*/metrics.json")), 300, proc)
        time.sleep(0.5)
    finally:
        kill_group(proc)
    assert not list(res.glob("hpo/*/*/v1/study_summary.json"))
    _ok(run_snakemake(tmp_path, *until, preset=cfg))
    summary = _load(next(res.glob("hpo/tiny-a/*/v1/study_summary.json")))
    states = [t["state"] for t in summary["trials"]]
    assert states.count("COMPLETE") + states.count("PRUNED") == n_trials, states
    assert "RUNNING" not in states and "WAITING" not in states
    done = [t["trial_key"] for t in summary["trials"] if t["state"] == "COMPLETE"]
    assert len(set(done)) == len(done), done  # no configuration proposed twice
    workers = {p.stem for p in res.glob("hpo/tiny-a/*/v1/workers/*.done")}
    assert workers == {"0", "1"}
    logs = [p.read_text() for p in res.glob("logs/hpo_worker/*.log")]
    assert len(logs) == 2 and all("trial" in text for text in logs)
    # every finished trial has all its folds on disk, each trained once (one metrics file per fold)
    for t in summary["trials"]:
        if t["state"] == "COMPLETE":
            assert all(
                (
                    res
                    / "hpo"
                    / "tiny-a"
                    / summary["study_key"]
                    / "v1"
                    / "trials"
                    / t["trial_key"]
                    / f"fold_{k}"
                    / "metrics.json"
                ).exists()
                for k in range(N_FOLDS)
            )
