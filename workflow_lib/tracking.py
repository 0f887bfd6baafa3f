"""MLflow tracking: the one place that sets it up, names runs and spells tag keys.

Runs nest study -> trial -> fold (parent tags); refit, benchmark, selection and
final runs carry lineage tags. Stage code never calls mlflow: it uses ``Tracker``.

How it works: a job never talks to MLflow itself. ``Tracker`` appends each
tracking event (start, params, metrics, tags, artifact, end) to a JSONL spool
file under ``<results>/.tracking/spool/`` and a replayer process
(``python -m workflow_lib.tracking_replay``) started beside the job applies the
events to the tracking store. So the job never waits for MLflow (its import,
a locked SQLite file or a slow server), and nothing is lost when the store is
unreachable: the spool stays on disk and the next job's replayer applies it.
A run is found again by its identifying tags, so a job re-run after an
interruption logs into the run it started instead of creating a second one.

The default store is ``sqlite:///<results_dir>/mlflow.db``; SQLite allows one
writer at a time, so every store call retries with backoff on "database is
locked", and the store's first creation happens under a file lock. For many
parallel workers (a cluster), point ``tracking.uri`` at an ``mlflow server``.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from workflow_lib.provenance import code_version

log = logging.getLogger(__name__)

TAG_PREFIX = "pipeline."
# Identifying keys a run can carry; lineage tags are these, prefixed.
ID_KEYS = ("stage", "backbone", "data_key", "study_key", "variant", "trial_key", "trial_number", "fold",
           "selection_key", "final_key", "worker")
PARENT_TAG = "mlflow.parentRunId"
CLOSE_TIMEOUT_S = 300


def tag(key: str) -> str:
    if key not in ID_KEYS and key != "code_version":
        raise KeyError(f"unknown tracking tag {key!r}; known: {ID_KEYS}")
    return TAG_PREFIX + key


def tracking_uri(cfg: Mapping) -> str:
    """config tracking.uri, else $MLFLOW_TRACKING_URI, else sqlite:///<abs results_dir>/mlflow.db"""
    uri = cfg["tracking"].get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str(Path(cfg["results_dir"]).resolve() / "mlflow.db")


def spool_dir(cfg: Mapping) -> Path:
    return Path(cfg["results_dir"]).resolve() / ".tracking" / "spool"


def run_name(stage: str, ids: Mapping[str, Any]) -> str:
    """Readable, stable run names: 'study tiny-a 3f2a.. v1', 'trial 4 9c1e..', 'fold 2', 'refit tiny-a 9c1e..'."""
    if stage == "study":
        return f"study {ids.get('backbone')} {ids.get('study_key')} v{ids.get('variant')}"
    if stage == "trial":
        return f"trial {ids.get('trial_number')} {ids.get('trial_key')}"
    if stage == "fold":
        return f"fold {ids.get('fold')}"
    if stage in ("refit", "benchmark"):
        return f"{stage} {ids.get('backbone')} {ids.get('trial_key')}"
    if stage == "selection":
        return f"selection {ids.get('selection_key')}"
    if stage == "final":
        return f"final {ids.get('backbone')} {ids.get('final_key')}"
    return f"{stage} " + " ".join(f"{k}={v}" for k, v in sorted(ids.items()))


def run_tags(stage: str, ids: Mapping[str, str]) -> dict[str, str]:
    """The identifying tags of a run (what finds it again)."""
    tags = {tag(k): str(v) for k, v in ids.items()}
    tags[tag("stage")] = stage
    return tags


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class RunRef:
    """A run as the job knows it: stage + identifying ids (the replayer maps it to an MLflow run id)."""

    def __init__(self, stage: str, ids: Mapping[str, Any]):
        self.stage = stage
        self.ids = {k: str(v) for k, v in ids.items() if v is not None}
        for k in self.ids:
            tag(k)  # unknown keys fail here, in the job, not later in the replayer

    def ref(self) -> dict:
        return {"stage": self.stage, "ids": self.ids}


