"""Disk-space preflight before saves and a background monitor that prunes, tightens, then stops training.

    need = estimate_checkpoint_bytes(model, optimizer)            # weights + AdamW moments + metadata
    if cfg.storage.preflight:                                      # the caller honours the switch
        preflight(ckpt_dir, need, what="epoch 3 state of fold 0",  # one statvfs; StorageError if short
                  results_dir=cfg.results_dir, checkpoints=cfg.checkpoints)
    with StorageMonitor.from_config(cfg.storage, results_dir=cfg.results_dir, checkpoints=cfg.checkpoints,
                                    on_prune=prune, on_tighten=tighten) as mon:
        for epoch in ...:
            mon.check()                                            # raises the monitor's StorageError here
            with mon.lock:                                         # callbacks never run during a save
                save(...)

The monitor polls ``shutil.disk_usage`` every ``storage.monitor_interval_s``. When the free fraction is below
``storage.critical_free_fraction`` it calls, in its own thread and under ``mon.lock``: (1) ``on_prune()`` - prune
non-protected checkpoints, return bytes freed; re-check; (2) once per monitor ``on_tighten()`` - apply
keep_best_k=1, keep_last_n=0, return bytes freed; re-check; (3) records a StorageError for ``check()``. The
callbacks decide what is deleted; they must never delete metrics files (metrics.json, reports, study journals)
or the best checkpoint. The rm command in an error message only names training-state folders
(``PRUNABLE_DIR_RE``) that hold no metrics file.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import stat
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflow_lib.config.sections import Checkpoints, Storage

log = logging.getLogger(__name__)

MIN_MARGIN_BYTES = 1 << 20  # preflight margin: max(1 MiB, 2% of the need)
MARGIN_FRACTION = 0.02
METADATA_BYTES = 64 << 10  # RNG states (~15 KB pickled), scheduler, json files, pickle overhead
PER_TENSOR_BYTES = 512  # zip/safetensors header per stored tensor (measured 70-260 B)
# One artifact = the outermost folder with one of these names (summed); a folder holding weight files; else a file.
ARTIFACT_DIR_RE = re.compile(r"^(model|states?|checkpoints?|ckpt.*|epoch[_-]?\d+|step[_-]?\d+|mlartifacts)$")
PRUNABLE_DIR_RE = re.compile(r"^(states?|checkpoints?|ckpt.*|epoch[_-]?\d+|step[_-]?\d+)$")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
METRICS_RE = re.compile(r"(metrics.*\.json|.*report.*\.(json|html)|study_summary\.json|study\.journal)$")


class StorageError(RuntimeError):
    """Not enough disk space; the message names the paths, sizes and the fixes."""


def human(n: float) -> str:
    """Bytes in binary units: '512 B', '1.5 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.data_ptr(), t.numel(), t.dtype)
        if key not in seen or not t.data_ptr():  # tied weights are stored once
            seen.add(key)
            total += t.numel() * t.element_size() + PER_TENSOR_BYTES
    return total


def estimate_checkpoint_bytes(model, optimizer=None, *, metadata_bytes: int = METADATA_BYTES) -> int:
    """Bytes of a saved checkpoint: state dict + optimizer state + metadata (an upper bound within ~5%).

    Optimizer state is measured from ``optimizer.state`` once populated, else estimated as 2x the bytes of its
    trainable parameters (AdamW exp_avg + exp_avg_sq, plus a step tensor each). ``optimizer=None``: weights only.
    """
    import torch

    total = _tensor_bytes(model.state_dict().values()) + int(metadata_bytes)
    if optimizer is None:
        return total
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    if states:
        return total + _tensor_bytes(states)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
    return total + sum(2 * (p.numel() * p.element_size() + PER_TENSOR_BYTES) + 4 + PER_TENSOR_BYTES for p in params)


def _existing(path) -> str:
    p = os.path.abspath(os.fspath(path))
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p


