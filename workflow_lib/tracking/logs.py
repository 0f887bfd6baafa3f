"""Logging of a job (and of the redsm5-predict command): stderr, a readable file and a JSON-lines file,
all rotating, every record masked of secrets (tracking/secrets.py) before any handler writes it."""

from __future__ import annotations

import datetime
import json
import logging
import logging.handlers
import os
import sys
import traceback
from collections.abc import Mapping

from workflow_lib.tracking.secrets import mask, mask_value

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 20 * 1024 * 1024  # each log file rotates at this size ...
LOG_BACKUPS = 3  # ... keeping this many old files (<log>.1 .. <log>.3)
NOISY_LOGGERS = ("alembic", "mlflow", "urllib3", "filelock", "httpx", "huggingface_hub", "matplotlib")


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
        out = {
            "time": datetime.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **self.context,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(
    log_file: str | None,
    level: int = logging.INFO,
    *,
    rule: str | None = None,
    wildcards: Mapping | None = None,
    max_bytes: int = LOG_MAX_BYTES,
    backup_count: int = LOG_BACKUPS,
) -> None:
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
        handlers += [
            (logging.handlers.RotatingFileHandler(log_file, **rotating), readable),
            (
                logging.handlers.RotatingFileHandler(log_file + ".jsonl", **rotating),
                JsonFormatter(rule, mask_value(dict(wildcards or {}))),
            ),
        ]
    for h, fmt in handlers:
        h.setFormatter(fmt)
        h.addFilter(MaskFilter())
        root.addHandler(h)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
