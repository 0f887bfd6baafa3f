"""What the tracking tests share (tests/unit/tracking, tests/unit/shipping/test_mlflow_model.py and their
integration halves): a job's resolved config, a variant of it, a finished job's spool, a free port."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

from workflow_lib import config
from workflow_lib.config import Config
from workflow_lib.tracking.tracker import Tracker

REPO = Path(__file__).resolve().parents[2]


def job_config(results_dir) -> Config:
    """The repo's config.yaml with ``results_dir``, resolved: what a job's Tracker is given."""
    return config.load(REPO / "config" / "config.yaml", overrides={"results_dir": str(results_dir)})


def changed(cfg: Config, overrides: Mapping) -> Config:
    """``cfg`` with ``overrides`` merged in, resolved again: the config of a job given those --config values."""
    return config.resolve(config.deep_merge(cfg, overrides))


def spool_job(cfg: Config, worker: str = "0", steps=range(10), **ids) -> Tracker:
    """A finished job's spool (no replayer): a fold run with params, per-step metrics and tags."""
    tr = Tracker(cfg, start_replayer=False)
    with tr.run("fold", {"trial_key": "d" * 12, "fold": 0, "worker": worker, **ids}, params={"lr": 0.1}) as r:
        for i in steps:
            tr.log_metrics(r, {"loss": 1.0 / (i + 1), "acc": i / 10}, step=i)
            tr.set_tags(r, {"progress": str(i)})
    tr.close()
    return tr


def free_port() -> int:
    """A local TCP port nothing listens on (a tracking server that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
