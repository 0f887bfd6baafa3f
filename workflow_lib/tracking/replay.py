"""Applies tracking spools (JSONL events written by workflow_lib.tracking.tracker.Tracker) to MLflow.

    python -m workflow_lib.tracking.replay --uri URI --experiment NAME --artifact-root DIR
        [--parent-pid PID] SPOOL                      # started by Tracker beside each job
    python -m workflow_lib.tracking.replay --drain <results>/.tracking/spool [--uri URI] [--patience S]

Who replays a spool, and when:
- The job's replayer follows SPOOL while the job writes it (metric events are sent in batches). It
  runs in its own session and logs to ``SPOOL.log``, so it outlives the job: ``Tracker.close()``
  waits for it while the store takes events (at most ``CLOSE_TIMEOUT_S``), and no longer than
  ``CLOSE_GRACE_S`` once the replayer reports the store unreachable.
- A failing store call is retried with exponential backoff (``BASE_BACKOFF_S`` doubling up to
  ``MAX_BACKOFF_S``, jittered; MLflow's own HTTP retries are off) for as long as the job lives, then
  for ``REPLAY_PATIENCE_S`` after it ended; then the replayer exits and leaves the spool. While the
  store is unreachable (not merely locked) a ``SPOOL.retrying`` marker tells the job not to wait.
- After its own spool, every replayer applies the leftover spools of the same store whose writer and
  replayer are gone (their lock is free): spools of killed jobs, of replayers that gave up or were
  killed at the job's end (a SLURM job's processes all end with it). ``--drain`` does the same from a
  shell, for the store named in each spool's header (``--uri`` overrides it); it exits 1 if a spool
  is left (store unreachable, or a live job or replayer still has it).
- A spool is deleted only after the store confirmed every event in it; ``SPOOL.offset`` counts the
  lines applied, so a replay resumes after them. A followed spool counts as complete at its close
  event, or at its end once the writer was seen gone before that last read.

Every event is idempotent, so a replayer killed between a store call and its offset write (or a job
resumed after an interruption) duplicates nothing: a run is found by its identifying tags before it
is created (also when a create is retried), existing params are skipped (MLflow params cannot
change), tags and artifacts overwrite, a model event registers one version per final_key
(workflow_lib.shipping.mlflow_model), and a (run, metric, step) already in the store is never logged
again: the first value wins (steps are read once per run and metric and kept per replayer, which is
exact as long as one job at a time writes a run, as in this pipeline). A start or end older than the
run's last applied end (a spool replayed late) changes no status, so the latest end wins whatever the
order spools are replayed in (see ``_ended_after``). Parallel replayers writing one
SQLite store retry on "database is locked"; for many parallel jobs, run an ``mlflow server`` in
front of the store (see workflow_lib.tracking.tracker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workflow_lib.persistence.locks import file_lock
from workflow_lib.tracking.tracker import PARENT_TAG, redact_uri, run_tags, tag

log = logging.getLogger("workflow_lib.tracking.replay")

BASE_BACKOFF_S = 0.5
MAX_BACKOFF_S = 10.0
REPLAY_PATIENCE_S = 900.0  # consecutive failures tolerated once the writing job is gone
BATCH = 1000  # MLflow's log_batch limit for metrics (pending metric events are flushed every BATCH // 10)


def _is_transient(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(
        s in text
        for s in (
            "locked",
            "operationalerror",
            "connection",
            "timed out",
            "timeout",
            "temporarily unavailable",
            "429",
            "503",
            "502",
            "504",
            "max retries",
        )
    )


class Replayer:
    """Applies events to one store; ``follow_pid``: retry without limit while that process lives."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        artifact_root: str,
        *,
        follow_pid: int | None = None,
        patience: float = REPLAY_PATIENCE_S,
    ):
        self.uri, self.experiment_name, self.artifact_root = uri, experiment, artifact_root
        self.follow_pid, self.patience = follow_pid, patience
        self.marker: Path | None = None  # SPOOL.retrying of the spool being followed
        self._closed = False
        self._client = None
        self.experiment_id = None
        self._runs: dict[str, str] = {}
        self._steps: dict[tuple[str, str], set[int]] = {}
        self._fresh: set[str] = set()  # runs created here: no metric history to read

    def writer_alive(self) -> bool:
        return self.follow_pid is not None and not self._closed and _alive(self.follow_pid)

    def call(self, fn: Callable, *args, **kwargs):
        """fn(*args, **kwargs), retrying transient errors with exponential backoff (see module doc)."""
        first = waited = None  # first failure; patience counts from it or from the writer's end
        i = 0
        while True:
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:
                now = time.monotonic()
                first = first or now
                waited = now if waited is None or self.writer_alive() else waited
                if not _is_transient(exc) or now - waited > self.patience:
                    raise
                msg = _short(exc)
                if self.marker is not None and "locked" not in msg.lower() and not self.marker.exists():
                    self.marker.write_text(msg + "\n")
                delay = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2**i) * (0.5 + random.random() / 2)
                i += 1
                log.warning(
                    "tracking store %s: %s failed (%s); retry %d in %.1fs",
                    redact_uri(self.uri),
                    getattr(fn, "__name__", "call"),
                    msg,
                    i,
                    delay,
                )
                time.sleep(delay)
                continue
            if first is not None:
                if self.marker is not None:
                    self.marker.unlink(missing_ok=True)
                if time.monotonic() - first > 5:
                    log.warning(
                        "tracking store %s answers again after %.0fs", redact_uri(self.uri), time.monotonic() - first
                    )
            return out

    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            for noisy in ("alembic", "mlflow"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            lock = None
            if self.uri.startswith("sqlite:///"):
                db = Path(self.uri[len("sqlite:///") :])
                db.parent.mkdir(parents=True, exist_ok=True)
                lock = str(db) + ".lock"
            # the first creation/migration of a SQLite store is serialised across processes
            with file_lock(lock) if lock else contextlib.nullcontext():
                client = self.call(MlflowClient, tracking_uri=self.uri)

                def get_or_create():
                    exp = client.get_experiment_by_name(self.experiment_name)
                    return (
                        exp.experiment_id
                        if exp
                        else client.create_experiment(
                            self.experiment_name, artifact_location=Path(self.artifact_root).as_uri()
                        )
                    )

                try:
                    self.experiment_id = self.call(get_or_create)
                except Exception as exc:
                    if _is_transient(exc):
                        raise
                    self.experiment_id = self.call(client.get_experiment_by_name, self.experiment_name).experiment_id
            self._client = client
        return self._client

    def _search(self, tags: dict[str, str]):
        conds = [f"tags.`{k}` = '{v}'" for k, v in sorted(tags.items())]
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=" and ".join(conds),
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        return runs[0] if runs else None

    def find_run(self, tags: dict[str, str]):
        _ = self.client
        return self.call(self._search, tags)

    def run_id(self, ref: dict, *, create: dict | None = None) -> str:
        tags = run_tags(ref["stage"], ref["ids"])
        key = json.dumps(tags, sort_keys=True)
        if key in self._runs:
            return self._runs[key]
        all_tags = dict(tags)
        if create is not None:
            all_tags[tag("code_version")] = create["code_version"]
            if create.get("parent"):
                all_tags[PARENT_TAG] = self.run_id(create["parent"])

        def find_or_create():  # a retried create first looks for the run an earlier attempt made
            run = self._search(tags)
            if run is None and create is not None:
                run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=create["name"])
                self._fresh.add(run.info.run_id)
            return run

        _ = self.client
        run = self.call(find_or_create)
        if run is None:
            raise LookupError(f"no run with tags {tags}")
        if create is not None and run.info.status != "RUNNING" and not _ended_after(run.info, create):
            self.call(self.client.update_run, run.info.run_id, status="RUNNING")  # a job resumed: reopen
        self._runs[key] = run.info.run_id
        return run.info.run_id

    def log_metrics(self, ref: dict, events: list[dict]) -> None:
        """One batch for consecutive metric events of a run; steps already in the store are skipped."""
        from mlflow.entities import Metric

        rid = self.run_id(ref)
        new = []
        for ev in events:
            for k, v in ev["metrics"].items():
                steps = self._steps.get((rid, k))
                if steps is None:
                    steps = (
                        set()
                        if rid in self._fresh
                        else {m.step for m in self.call(self.client.get_metric_history, rid, k)}
                    )
                    self._steps[(rid, k)] = steps
                if ev["step"] not in steps:
                    steps.add(ev["step"])
                    new.append(Metric(k, v, ev["time_ms"], ev["step"]))
        for i in range(0, len(new), BATCH):
            self.call(self.client.log_batch, rid, metrics=new[i : i + BATCH])

    def apply(self, ev: dict) -> None:
        from mlflow.entities import Param, RunTag

        op = ev["op"]
        if op in ("close", "store"):
            return
        if op == "start":
            self.run_id(ev["run"], create=ev)
            return
        if op == "metrics":
            self.log_metrics(ev["run"], [ev])
            return
        rid = self.run_id(ev["run"])
        if op == "params":
            existing = self.call(self.client.get_run, rid).data.params
            new = [Param(k, v) for k, v in ev["params"].items() if k not in existing]
            for i in range(0, len(new), 100):
                self.call(self.client.log_batch, rid, params=new[i : i + 100])
        elif op == "tags":
            self.call(self.client.log_batch, rid, tags=[RunTag(k, v) for k, v in ev["tags"].items()])
        elif op == "artifact":
            if Path(ev["path"]).exists():
                self.call(self.client.log_artifact, rid, ev["path"])
        elif op == "model":  # pyfunc model + registry version + alias (store calls retried inside)
            from workflow_lib.shipping.mlflow_model import apply_model_event

            apply_model_event(self, rid, ev)
        elif op == "end":
            if not _ended_after(self.call(self.client.get_run, rid).info, ev):
                self.call(self.client.set_terminated, rid, status=ev["status"], end_time=ev["time_ms"])
        else:
            raise ValueError(f"unknown tracking event {op!r}")

    def replay(self, spool: Path, *, follow: bool = False) -> bool:
        """Apply one spool (following it while ``follow_pid`` lives, if ``follow``).
        Returns True when the spool was complete (close event, or writer gone) and fully applied."""
        offset_file = Path(str(spool) + ".offset")
        done = _read_int(offset_file)
        self._closed, self.marker = False, Path(str(spool) + ".retrying") if follow else None
        pending: list[tuple[int, dict]] = []  # consecutive metric events: one batch per run

        def flush():
            if pending:
                by_run: dict[str, list[dict]] = {}
                for _, ev in pending:
                    by_run.setdefault(json.dumps(ev["run"], sort_keys=True), []).append(ev)
                for evs in by_run.values():
                    self.log_metrics(evs[0]["run"], evs)
                offset_file.write_text(str(pending[-1][0]))
                pending.clear()

        with open(spool, encoding="utf-8") as fh:
            n, buf = 0, ""
            while True:
                # asked before the read: a writer found gone here wrote all it will, so reaching the end of the
                # file after this means the spool is complete. Asked after it, the job could write its last
                # events (the ends) and exit while a flush waits for the store, and they would never be read.
                alive = follow and self.writer_alive()
                line = fh.readline()
                if not line.endswith("\n"):  # end of what is written so far ("" or a partial line)
                    buf += line
                    flush()
                    if alive:
                        time.sleep(0.1)
                        continue
                    break
                line, buf = buf + line, ""
                n += 1
                if n <= done:
                    continue
                ev = json.loads(line)
                if ev["op"] == "metrics":
                    pending.append((n, ev))
                    if len(pending) >= BATCH // 10:
                        flush()
                    continue
                flush()
                self.apply(ev)
                offset_file.write_text(str(n))
                if ev["op"] == "close":
                    self._closed = True
                    break
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)
        return self._closed or not follow or not self.writer_alive()

    def same_store(self, spool: Path) -> bool:
        hdr = header(spool)
        return hdr is None or (hdr.get("uri"), hdr.get("experiment")) == (redact_uri(self.uri), self.experiment_name)

    def replay_left(self, spool: Path) -> bool:
        """Apply a spool whose writer and replayer are gone and remove it; False if one of them still has it."""
        with file_lock(str(spool) + ".lock", blocking=False) as got:
            if not got or not spool.exists() or _writing(spool):
                return False
            self.replay(spool)
            _remove(spool)
            return True

    def replay_orphans(self, folder: Path, own: Path | None = None) -> tuple[int, int]:
        """Replay the spools of this store whose writer and replayer are gone. Returns (applied, left)."""
        applied = left = 0
        for spool in sorted(folder.glob("*.jsonl")):
            if spool == own or not self.same_store(spool):
                continue
            try:
                ok = self.replay_left(spool)
            except Exception as exc:
                log.error(
                    "could not apply %s to %s (%s); it stays for a later replay",
                    spool,
                    redact_uri(self.uri),
                    _short(exc),
                )
                ok = False
                if _is_transient(exc):
                    break  # the store is unreachable: the other spools wait too
            applied, left = applied + ok, left + (not ok and spool.exists())
        return applied, left


