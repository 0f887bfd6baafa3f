"""The epoch states of one training run: what training.train saves after every epoch and resumes from.

``EpochStates.open(state_dir, state_policy, desc)`` yields one object that owns all of it:

- the state folder's lock (another process holds it: the run trains without saving state),
- the run identity and the load of the newest valid state (resume.load_latest / resume.apply; with fp16
  training the GradScaler's scale too),
- the save of every epoch (resume.save_state) followed by retention (retention.prune_run) with
  this run's own policy (``checkpoints.keep_last_n`` / ``keep_best_k``) and the scores of the epochs saved,
- the storage preflight (``storage.preflight``) before training and before every save, with
  ``storage.preflight``,
- the storage monitor (storage.StorageMonitor), with ``storage.monitor``: its prune and tighten callbacks
  act on this object's policy and scores; every save holds the monitor's lock.

``StatePolicy`` carries the resolved sections these read (``checkpoints``, ``storage``, ``results_dir``);
``StatePolicy.of(cfg)`` takes them from a resolved Config. With states off (``checkpoints.enabled: false``,
no ``state_dir``, or the folder's lock held by another process) ``open`` yields ``NoStates``: the same
interface, doing nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workflow_lib.config.sections import Checkpoints, Config, Encoder, Storage, Training
from workflow_lib.learning import checkpoint as ckpt
from workflow_lib.learning import resume, retention
from workflow_lib.persistence import storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatePolicy:
    """What the epoch states of a training run follow: retention (``checkpoints``), the storage preflight
    and monitor (``storage``), and the results folder their disk-space messages point at."""

    checkpoints: Checkpoints
    storage: Storage
    results_dir: str

    @classmethod
    def of(cls, cfg: Config) -> StatePolicy:
        """The state policy of a resolved config."""
        return cls(checkpoints=cfg.checkpoints, storage=cfg.storage, results_dir=cfg.results_dir)


@dataclass
class Resumed:
    """A training state applied to the run's model, optimizer, scheduler and RNGs."""

    path: Path
    epoch: int
    trainer: dict  # history, best_score, best_epoch, stale, finished
    best_state: dict | None  # the best epoch's weights (None without validation)


class NoStates:
    """States off: nothing is saved, loaded, checked or pruned."""

    def attach(self, **run) -> None:
        pass

    def resume(self) -> Resumed | None:
        return None

    def preflight_run(self) -> None:
        pass

    def save(self, epoch: int, *, trainer: Mapping, best_state) -> float | None:
        """Seconds the save took; None: nothing saved."""
        return None