class Tracker:
    """Records tracking events for one job; a background replayer applies them to MLflow."""

    def __init__(self, cfg: Mapping, *, start_replayer: bool = True):
        self.enabled = bool(cfg["tracking"]["enabled"])
        self.uri = tracking_uri(cfg)
        self.experiment_name = cfg["tracking"]["experiment"]
        self.artifact_root = str(Path(cfg["results_dir"]).resolve() / "mlartifacts")
        self._client = None
        self._proc: subprocess.Popen | None = None
        self._fh = None
        self.spool: Path | None = None
        if not self.enabled:
            return
        d = spool_dir(cfg)
        d.mkdir(parents=True, exist_ok=True)
        self.spool = d / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fh = open(self.spool, "a", encoding="utf-8")
        if start_replayer:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "workflow_lib.tracking_replay", "--uri", self.uri,
                 "--experiment", self.experiment_name, "--artifact-root", self.artifact_root,
                 "--parent-pid", str(os.getpid()), str(self.spool)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        atexit.register(self.close)

    # -- events -----------------------------------------------------------------
    def _emit(self, op: str, **fields) -> None:
        if self._fh is None:
            return
        event = {"op": op, "time_ms": int(time.time() * 1000), **fields}
        self._fh.write(json.dumps(event, default=str) + "\n")
        self._fh.flush()

    def start(self, stage: str, ids: Mapping[str, Any], *, parent: RunRef | None = None,
              params: Mapping | None = None) -> RunRef:
        """Open (find again, or create) the run with these identifying tags."""
        run = RunRef(stage, ids)
        self._emit("start", run=run.ref(), name=run_name(stage, run.ids), parent=parent.ref() if parent else None,
                   code_version=code_version())
        if params:
            self.log_params(run, params)
        return run

    def log_params(self, run: RunRef, params: Mapping[str, Any]) -> None:
        self._emit("params", run=run.ref(), params={k: str(v)[:6000] for k, v in flatten(params).items()})

    def log_metrics(self, run: RunRef, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = {k: float(v) for k, v in flatten(metrics).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
        if values:
            self._emit("metrics", run=run.ref(), metrics=values, step=int(step or 0))

    def set_tags(self, run: RunRef, tags: Mapping[str, Any]) -> None:
        self._emit("tags", run=run.ref(), tags={k: str(v) for k, v in tags.items()})

    def log_artifact(self, run: RunRef, path: str) -> None:
        self._emit("artifact", run=run.ref(), path=str(Path(path).resolve()))

    def end(self, run: RunRef, status: str = "FINISHED") -> None:
        self._emit("end", run=run.ref(), status=status)

    @contextlib.contextmanager
    def run(self, stage: str, ids: Mapping[str, Any], *, parent: RunRef | None = None,
            params: Mapping | None = None) -> Iterator[RunRef]:
        """Context manager: FINISHED on success, KILLED on TrialPruned/KeyboardInterrupt, FAILED otherwise."""
        r = self.start(stage, ids, parent=parent, params=params)
        try:
            yield r
        except BaseException as exc:
            self.end(r, "KILLED" if type(exc).__name__ in ("TrialPruned", "KeyboardInterrupt") else "FAILED")
            raise
        else:
            self.end(r, "FINISHED")

    # -- lifecycle ----------------------------------------------------------------
    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Mark the spool complete and wait for the replayer to apply it. True if all was applied."""
        if self._fh is None:
            return True
        self._emit("close")
        self._fh.close()
        self._fh = None
        if self._proc is None:
            return False
        try:
            _, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("MLflow tracking did not finish within %.0fs; the events stay in %s and the next job "
                        "replays them", timeout, self.spool)
            return False
        if self._proc.returncode != 0:
            log.warning("MLflow tracking replay failed (exit %s); events kept in %s for the next job:\n%s",
                        self._proc.returncode, self.spool, (err or "")[-2000:])
            return False
        return True

    @property
    def client(self):
        """An MLflow client on the same store, for reading runs back (tests, tools)."""
        if self._client is None:
            from workflow_lib.tracking_replay import Replayer

            self._client = Replayer(self.uri, self.experiment_name, self.artifact_root).client
        return self._client

    def find_run(self, stage: str, ids: Mapping[str, Any]):
        from workflow_lib.tracking_replay import Replayer

        rep = Replayer(self.uri, self.experiment_name, self.artifact_root)
        return rep.find_run(run_tags(stage, {k: str(v) for k, v in ids.items()}))