def usage(path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path`` (its nearest existing ancestor); one statvfs."""
    du = shutil.disk_usage(_existing(path))
    return du.total, du.free


def free_bytes(path) -> int:
    """Free bytes (available to this user) on the file system holding ``path``."""
    return usage(path)[1]


def margin_bytes(need_bytes: int) -> int:
    return max(MIN_MARGIN_BYTES, int(need_bytes * MARGIN_FRACTION))


def _scan(results_dir) -> list[tuple[str, int, bool]]:
    """Every artifact under results_dir as (path, disk bytes, prunable); hard links counted once."""
    seen: set[tuple[int, int]] = set()
    out: list[tuple[str, int, bool]] = []

    def entries(d: str):
        try:
            with os.scandir(d) as it:
                return [(e.path, e.name, e.stat(follow_symlinks=False)) for e in it]
        except OSError:  # vanished or unreadable while scanning (a concurrent prune)
            return []

    def size(st) -> int:
        if (st.st_dev, st.st_ino) in seen:
            return 0
        seen.add((st.st_dev, st.st_ino))
        return getattr(st, "st_blocks", 0) * 512 or st.st_size

    def whole(d: str) -> tuple[int, bool]:
        total, metrics = 0, False
        for path, name, st in entries(d):
            if stat.S_ISDIR(st.st_mode):
                t, m = whole(path)
                total, metrics = total + t, metrics or m
            elif stat.S_ISREG(st.st_mode):
                total, metrics = total + size(st), metrics or bool(METRICS_RE.match(name))
        return total, metrics

    def walk(d: str, top: bool = False) -> None:
        items = entries(d)
        if not top and any(n.endswith(WEIGHT_SUFFIXES) and stat.S_ISREG(s.st_mode) for _, n, s in items):
            out.append((d, whole(d)[0], False))
            return
        for path, name, st in items:
            if stat.S_ISDIR(st.st_mode):
                if ARTIFACT_DIR_RE.match(name):
                    t, metrics = whole(path)
                    out.append((path, t, bool(PRUNABLE_DIR_RE.match(name)) and not metrics))
                else:
                    walk(path)
            elif stat.S_ISREG(st.st_mode):
                out.append((path, size(st), False))

    if os.path.isdir(results_dir):
        walk(os.fspath(results_dir), top=True)
    return sorted(out, key=lambda r: -r[1])


def largest_artifacts(results_dir, n: int = 5) -> list[tuple[str, int]]:
    """The n largest artifacts under results_dir as (path, bytes on disk), largest first.

    An artifact is a checkpoint/state/model folder (names in ARTIFACT_DIR_RE, summed), a folder holding weight
    files, or any other single file (mlflow.db, study.journal).
    """
    return [(p, b) for p, b, _ in _scan(results_dir)[:n]]


def _report(
    head: str, *, where: str, results_dir, checkpoints: Checkpoints | None, extra_fixes: tuple[str, ...] = ()
) -> str:
    """The error message: ``head``, the largest artifacts under results_dir (else ``where``) and the fixes;
    with ``checkpoints`` the fixes name its keep_last_n / keep_best_k ("now N")."""
    root = results_dir if results_dir is not None else where
    arts = _scan(root)
    lines = [head, f"Largest artifacts under {root}:" if arts else f"No artifacts found under {root}."]
    lines += [f"  {human(b):>10}  {p}{'  (prunable)' if pr else ''}" for p, b, pr in arts[:5]]
    prunable = [(p, b) for p, b, pr in arts if pr]
    last = f" (now {checkpoints.keep_last_n})" if checkpoints is not None else ""
    best = f" (now {checkpoints.keep_best_k})" if checkpoints is not None else ""
    lines += [
        "Fixes (any one):",
        f"  - keep fewer epoch states per training run: checkpoints.keep_last_n{last} -> 0, "
        f"checkpoints.keep_best_k{best} -> 1; in a config file passed with --configfile: "
        "checkpoints: {keep_last_n: 0, keep_best_k: 1}",
        f"  - put results_dir{f' (now {results_dir!r})' if results_dir else ''} on a larger disk: "
        "--config results_dir=/larger/disk/results",
        *extra_fixes,
    ]
    if prunable:
        top = prunable[:5]
        lines.append(
            f"  - free {human(sum(b for _, b in top))} now (training-state folders; metrics files are "
            f"kept): rm -rf -- {' '.join(shlex.quote(p) for p, _ in top)}"
        )
    else:
        lines.append(f"  - no prunable checkpoint/state folders under {root}: free space elsewhere on that disk")
    return "\n".join(lines)


def preflight(
    target_dir, need_bytes: int, *, what: str, results_dir: str | None = None, checkpoints: Checkpoints | None = None
) -> None:
    """Raise StorageError unless the disk of target_dir has need_bytes + margin free; one statvfs when it has.

    Always checks: the caller honours ``storage.preflight``. ``results_dir``: where the message looks for
    artifacts to free (default: target_dir's disk); ``checkpoints``: the resolved section whose keep_last_n /
    keep_best_k the message names.
    """
    where = _existing(target_dir)
    free = shutil.disk_usage(where).free
    need = int(need_bytes) + margin_bytes(int(need_bytes))
    if free >= need:
        return
    head = (
        f"Not enough disk space to save {what} in {target_dir}: {human(free)} free on the disk of {where}, "
        f"need {human(need_bytes)} (+ {human(need - int(need_bytes))} margin); short by {human(need - free)}."
    )
    raise StorageError(_report(head, where=where, results_dir=results_dir, checkpoints=checkpoints))


class StorageMonitor:
    """Daemon thread polling the disk of ``path``; see the module docstring for the prune/tighten/error steps.

    ``steps`` records what happened in order ("prune", "tighten", "error", "recovered"); ``cpu_s`` is the thread's
    CPU time. Callbacks run in the monitor thread while it holds ``lock``; hold it while saving a checkpoint.
    """

    def __init__(
        self,
        path,
        *,
        interval_s: float,
        critical_free_fraction: float,
        on_prune: Callable[[], int | None] | None = None,
        on_tighten: Callable[[], int | None] | None = None,
        results_dir=None,
        checkpoints: Checkpoints | None = None,
        what: str = "training checkpoints",
        enabled: bool = True,
    ):
        self.path, self.interval_s, self.critical = os.fspath(path), float(interval_s), float(critical_free_fraction)
        self.on_prune, self.on_tighten, self.results_dir = on_prune, on_tighten, results_dir
        self.checkpoints = checkpoints
        self.what, self.enabled = what, enabled
        self.lock = threading.Lock()
        self.error: StorageError | None = None
        self.tightened = False
        self.steps: list[str] = []
        self.polls, self.cpu_s = 0, 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(
        cls, storage: Storage, *, results_dir, checkpoints: Checkpoints | None = None, path=None, **kw
    ) -> StorageMonitor:
        """Monitor of the disk of ``path`` (default results_dir) with the resolved ``storage`` section's
        settings; inert if storage.monitor is false. ``checkpoints`` is named in the error's fixes."""
        return cls(
            path if path is not None else results_dir,
            interval_s=storage.monitor_interval_s,
            critical_free_fraction=storage.critical_free_fraction,
            results_dir=results_dir,
            checkpoints=checkpoints,
            enabled=storage.monitor,
            **kw,
        )

    def free_fraction(self) -> tuple[float, int, int]:
        total, free = usage(self.path)
        return (free / total if total else 1.0), free, total

    def _call(self, name: str, fn) -> tuple[int, str]:
        try:
            return int(fn() or 0), ""
        except Exception as exc:  # a failing callback must not kill the monitor; the error message reports it
            log.exception("storage monitor: %s failed", name)
            return 0, f" ({name} failed: {exc!r})"

    def poll(self) -> str:
        """One check (what the thread does each interval): 'ok', 'pruned', 'tightened', 'error', or 'critical'
        (error already recorded, nothing retried until the free fraction recovers, which clears the error)."""
        self.polls += 1
        frac, free, total = self.free_fraction()
        if frac >= self.critical:
            if self.error is not None:
                self.error = None
                self.steps.append("recovered")
                log.warning(
                    "storage monitor: %s free on %s again (%.1f%%); error cleared", human(free), self.path, 100 * frac
                )
            return "ok"
        if self.error is not None:
            return "critical"
        what = f"{human(free)} free of {human(total)} ({100 * frac:.1f}%) on the disk of {self.path}"
        log.warning("storage monitor: %s, below storage.critical_free_fraction %s", what, self.critical)
        notes = []
        with self.lock:
            for name, fn, step, result in (
                ("on_prune", self.on_prune, "prune", "pruned"),
                ("on_tighten", self.on_tighten, "tighten", "tightened"),
            ):
                if fn is None or (step == "tighten" and self.tightened):
                    continue
                self.steps.append(step)
                self.tightened = self.tightened or step == "tighten"
                freed, err = self._call(name, fn)
                notes.append(f"{name} freed {human(freed)}{err}")
                frac, free, total = self.free_fraction()
                log.warning(
                    "storage monitor: %s freed %s%s; now %s free (%.1f%%)",
                    name,
                    human(freed),
                    err,
                    human(free),
                    100 * frac,
                )
                if frac >= self.critical:
                    return result
        self.steps.append("error")
        short = int(self.critical * total) - free + 1
        head = (
            f"Disk almost full while saving {self.what}: {human(free)} free of {human(total)} "
            f"({100 * frac:.1f}%) on the disk of {self.path}, below storage.critical_free_fraction "
            f"{self.critical}; short by {human(short)}. Tried: {'; '.join(notes) or 'no prune/tighten callbacks'}"
            f" (retention tightened to keep_best_k=1, keep_last_n=0: {self.tightened})."
        )
        fix = (
            f"  - if the disk is shared and this level is expected: lower storage.critical_free_fraction "
            f"(now {self.critical})",
        )
        self.error = StorageError(
            _report(
                head,
                where=_existing(self.path),
                results_dir=self.results_dir,
                checkpoints=self.checkpoints,
                extra_fixes=fix,
            )
        )
        log.warning("storage monitor: training stops at its next check():\n%s", self.error)
        return "error"

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception:  # e.g. the disk vanished; keep monitoring
                log.exception("storage monitor: poll of %s failed", self.path)
            self.cpu_s = time.thread_time()
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> StorageMonitor:
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="storage-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def check(self) -> None:
        """Raise the recorded StorageError (call in the training thread before each save / epoch)."""
        if self.error is not None:
            raise self.error

    def __enter__(self) -> StorageMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
