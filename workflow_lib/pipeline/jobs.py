"""Job start-up for scripts/: logging to the rule's log file, config resolution, threads.

Scripts pass in the ``snakemake`` object Snakemake gives them; this module only
reads its attributes (it never imports snakemake).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import logging.handlers
import os
import sys
import threading
import traceback
from typing import Any, Mapping

from workflow_lib import config as config_lib
from workflow_lib.persistence.locks import hold
from workflow_lib.pipeline.devices import claim_gpu
from workflow_lib.tracking.secrets import mask, mask_value

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 20 * 1024 * 1024  # each log file rotates at this size ...
LOG_BACKUPS = 3  # ... keeping this many old files (<log>.1 .. <log>.3)
NOISY_LOGGERS = ("alembic", "mlflow", "urllib3", "filelock", "httpx", "huggingface_hub", "matplotlib")
log = logging.getLogger(__name__)


class MaskFilter(logging.Filter):
    """Masks a record's message (args merged in), exception and stack text in place, once per record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_secrets_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format args: keep everything, masked
            message = f"{record.msg} {record.args}"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        record._secrets_masked = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, pid, rule, wildcards[, exception, stack]."""

    def __init__(self, rule: str | None = None, wildcards: Mapping | None = None):
        super().__init__()
        self.context = {"rule": rule, "wildcards": dict(wildcards or {})}

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage(),
               "pid": record.process, **self.context}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(log_file: str | None, level: int = logging.INFO, *, rule: str | None = None,
                  wildcards: Mapping | None = None, max_bytes: int = LOG_MAX_BYTES,
                  backup_count: int = LOG_BACKUPS) -> None:
    """Root logging to stderr, ``log_file`` (readable) and ``<log_file>.jsonl`` (one JSON object a record).

    Both files rotate at ``max_bytes`` keeping ``backup_count`` old files; every handler masks secrets.
    """
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    readable = logging.Formatter(FORMAT)
    handlers: list[tuple[logging.Handler, logging.Formatter]] = [(logging.StreamHandler(sys.stderr), readable)]
    if log_file:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        rotating = dict(mode="a", maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        handlers += [(logging.handlers.RotatingFileHandler(log_file, **rotating), readable),
                     (logging.handlers.RotatingFileHandler(log_file + ".jsonl", **rotating),
                      JsonFormatter(rule, mask_value(dict(wildcards or {}))))]
    for h, fmt in handlers:
        h.setFormatter(fmt)
        h.addFilter(MaskFilter())
        root.addHandler(h)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


class JobFailed(RuntimeError):
    """A job's exception with its text masked; the original was logged (masked) before this was raised."""


def _log_uncaught(etype, value, tb) -> None:
    """sys.excepthook: the traceback goes to the log handlers (masked there), never raw to stderr."""
    if isinstance(value, JobFailed):
        return  # ``job`` logged the original already
    try:
        log.critical("uncaught %s", etype.__name__, exc_info=(etype, value, tb))
    except Exception:
        sys.stderr.write(mask("".join(traceback.format_exception(etype, value, tb))))


def install_excepthook() -> None:
    """Route uncaught exceptions (main thread and other threads) through the masking log handlers."""
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda a: None if a.exc_type is SystemExit else _log_uncaught(
        a.exc_type, a.exc_value, a.exc_traceback)


def start(smk: Any) -> tuple[dict, int]:
    """Configure logging and threads for a Snakemake script job; return (resolved config, threads)."""
    rule = getattr(smk, "rule", None)
    wildcards = dict(smk.wildcards.items()) if getattr(smk, "wildcards", None) is not None else {}
    setup_logging(smk.log[0] if len(smk.log) else None, rule=rule, wildcards=wildcards)
    install_excepthook()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    cfg = config_lib.resolve(smk.config)
    threads = int(getattr(smk, "threads", 1) or 1)
    gpu = None
    resources = getattr(smk, "resources", None)
    if resources is not None and int(resources.get("gpu", 0) or 0) > 0:  # the rule asked for a GPU

        gpu = claim_gpu()
    log.info("rule %s, wildcards %s, %d thread(s)%s", rule, wildcards, threads,
             f", GPU {os.environ.get('CUDA_VISIBLE_DEVICES')}" if gpu is not None else "")
    return cfg, threads


@contextlib.contextmanager
def job(smk: Any):
    """``with jobs.job(snakemake) as (cfg, threads): ...`` - ``start`` plus masked failure reporting.

    An exception in the block is logged with its masked traceback and re-raised as ``JobFailed`` whose
    message is the masked ``Type: message`` (the original is not chained, so nothing prints it unmasked).
    """
    cfg_threads = start(smk)
    try:
        yield cfg_threads
    except Exception as exc:
        log.error("job failed", exc_info=True)
        raise JobFailed(mask(f"{type(exc).__name__}: {exc}")) from None


class RunLockedError(RuntimeError):
    """Another snakemake run is active in the same working directory."""


_RUN_LOCK = None


def acquire_run_lock(path: str = ".snakemake/pipeline.lock"):
    """Hold an OS lock on ``path`` for the life of this process; fail at once if another run holds it.

    Unlike Snakemake's own lock files, the kernel drops this lock when the process dies, so a run
    killed with SIGKILL (or by a wall-time limit) is followed by a plain rerun of the same command:
    no ``--unlock`` needed. The profiles therefore set ``nolock: true``.
    """
    global _RUN_LOCK
    if _RUN_LOCK is not None:
        return _RUN_LOCK
    fh = hold(path)
    if fh is None:
        with open(path) as f:
            holder = f.read().strip() or "unknown"
        raise RunLockedError(f"another snakemake run is active in {os.getcwd()} (pid {holder}; lock {path}). "
                             f"Wait for it to finish, or stop it, then run the command again.")
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    _RUN_LOCK = fh
    return fh
