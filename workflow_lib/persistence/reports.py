"""Reports as JSON (with schema validation) and atomic writes of single files.

The stage reports (study summaries, benchmarks, the baseline, the selection
report, the evaluation report) go through :func:`write_json`: converted to
plain JSON (numpy scalars and arrays to Python, non-finite floats to ``null``),
validated against its schema in workflow_lib/config/schemas/<kind>.schema.json when
``kind`` is given, then written with :func:`atomic_write_text` (temporary file
in the same folder, fsync, ``os.replace``) so a crash never leaves a
half-written report for Snakemake to mistake as done. The data card and the
prepared data (data/prepare.py, which validates the card itself), the HTML
pages (shipping/report_html.py) and prediction files are written with
:func:`atomic_write_text` too.

Not every file goes through here. The files of a checkpoint or training state
(learning/checkpoint.py, learning/resume.py; the model card pipeline/stages.py
adds to a model folder) are written plainly into a temporary folder that is
renamed into place once complete, so the folder as a whole is atomic. Others are
written by their own modules, in place or through a temporary file: the force
tokens (pipeline/runmode.py), the tracking replayer's offsets and markers
(tracking/replay.py), the generated data set (data/synthetic.py), benchmark
outputs (devbench/ at the repo root).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path, PurePath
from typing import Any

from workflow_lib.config import ConfigError, validate

REPORT_KINDS: tuple[str, ...] = (
    "study_summary",
    "benchmark",
    "baseline",
    "selection_report",
    "evaluation_report",
    "data_card",
)


def _check_kind(kind: str) -> None:
    if kind not in REPORT_KINDS:
        raise ValueError(f"unknown report kind {kind!r}; known kinds: {', '.join(REPORT_KINDS)}")


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON copy of ``obj``: numpy scalars/arrays -> Python, tuples -> lists,
    paths -> str, NaN/inf -> None (JSON has no NaN; the schema decides whether null is allowed)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                k = str(to_jsonable(k)) if not isinstance(k, (int, float, bool)) else str(k)
            out[k] = to_jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    # numpy (and torch scalars) without importing them here
    item = getattr(obj, "item", None)
    tolist = getattr(obj, "tolist", None)
    if tolist is not None and getattr(obj, "ndim", 0) > 0:
        return to_jsonable(tolist())
    if item is not None:
        try:
            return to_jsonable(item())
        except (TypeError, ValueError):
            pass
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj)]
    raise TypeError(f"cannot write {type(obj).__name__} {obj!r} to JSON")


def validate_report(kind: str, obj: dict) -> dict:
    """Validate ``obj`` against workflow_lib/config/schemas/<kind>.schema.json.

    Raises ConfigError listing every problem (each line names the key path).
    Returns ``obj`` unchanged.
    """
    _check_kind(kind)
    validate(obj, kind, what=f"{kind} report")
    return obj


def write_json(path, obj, kind: str | None = None) -> None:
    """Validate (when ``kind`` is given) and write ``obj`` atomically as JSON (indent 2, sorted keys)."""
    data = to_jsonable(obj)
    if kind is not None:
        validate_report(kind, data)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")


def atomic_write_text(path, text: str) -> None:
    """Write a text file atomically: temporary file in the same folder, fsync, rename, fsync the folder.
    A reader sees the old file or the new one, never a torn one (see the module docstring for what
    is written otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not possible on every file system
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def read_json(path, kind: str | None = None) -> dict:
    """Read a JSON report; with ``kind`` also validate it. Errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"report not found: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it so the stage that writes it runs again") from None
    if kind is not None:
        try:
            validate_report(kind, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return data
