"""Job start-up for scripts/: logging to the rule's log file, config resolution, threads.

Scripts pass in the ``snakemake`` object Snakemake gives them; this module only
reads its attributes (it never imports snakemake).
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

from workflow_lib import config as config_lib

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: str | None, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(log_file) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(h)
    for noisy in ("alembic", "mlflow", "urllib3", "filelock", "httpx", "huggingface_hub", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def start(smk: Any) -> tuple[dict, int]:
    """Configure logging and threads for a Snakemake script job; return (resolved config, threads)."""
    setup_logging(smk.log[0] if len(smk.log) else None)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    cfg = config_lib.resolve(smk.config)
    threads = int(getattr(smk, "threads", 1) or 1)
    logging.getLogger("workflow_lib.jobs").info("rule %s, wildcards %s, %d thread(s)", smk.rule,
                                                dict(smk.wildcards.items()), threads)
    return cfg, threads


class RunLockedError(RuntimeError):
    """Another snakemake run is active in the same working directory."""


_RUN_LOCK = None


def acquire_run_lock(path: str = ".snakemake/pipeline.lock"):
    """Hold an OS lock on ``path`` for the life of this process; fail at once if another run holds it.

    Unlike Snakemake's own lock files, the kernel drops this lock when the process dies, so a run
    killed with SIGKILL (or by a wall-time limit) is followed by a plain rerun of the same command:
    no ``--unlock`` needed. The profiles therefore set ``nolock: true``.
    """
    import fcntl

    global _RUN_LOCK
    if _RUN_LOCK is not None:
        return _RUN_LOCK
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise RunLockedError(f"another snakemake run is active in {os.getcwd()} (pid {holder}; lock {path}). "
                             f"Wait for it to finish, or stop it, then run the command again.") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    _RUN_LOCK = fh
    return fh