def _ended_after(info, ev: dict) -> bool:
    """Was the run ended by an event written after ``ev``? Then ``ev`` (a start or an end) is older than the
    run's state and changes no status: a spool replayed late (an orphan of a job killed during an outage,
    an HPO worker's lagging replayer) neither reopens a run a later job finished nor overwrites its end.
    Both times are the jobs' clocks (end_time is the time of the end event applied)."""
    return info.status != "RUNNING" and (info.end_time or 0) > ev["time_ms"]


def _short(exc: BaseException) -> str:
    """One line of an error, its start and its end (where the cause, e.g. 'Connection refused', is)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else f"{text[:120]} ... {text[-170:]}"


def header(spool: Path) -> dict | None:
    """The spool's ``store`` event (uri with the password masked, experiment, artifact_root), if any."""
    try:
        with open(spool, encoding="utf-8") as fh:
            ev = json.loads(fh.readline() or "{}")
    except (OSError, ValueError):
        return None
    return ev if ev.get("op") == "store" else None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _writing(spool: Path) -> bool:
    """Is the job that writes spool (pid in its name) alive and the spool not closed yet?"""
    try:
        pid = int(spool.stem.split("-")[1])
    except (IndexError, ValueError):
        return False
    if not _alive(pid):
        return False
    with open(spool, "rb") as fh:
        fh.seek(max(0, fh.seek(0, os.SEEK_END) - 200))
        last = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return b'"op": "close"' not in last


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(spool: Path) -> None:
    for suffix in ("", ".offset", ".retrying", ".log", ".lock"):
        with contextlib.suppress(FileNotFoundError):
            Path(str(spool) + suffix).unlink()


