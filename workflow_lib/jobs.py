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
