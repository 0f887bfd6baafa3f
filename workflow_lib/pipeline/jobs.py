"""Job start-up for scripts/: logging to the rule's log file, config resolution, threads.

Scripts pass in the ``snakemake`` object Snakemake gives them; this module only
reads its attributes (it never imports snakemake).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import traceback
from typing import Any

from workflow_lib import config as config_lib
from workflow_lib.devices import claim_gpu
from workflow_lib.persistence.locks import hold
from workflow_lib.tracking.logs import setup_logging
from workflow_lib.tracking.secrets import mask

log = logging.getLogger(__name__)


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
    threading.excepthook = lambda a: (
        None if a.exc_type is SystemExit else _log_uncaught(a.exc_type, a.exc_value, a.exc_traceback)
    )


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
    log.info(
        "rule %s, wildcards %s, %d thread(s)%s",
        rule,
        wildcards,
        threads,
        f", GPU {os.environ.get('CUDA_VISIBLE_DEVICES')}" if gpu is not None else "",
    )
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
        raise RunLockedError(
            f"another snakemake run is active in {os.getcwd()} (pid {holder}; lock {path}). "
            f"Wait for it to finish, or stop it, then run the command again."
        )
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    _RUN_LOCK = fh
    return fh