def drain(
    folder: Path,
    *,
    uri: str | None = None,
    experiment: str | None = None,
    artifact_root: str | None = None,
    patience: float = 60.0,
) -> int:
    """Apply every leftover spool in folder to its store (from its header, or the given one)."""
    reps: dict[tuple, Replayer] = {}
    applied = left = 0
    for spool in sorted(folder.glob("*.jsonl")):
        hdr = header(spool) or {}
        store = (uri or hdr.get("uri"), experiment or hdr.get("experiment"), artifact_root or hdr.get("artifact_root"))
        if None in store or "***" in store[0]:
            print(
                f"{spool}: no usable store in its header {hdr or '(none)'}; "
                "pass --uri (and --experiment, --artifact-root for spools without a header)",
                file=sys.stderr,
            )
            left += 1
            continue
        rep = reps.setdefault(store, Replayer(*store, patience=patience))
        try:
            ok = rep.replay_left(spool)
            if not ok and spool.exists():
                print(f"{spool}: its job or replayer is still running; left alone", file=sys.stderr)
        except Exception as exc:
            print(f"{spool}: not applied to {redact_uri(rep.uri)}: {_short(exc)}", file=sys.stderr)
            ok = False
        applied, left = applied + ok, left + (not ok and spool.exists())
    print(f"tracking spools: {applied} applied, {left} left in {folder}")
    return 0 if left == 0 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workflow_lib.tracking.replay")
    ap.add_argument("--drain", type=Path, metavar="SPOOL_DIR", help="apply every leftover spool in SPOOL_DIR")
    ap.add_argument("--uri")
    ap.add_argument("--experiment")
    ap.add_argument("--artifact-root")
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--patience", type=float, default=None, help="seconds of consecutive store failures tolerated")
    ap.add_argument("spool", type=Path, nargs="?")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # our own backoff retries; MLflow's HTTP client would otherwise retry for minutes inside one call
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    if args.drain is not None:
        return drain(
            args.drain,
            uri=args.uri,
            experiment=args.experiment,
            artifact_root=args.artifact_root,
            patience=60.0 if args.patience is None else args.patience,
        )
    if not (args.spool and args.uri and args.experiment and args.artifact_root):
        ap.error("give SPOOL with --uri, --experiment and --artifact-root, or --drain SPOOL_DIR")
    rep = Replayer(
        args.uri,
        args.experiment,
        args.artifact_root,
        follow_pid=args.parent_pid,
        patience=REPLAY_PATIENCE_S if args.patience is None else args.patience,
    )
    complete = False
    if args.parent_pid is not None:
        rep.marker = Path(str(args.spool) + ".retrying")  # tells the job not to wait for an unreachable store
    with file_lock(str(args.spool) + ".lock"):
        if not args.spool.exists():  # a spool closed before this replayer started was applied by another one
            Path(str(args.spool) + ".lock").unlink(missing_ok=True)
            return 0
        try:
            _ = rep.client  # import mlflow and open the store while the job is still starting up
            complete = rep.replay(args.spool, follow=args.parent_pid is not None)
        except Exception:
            log.exception(
                "tracking events in %s not applied to %s; they stay for the next job's replayer or "
                "`python -m workflow_lib.tracking.replay --drain %s`",
                args.spool,
                redact_uri(args.uri),
                args.spool.parent,
            )
            return 1
        if complete:
            _remove(args.spool)
    if complete:
        rep.follow_pid = None
        rep.replay_orphans(args.spool.parent, own=args.spool)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
