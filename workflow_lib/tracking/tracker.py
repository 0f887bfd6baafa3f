"""MLflow tracking: the one place that sets it up, names runs and spells tag keys.

Runs nest study -> trial -> fold (parent tags); refit, benchmark, selection and
final runs carry lineage tags. Stage code never calls mlflow: it uses ``Tracker``.

How it works: a job never talks to MLflow itself. ``Tracker`` appends each
tracking event (start, params, metrics, tags, artifact, model, end) to a JSONL spool
file under ``<results>/.tracking/spool/`` and a replayer process
(``python -m workflow_lib.tracking.replay``) started beside the job applies the
events to the tracking store. So the job never waits for MLflow (its import,
a locked SQLite file or a slow server), and nothing is lost when the store is
unreachable: the spool stays on disk until the store confirmed every event.
At its end the job waits for the replayer only while the store takes events
(at most ``CLOSE_TIMEOUT_S``); an unreachable store is left to the replayer,
which outlives the job and retries with backoff, then to the next job's
replayer or ``python -m workflow_lib.tracking.replay --drain <results>/.tracking/spool``
(see that module). A warning names the spool folder once it holds more than
``SPOOL_WARN_BYTES``. Replays are idempotent: a run is found again by its
identifying tags, so a job re-run after an interruption logs into the run it
started instead of creating a second one, and each metric step is kept once.

The default store is ``sqlite:///<results_dir>/mlflow.db``; SQLite allows one
writer at a time, so every store call retries with backoff on "database is
locked", and the store's first creation happens under a file lock. For many
parallel workers (a cluster), run one server in front of the store, e.g.
``mlflow server --backend-store-uri sqlite:///$PWD/results/mlflow.db --host 127.0.0.1
--port 5000 --workers 1`` (one process serialises the writes), and set
``tracking.uri: http://127.0.0.1:5000`` (a host name the compute nodes reach, on a cluster).
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
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow_lib.persistence.paths import Layout
from workflow_lib.provenance import code_version
from workflow_lib.tracking.secrets import mask, mask_value

if TYPE_CHECKING:
    from workflow_lib.config.sections import Config

log = logging.getLogger(__name__)

TAG_PREFIX = "pipeline."
# Identifying keys a run can carry; lineage tags are these, prefixed.
ID_KEYS = (
    "stage",
    "backbone",
    "data_key",
    "study_key",
    "variant",
    "trial_key",
    "trial_number",
    "fold",
    "selection_key",
    "final_key",
    "worker",
)
PARENT_TAG = "mlflow.parentRunId"
CLOSE_TIMEOUT_S = 60  # longest wait at a job's end for a store that takes events
CLOSE_GRACE_S = 2  # wait at a job's end once the replayer reports the store unreachable
SPOOL_WARN_BYTES = 100 * 2**20  # warn (once per job) when the spool folder grows past this
SIZE_CHECK_S = 5  # how often a job looks at the spool folder's size


def tag(key: str) -> str:
    if key not in ID_KEYS and key not in ("code_version", "event_time_ms"):  # event_time_ms: model versions
        raise KeyError(f"unknown tracking tag {key!r}; known: {ID_KEYS}")
    return TAG_PREFIX + key


def store_uri(uri: str | None, results_dir: str) -> str:
    """``uri``, else $MLFLOW_TRACKING_URI, else sqlite:///<abs results_dir>/mlflow.db (the pipeline's own store)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str(Path(Layout(results_dir).mlflow_db()).resolve())


def tracking_uri(cfg: Config) -> str:
    """The store of the resolved ``cfg``: tracking.uri, else $MLFLOW_TRACKING_URI, else its results_dir's SQLite file."""
    return store_uri(cfg.tracking.uri, cfg.results_dir)


def redact_uri(uri: str) -> str:
    """The URI with secrets masked (what spool headers and messages show)."""
    return mask(uri)


def spool_bytes(folder: Path) -> int:
    return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file()) if folder.is_dir() else 0


