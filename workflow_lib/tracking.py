"""MLflow tracking: the one place that sets it up, names runs and spells tag keys.

Runs nest study -> trial -> fold (parent tags); refit, benchmark, selection and
final runs carry lineage tags. Stage code never calls mlflow directly: it uses
``Tracker``. A run is found again by its identifying tags, so a job that is
re-run after an interruption logs into the run it started instead of
creating a second one.

The default store is ``sqlite:///<results_dir>/mlflow.db``. SQLite allows one
writer at a time: every call retries with backoff on "database is locked", and
the first creation of the store happens under a file lock, so parallel jobs
never fail on it. For many parallel workers (a cluster), point
``tracking.uri`` at an ``mlflow server``.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from workflow_lib.provenance import code_version

log = logging.getLogger(__name__)

TAG_PREFIX = "pipeline."
# Identifying keys a run can carry; lineage tags are these, prefixed.
ID_KEYS = ("stage", "backbone", "data_key", "study_key", "variant", "trial_key", "trial_number", "fold",
           "selection_key", "final_key", "worker")
PARENT_TAG = "mlflow.parentRunId"


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


def _is_transient(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("database is locked", "locked", "operationalerror", "connection", "timed out",
                                   "temporarily unavailable", "503", "502", "504"))


def _retry(fn: Callable, *args, attempts: int = 8, base: float = 0.2, **kwargs):
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - retried only when transient
            if i == attempts - 1 or not _is_transient(exc):
                raise
            delay = min(10.0, base * 2 ** i) * (0.5 + random.random())
            log.warning("tracking call %s failed (%s); retry %d/%d in %.1fs",
                        getattr(fn, "__name__", fn), str(exc).splitlines()[0][:200], i + 1, attempts - 1, delay)
            time.sleep(delay)


class _NullRun:
    run_id = None


class Tracker:
    """Thin, retrying wrapper around MlflowClient with the project's naming and tags."""

    def __init__(self, cfg: Mapping):
        self.enabled = bool(cfg["tracking"]["enabled"])
        self.uri = tracking_uri(cfg)
        self.experiment_name = cfg["tracking"]["experiment"]
        self.artifact_root = str(Path(cfg["results_dir"]).resolve() / "mlartifacts")
        self._client = None
        self._experiment_id = None

    # -- setup ----------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            logging.getLogger("alembic").setLevel(logging.WARNING)
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            with self._store_lock():
                self._client = MlflowClient(tracking_uri=self.uri)
                exp = _retry(self._client.get_experiment_by_name, self.experiment_name)
                if exp is None:
                    try:
                        self._experiment_id = _retry(self._client.create_experiment, self.experiment_name,
                                                     artifact_location=Path(self.artifact_root).as_uri())
                    except Exception:  # created meanwhile by a job on another store client
                        exp = _retry(self._client.get_experiment_by_name, self.experiment_name)
                        if exp is None:
                            raise
                        self._experiment_id = exp.experiment_id
                else:
                    self._experiment_id = exp.experiment_id
        return self._client

    @contextlib.contextmanager
    def _store_lock(self) -> Iterator[None]:
        """Serialise the first creation/migration of a local SQLite store across processes."""
        if not self.uri.startswith("sqlite:///"):
            yield
            return
        db = Path(self.uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(str(db) + ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @property
    def experiment_id(self) -> str:
        _ = self.client
        return self._experiment_id

    # -- runs -----------------------------------------------------------------
    def find_run(self, stage: str, ids: Mapping[str, Any]):
        conds = [f"tags.`{tag('stage')}` = '{stage}'"]
        for k, v in sorted(ids.items()):
            conds.append(f"tags.`{tag(k)}` = '{v}'")
        runs = _retry(self.client.search_runs, [self.experiment_id], filter_string=" and ".join(conds),
                      max_results=2, order_by=["attributes.start_time ASC"])
        return runs[0] if runs else None

    def start(self, stage: str, ids: Mapping[str, Any], *, parent: Any = None, params: Mapping | None = None,
              reuse: bool = True):
        """Find the run with these identifying tags (``reuse``) or create it; returns an object with run_id."""
        if not self.enabled:
            return _NullRun()
        ids = {k: str(v) for k, v in ids.items() if v is not None}
        run = self.find_run(stage, ids) if reuse else None
        if run is not None:
            if run.info.status != "RUNNING":
                _retry(self.client.update_run, run.info.run_id, status="RUNNING")
            return run.info
        tags = {tag(k): v for k, v in ids.items()}
        tags[tag("stage")] = stage
        tags[tag("code_version")] = code_version()
        parent_id = getattr(parent, "run_id", parent)
        if parent_id:
            tags[PARENT_TAG] = parent_id
        run = _retry(self.client.create_run, self.experiment_id, tags=tags, run_name=run_name(stage, ids))
        if params:
            self.log_params(run.info, params)
        return run.info

    def log_params(self, run, params: Mapping[str, Any]) -> None:
        if not self.enabled or run.run_id is None:
            return
        from mlflow.entities import Param

        flat = _flatten(params)
        existing = _retry(self.client.get_run, run.run_id).data.params
        new = [Param(k, str(v)[:6000]) for k, v in flat.items() if k not in existing]
        for i in range(0, len(new), 100):
            _retry(self.client.log_batch, run.run_id, params=new[i:i + 100])

    def log_metrics(self, run, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not self.enabled or run.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in _flatten(metrics).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
        for i in range(0, len(items), 500):
            _retry(self.client.log_batch, run.run_id, metrics=items[i:i + 500])

    def set_tags(self, run, tags: Mapping[str, Any]) -> None:
        if not self.enabled or run.run_id is None:
            return
        for k, v in tags.items():
            _retry(self.client.set_tag, run.run_id, k, str(v))

    def log_artifact(self, run, path: str) -> None:
        if not self.enabled or run.run_id is None:
            return
        _retry(self.client.log_artifact, run.run_id, path)

    def end(self, run, status: str = "FINISHED") -> None:
        if not self.enabled or run.run_id is None:
            return
        _retry(self.client.set_terminated, run.run_id, status=status)

    @contextlib.contextmanager
    def run(self, stage: str, ids: Mapping[str, Any], *, parent: Any = None, params: Mapping | None = None):
        """Context manager: FINISHED on success, KILLED on TrialPruned/KeyboardInterrupt, FAILED otherwise."""
        r = self.start(stage, ids, parent=parent, params=params)
        try:
            yield r
        except BaseException as exc:
            status = "KILLED" if type(exc).__name__ in ("TrialPruned", "KeyboardInterrupt") else "FAILED"
            with contextlib.suppress(Exception):
                self.end(r, status)
            raise
        else:
            self.end(r, "FINISHED")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
