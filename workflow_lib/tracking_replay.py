"""Applies tracking spools (JSONL events written by workflow_lib.tracking.Tracker) to MLflow.

    python -m workflow_lib.tracking_replay --uri URI --experiment NAME --artifact-root DIR
        [--parent-pid PID] SPOOL

Follows SPOOL until its ``close`` event (or until the writing job has died), applying each
event with retries; then replays any orphaned spools in the same folder (left by jobs that
were killed, or by a store that was unreachable). A spool is deleted only after every event
in it was applied; progress is kept in ``SPOOL.offset`` so an interrupted replay resumes
after the last applied event instead of applying events twice.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from workflow_lib.tracking import PARENT_TAG, run_tags, tag

log = logging.getLogger("workflow_lib.tracking_replay")


def _is_transient(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("locked", "operationalerror", "connection", "timed out", "timeout",
                                   "temporarily unavailable", "503", "502", "504", "max retries"))


def retry(fn: Callable, *args, attempts: int = 10, base: float = 0.2, **kwargs):
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - only transient errors are retried
            if i == attempts - 1 or not _is_transient(exc):
                raise
            delay = min(15.0, base * 2 ** i) * (0.5 + random.random())
            log.warning("tracking call %s failed (%s); retry %d/%d in %.1fs",
                        getattr(fn, "__name__", fn), str(exc).splitlines()[0][:200], i + 1, attempts - 1, delay)
            time.sleep(delay)


@contextlib.contextmanager
def _file_lock(path: str, blocking: bool = True) -> Iterator[bool]:
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Replayer:
    def __init__(self, uri: str, experiment: str, artifact_root: str):
        self.uri, self.experiment_name, self.artifact_root = uri, experiment, artifact_root
        self._client = None
        self.experiment_id = None
        self._runs: dict[str, str] = {}

    @property
    def client(self):
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            for noisy in ("alembic", "mlflow"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            from mlflow.tracking import MlflowClient

            lock = None
            if self.uri.startswith("sqlite:///"):
                db = Path(self.uri[len("sqlite:///"):])
                db.parent.mkdir(parents=True, exist_ok=True)
                lock = str(db) + ".lock"
            # the first creation/migration of a SQLite store is serialised across processes
            with (_file_lock(lock) if lock else contextlib.nullcontext()):
                client = MlflowClient(tracking_uri=self.uri)
                exp = retry(client.get_experiment_by_name, self.experiment_name)
                if exp is None:
                    try:
                        self.experiment_id = retry(client.create_experiment, self.experiment_name,
                                                   artifact_location=Path(self.artifact_root).as_uri())
                    except Exception:  # noqa: BLE001 - created meanwhile by another client
                        exp = retry(client.get_experiment_by_name, self.experiment_name)
                        if exp is None:
                            raise
                        self.experiment_id = exp.experiment_id
                else:
                    self.experiment_id = exp.experiment_id
            self._client = client
        return self._client

    def find_run(self, tags: dict[str, str]):
        conds = [f"tags.`{k}` = '{v}'" for k, v in sorted(tags.items())]
        runs = retry(self.client.search_runs, [self.experiment_id], filter_string=" and ".join(conds),
                     max_results=1, order_by=["attributes.start_time ASC"])
        return runs[0] if runs else None

    def run_id(self, ref: dict, *, create: dict | None = None) -> str:
        tags = run_tags(ref["stage"], ref["ids"])
        key = json.dumps(tags, sort_keys=True)
        if key in self._runs:
            return self._runs[key]
        run = self.find_run(tags)
        if run is None:
            if create is None:
                raise LookupError(f"no run with tags {tags}")
            all_tags = dict(tags)
            all_tags[tag("code_version")] = create["code_version"]
            if create.get("parent"):
                all_tags[PARENT_TAG] = self.run_id(create["parent"])
            run = retry(self.client.create_run, self.experiment_id, tags=all_tags, run_name=create["name"])
        elif create is not None and run.info.status != "RUNNING":
            retry(self.client.update_run, run.info.run_id, status="RUNNING")
        self._runs[key] = run.info.run_id
        return run.info.run_id

    def apply(self, ev: dict) -> None:
        from mlflow.entities import Metric, Param

        op = ev["op"]
        if op == "close":
            return
        if op == "start":
            self.run_id(ev["run"], create=ev)
            return
        rid = self.run_id(ev["run"])
        if op == "params":
            existing = retry(self.client.get_run, rid).data.params
            new = [Param(k, v) for k, v in ev["params"].items() if k not in existing]
            for i in range(0, len(new), 100):
                retry(self.client.log_batch, rid, params=new[i:i + 100])
        elif op == "metrics":
            ms = [Metric(k, v, ev["time_ms"], ev["step"]) for k, v in ev["metrics"].items()]
            retry(self.client.log_batch, rid, metrics=ms)
        elif op == "tags":
            for k, v in ev["tags"].items():
                retry(self.client.set_tag, rid, k, v)
        elif op == "artifact":
            if Path(ev["path"]).exists():
                retry(self.client.log_artifact, rid, ev["path"])
        elif op == "end":
            retry(self.client.set_terminated, rid, status=ev["status"], end_time=ev["time_ms"])
        else:
            raise ValueError(f"unknown tracking event {op!r}")

    def replay(self, spool: Path, *, follow_pid: int | None = None) -> bool:
        """Apply one spool; with follow_pid, wait for new lines while that process lives.
        Returns True when the spool was complete (close event, or writer gone) and fully applied."""
        offset_file = Path(str(spool) + ".offset")
        done = int(offset_file.read_text() or 0) if offset_file.exists() else 0
        closed = False
        with open(spool, encoding="utf-8") as fh:
            n = 0
            buf = ""
            while True:
                line = fh.readline()
                if not line or not line.endswith("\n"):
                    buf += line
                    if follow_pid is not None and _alive(follow_pid):
                        time.sleep(0.1)
                        continue
                    break
                line, buf = buf + line, ""
                n += 1
                if n <= done:
                    continue
                ev = json.loads(line)
                self.apply(ev)
                offset_file.write_text(str(n))
                if ev["op"] == "close":
                    closed = True
                    break
        return closed or follow_pid is None or not _alive(follow_pid)

    def replay_orphans(self, folder: Path, own: Path | None) -> int:
        """Replay spools whose writer and replayer are gone (their lock is free)."""
        n = 0
        for spool in sorted(folder.glob("*.jsonl")):
            if own is not None and spool == own:
                continue
            with _file_lock(str(spool) + ".lock", blocking=False) as got:
                if not got or not spool.exists():
                    continue
                pid = _writer_pid(spool)
                if pid is not None and _alive(pid):
                    continue  # still being written by a live job without a replayer lock yet
                if self.replay(spool):
                    _remove(spool)
                    n += 1
        return n


def _writer_pid(spool: Path) -> int | None:
    parts = spool.stem.split("-")
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(spool: Path) -> None:
    for p in (spool, Path(str(spool) + ".offset"), Path(str(spool) + ".lock")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workflow_lib.tracking_replay")
    ap.add_argument("--uri", required=True)
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--artifact-root", required=True)
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("spool", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    rep = Replayer(args.uri, args.experiment, args.artifact_root)
    with _file_lock(str(args.spool) + ".lock") as _:
        _ = rep.client  # import mlflow and open the store while the job is still starting up
        complete = rep.replay(args.spool, follow_pid=args.parent_pid)
        if complete:
            _remove(args.spool)
    rep.replay_orphans(args.spool.parent, own=args.spool)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