def spool_dir(cfg: Config) -> Path:
    return Path(Layout(cfg.results_dir).tracking_spool()).resolve()


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

    def __init__(self, cfg: Config, *, start_replayer: bool = True):
        self.enabled = cfg.tracking.enabled
        self.uri = tracking_uri(cfg)
        self.experiment_name = cfg.tracking.experiment
        self.artifact_root = str(Path(Layout(cfg.results_dir).mlartifacts()).resolve())
        self._proc: subprocess.Popen | None = None
        self._fh = None
        self.spool: Path | None = None
        if not self.enabled:
            return
        d = spool_dir(cfg)
        d.mkdir(parents=True, exist_ok=True)
        self.spool = d / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fh = open(self.spool, "a", encoding="utf-8")
        self._size_warned, self._size_checked = False, time.monotonic()
        self._emit("store", uri=redact_uri(self.uri), experiment=self.experiment_name, artifact_root=self.artifact_root)
        self._check_size()
        if start_replayer:  # own session and log file: it outlives the job if the store is unreachable
            with open(str(self.spool) + ".log", "a") as err:
                self._proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "workflow_lib.tracking.replay",
                        "--uri",
                        self.uri,
                        "--experiment",
                        self.experiment_name,
                        "--artifact-root",
                        self.artifact_root,
                        "--parent-pid",
                        str(os.getpid()),
                        str(self.spool),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
        atexit.register(self.close)

    def _check_size(self) -> None:
        self._size_checked = time.monotonic()
        size = spool_bytes(self.spool.parent)
        if size > SPOOL_WARN_BYTES and not self._size_warned:
            self._size_warned = True
            log.warning(
                "the MLflow tracking spool %s holds %.0f MB of events not yet applied to %s: is the store "
                "reachable? They are applied once it is; to apply them yourself run "
                "`python -m workflow_lib.tracking.replay --drain %s`",
                self.spool.parent,
                size / 2**20,
                redact_uri(self.uri),
                self.spool.parent,
            )

    # -- events -----------------------------------------------------------------
    def _emit(self, op: str, **fields) -> None:
        if self._fh is None:
            return
        event = {"op": op, "time_ms": int(time.time() * 1000), **fields}
        self._fh.write(json.dumps(event, default=str) + "\n")
        self._fh.flush()
        if not self._size_warned and time.monotonic() - self._size_checked >= SIZE_CHECK_S:
            self._check_size()

    def start(
        self, stage: str, ids: Mapping[str, Any], *, parent: RunRef | None = None, params: Mapping | None = None
    ) -> RunRef:
        """Open (find again, or create) the run with these identifying tags."""
        run = RunRef(stage, {k: None if v is None else mask(str(v)) for k, v in ids.items()})  # ids become tags
        self._emit(
            "start",
            run=run.ref(),
            name=mask(run_name(stage, run.ids)),
            parent=parent.ref() if parent else None,
            code_version=code_version(),
        )
        if params:
            self.log_params(run, params)
        return run

    def log_params(self, run: RunRef, params: Mapping[str, Any]) -> None:
        masked = mask_value({k: str(v) for k, v in flatten(params).items()})  # mask before cutting a secret in two
        self._emit("params", run=run.ref(), params={k: v[:6000] for k, v in masked.items()})

    def log_metrics(self, run: RunRef, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = {
            k: float(v)
            for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        if values:
            self._emit("metrics", run=run.ref(), metrics=values, step=int(step or 0))

    def set_tags(self, run: RunRef, tags: Mapping[str, Any]) -> None:
        self._emit("tags", run=run.ref(), tags=mask_value({k: str(v) for k, v in tags.items()}))

    def log_artifact(self, run: RunRef, path: str) -> None:
        self._emit("artifact", run=run.ref(), path=str(Path(path).resolve()))

    def log_model(
        self, run: RunRef, model_dir: str, registered_model: str, alias: str, tags: Mapping[str, Any]
    ) -> None:
        """Log the checkpoint folder ``model_dir`` (complete on disk) as the pyfunc model "model" of ``run``,
        register it under ``registered_model`` (one version per ``tags["final_key"]``, the version carries
        ``tags`` as lineage tags) and move ``alias`` to it; see workflow_lib.shipping.mlflow_model."""
        if "final_key" not in tags or not (Path(model_dir) / "manifest.json").is_file():
            raise ValueError(
                f"log_model needs a finished checkpoint folder (manifest.json in {model_dir}) and a "
                f"final_key tag (got {sorted(tags)})"
            )
        self._emit(
            "model",
            run=run.ref(),
            path=str(Path(model_dir).resolve()),
            registered_model=registered_model,
            alias=alias,
            tags=mask_value({tag(k): str(v) for k, v in tags.items()}),
        )

    def end(self, run: RunRef, status: str = "FINISHED") -> None:
        self._emit("end", run=run.ref(), status=status)

    @contextlib.contextmanager
    def run(
        self, stage: str, ids: Mapping[str, Any], *, parent: RunRef | None = None, params: Mapping | None = None
    ) -> Iterator[RunRef]:
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
        """Mark the spool complete; wait for the replayer while the store takes events (at most timeout s).
        True if all was applied; otherwise the replayer keeps going in the background."""
        if self._fh is None:
            return True
        self._emit("close")
        self._fh.close()
        self._fh = None
        if self._proc is None:
            return False
        marker, unreachable = Path(str(self.spool) + ".retrying"), None
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None:
            if not self.spool.exists():
                return True  # all applied; the replayer goes on with leftover spools of other jobs
            now = time.monotonic()
            unreachable = (unreachable or now) if marker.exists() else None
            if now > deadline or (unreachable and now - unreachable > CLOSE_GRACE_S):
                why = "is unreachable" if unreachable else f"took not all events within {timeout:.0f}s"
                log.warning(
                    "MLflow tracking store %s %s; this job does not wait for it. Its replayer (pid %d) "
                    "keeps retrying in the background; the events stay in %s until the store confirms "
                    "them (progress in %s.log). If they are still there later, run `python -m "
                    "workflow_lib.tracking.replay --drain %s`",
                    redact_uri(self.uri),
                    why,
                    self._proc.pid,
                    self.spool,
                    self.spool,
                    self.spool.parent,
                )
                return False
            time.sleep(0.05)
        if self._proc.returncode != 0:
            err = Path(str(self.spool) + ".log")
            log.warning(
                "MLflow tracking replay failed (exit %s); events kept in %s for the next job or `python -m "
                "workflow_lib.tracking.replay --drain %s`:\n%s",
                self._proc.returncode,
                self.spool,
                self.spool.parent,
                err.read_text()[-2000:] if err.exists() else "",
            )
            return False
        return True