class EpochStates(NoStates):
    """The epoch states of one training run in ``state_dir`` (see the module docstring)."""

    def __init__(self, state_dir, state_policy: StatePolicy, desc: str):
        self.root = Path(state_dir)
        self.state_policy, self.desc = state_policy, desc
        self.keep_last_n = state_policy.checkpoints.keep_last_n
        self.keep_best_k = state_policy.checkpoints.keep_best_k
        self.scores: dict[int, float | None] = {}  # validation score of every epoch saved by this run
        self.monitor = None
        self._run: dict | None = None

    @classmethod
    @contextlib.contextmanager
    def open(cls, state_dir, state_policy: StatePolicy | None, desc: str) -> Iterator[NoStates]:
        """The run's states (lock held, monitor running) while the block runs; NoStates when off.

        ``state_policy`` may be None only without a ``state_dir``."""
        if state_dir is None:
            yield NoStates()
            return
        if not isinstance(state_policy, StatePolicy):
            raise TypeError(
                f"{desc}: saving training states in {str(state_dir)!r} needs a StatePolicy "
                f"(StatePolicy.of(cfg) of the resolved config), got {type(state_policy).__name__}"
            )
        if not state_policy.checkpoints.enabled:
            yield NoStates()
            return
        with resume.locked(state_dir) as owned:
            if not owned:
                log.warning("%s: %s is in use by another process; training without saving state", desc, state_dir)
                yield NoStates()
                return
            states = cls(state_dir, state_policy, desc)
            with states._monitoring():
                yield states

    # -- the storage monitor ----------------------------------------------------------------

    @contextlib.contextmanager
    def _monitoring(self):
        """A storage.StorageMonitor on the state folder's disk while training runs (with storage.monitor).

        When free space falls below storage.critical_free_fraction it (1) prunes this run's epoch folders
        down to the newest (needed to resume) and the best one, (2) tightens this run's policy to
        keep_best_k 1, keep_last_n 0 (later saves follow it), and only then (3) records an error that
        the next save raises. Result files (metrics) are never touched.
        """
        policy = self.state_policy
        if not policy.storage.monitor:
            yield
            return
        self.monitor = storage.StorageMonitor.from_config(
            policy.storage,
            results_dir=policy.results_dir,
            checkpoints=policy.checkpoints,
            path=self.root,
            on_prune=lambda: self._prune(1, 1),
            on_tighten=self._tighten,
            what=f"the training state of {self.desc}",
        )
        self.monitor.start()
        try:
            yield
        finally:
            self.monitor.stop()

    def _prune(self, keep_last_n: int, keep_best_k: int) -> int:
        """Bytes freed by pruning the saved epochs to the newest n and the best k (monitor thread, lock held)."""
        before = retention.folder_bytes(self.root) if self.root.is_dir() else 0
        retention.prune_run(
            self.root,
            self.scores,
            keep_last_n=keep_last_n,
            keep_best_k=keep_best_k,
            protected=[max(self.scores)] if self.scores else [],
        )
        return before - (retention.folder_bytes(self.root) if self.root.is_dir() else 0)

    def _tighten(self) -> int:
        self.keep_best_k, self.keep_last_n = 1, 0
        log.warning("%s: storage critical: checkpoint policy tightened to keep_best_k 1, keep_last_n 0", self.desc)
        return self._prune(0, 1)

    # -- the run's states ------------------------------------------------------------------

    def attach(
        self,
        *,
        spec: Encoder,
        train_cfg: Training,
        identity: Mapping,
        model,
        tokenizer,
        optimizer,
        scheduler,
        generator,
        has_val: bool,
        scaler=None,
    ) -> None:
        """The run whose states these are (model, optimizer, scheduler, batch-order generator, the fp16
        GradScaler or None ...); ``identity``: the keyword arguments of resume.run_identity besides spec
        and train_cfg."""
        self._run = dict(
            spec=spec,
            train_cfg=train_cfg,
            identity=resume.run_identity(spec, train_cfg, **identity),
            model=model,
            tokenizer_files=ckpt.tokenizer_files(tokenizer),
            optimizer=optimizer,
            scheduler=scheduler,
            generator=generator,
            has_val=has_val,
            scaler=scaler,
        )

    def resume(self) -> Resumed | None:
        """Apply the newest valid state to the attached run (weights, optimizer, scheduler, fp16 scaler, RNGs);
        None: none."""
        r = self._run
        loaded = resume.load_latest(self.root, identity=r["identity"], model=r["model"])
        resumed = None
        if loaded is not None:
            best_state = resume.apply(
                loaded,
                model=r["model"],
                optimizer=r["optimizer"],
                scheduler=r["scheduler"],
                generator=r["generator"],
                scaler=r["scaler"],
            )
            resumed = Resumed(loaded.path, loaded.epoch, loaded.trainer, best_state)
            with self.monitor.lock if self.monitor is not None else contextlib.nullcontext():
                self.scores = {h["epoch"]: h.get("val_score") for h in loaded.trainer["history"]}
        return resumed

    def _preflight(self, n: int, what: str) -> None:
        """storage.preflight for n epoch states (with storage.preflight)."""
        policy = self.state_policy
        if not policy.storage.preflight:
            return
        r = self._run
        per = storage.estimate_checkpoint_bytes(r["model"], r["optimizer"])
        per += storage.estimate_checkpoint_bytes(r["model"]) if r["has_val"] else 0  # the best epoch's weights
        storage.preflight(self.root, n * per, what=what, results_dir=policy.results_dir, checkpoints=policy.checkpoints)

    def preflight_run(self) -> None:
        """Free space for the states the policy keeps (before training; StorageError)."""
        self._preflight(
            max(1, self.keep_last_n) + self.keep_best_k,
            f"the training state of {self.desc} (policy: keep_last_n {self.keep_last_n}, "
            f"keep_best_k {self.keep_best_k})",
        )

    def save(self, epoch: int, *, trainer: Mapping, best_state) -> float | None:
        """Save epoch ``epoch``'s state, then prune to the policy; return the seconds it took.

        First raises the storage monitor's error (after it pruned and tightened) or a failed preflight
        (StorageError).
        """
        t0 = time.perf_counter()
        if self.monitor is not None:
            self.monitor.check()
        self._preflight(1, f"the epoch {epoch} training state of {self.desc}")
        r = self._run
        with self.monitor.lock if self.monitor is not None else contextlib.nullcontext():
            resume.save_state(
                self.root,
                epoch,
                model=r["model"],
                tokenizer=r["tokenizer_files"],
                spec=r["spec"],
                train_cfg=r["train_cfg"],
                identity=r["identity"],
                optimizer=r["optimizer"],
                scheduler=r["scheduler"],
                generator=r["generator"],
                trainer=trainer,
                best_state=best_state,
                scaler=r["scaler"],
            )
            self.scores = {h["epoch"]: h.get("val_score") for h in trainer["history"]}
            retention.prune_run(
                self.root, self.scores, keep_last_n=self.keep_last_n, keep_best_k=self.keep_best_k, protected=[epoch]
            )
        return time.perf_counter() - t0
