"""Training-state checkpoints: epoch-level resume of ``training.train``.

After every epoch train() writes ``{state_dir}/epoch_{e}/``: a model checkpoint of checkpoint.py
(so load_checkpoint reads it too) plus

    optimizer.pt           optimizer, LR scheduler and (fp16 training) GradScaler state dicts; None for no scaler
    rng.pt                 Python, NumPy, torch CPU (and CUDA) RNG states and the batch-order generator
    trainer_state.json     epoch, history, best_score, best_epoch, stale counter, finished, the run identity
    best_model.safetensors the best epoch's weights (early stopping restores them); absent when the
                           best epoch is this one (its model.safetensors)

written into a temporary folder, fsynced, renamed into place, the manifest (sha256 + size of every
file) last - see checkpoint.save_checkpoint. A retry of an interrupted save or resume is safe: a
half-written folder never has a manifest under its final name.

On start train() resumes from the newest epoch folder that verifies and reads; a corrupt or
truncated one is skipped (logged with the reason) in favour of the previous one; none valid =
epoch 0. A folder written by another run (other backbone, head config, epochs, patience, objective
or training data) is refused: the message names the folder, what differs and the fix.
Augmentation and the frozen-layer cache are deterministic and recomputed, not stored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workflow_lib.config.keys import digest
from workflow_lib.config.sections import Encoder, Objective, Training, plain
from workflow_lib.learning import checkpoint as ckpt
from workflow_lib.persistence.locks import file_lock

log = logging.getLogger(__name__)

OPTIMIZER = "optimizer.pt"
RNG = "rng.pt"
TRAINER = "trainer_state.json"
BEST = "best_model.safetensors"
KIND = "training_state"


class StateMismatch(ckpt.CheckpointError):
    """A training-state folder belongs to another run; the message names the folder, the difference, the fix."""


def epoch_dir(state_dir, epoch: int) -> Path:
    return Path(state_dir) / f"epoch_{int(epoch)}"


def run_identity(
    spec: Encoder,
    train_cfg: Training,
    *,
    epochs: int,
    patience: int | None,
    metric: str | None,
    objective: Objective | None,
    train_records: Sequence[Mapping],
    val_records: Sequence[Mapping] | None,
) -> dict:
    """What must match for a saved state to continue this run (the model config and the run's settings;
    ``metric`` / ``objective`` None: a run without validation scores none)."""
    return {
        "backbone_spec": plain(spec),
        "head_config": ckpt.head_config(train_cfg),
        "epochs": int(epochs),
        "patience": patience,
        "metric": metric,
        "objective": plain(objective),
        "data": digest([[r["post_id"] for r in train_records], [r["post_id"] for r in val_records or ()]]),
    }


def _fix(state_dir) -> str:
    return (
        f"delete the folder {str(state_dir)!r} (its training state is then lost and training starts at "
        f"epoch 1) or rerun the stage with force (snakemake --forcerun <rule>)"
    )


@contextlib.contextmanager
def locked(state_dir):
    """Hold ``state_dir/.lock`` (an OS lock: gone with the process); yields False when another process holds it."""
    with file_lock(Path(state_dir) / ".lock", blocking=False) as held:
        yield held


# -- RNG ---------------------------------------------------------------------------------------


def rng_state(generator: torch.Generator) -> dict:
    """Every RNG the loop uses, in a form torch.load(weights_only=True) reads back."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping, generator: torch.Generator) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- save / load ---------------------------------------------------------------------------------


def save_state(
    state_dir,
    epoch: int,
    *,
    model,
    tokenizer,
    spec: Encoder,
    train_cfg: Training,
    identity: Mapping,
    optimizer,
    scheduler,
    generator: torch.Generator,
    trainer: Mapping,
    best_state: Mapping[str, torch.Tensor] | None,
    scaler=None,
) -> Path:
    """Write ``state_dir/epoch_{epoch}`` atomically (manifest last); return its path."""
    from safetensors.torch import save_file

    def extra(tmp: Path) -> None:
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
            },
            tmp / OPTIMIZER,
        )
        torch.save(rng_state(generator), tmp / RNG)
        if best_state is not None and int(trainer["best_epoch"]) != int(epoch):
            save_file({k: v.detach().contiguous() for k, v in best_state.items()}, str(tmp / BEST))
        (tmp / TRAINER).write_text(
            json.dumps({**trainer, "epoch": int(epoch), "identity": dict(identity)}, indent=1, allow_nan=False) + "\n",
            encoding="utf-8",
        )

    out = epoch_dir(state_dir, epoch)
    ckpt.save_checkpoint(
        out,
        model,
        tokenizer,
        backbone_spec=spec,
        train_cfg=train_cfg,
        meta={"kind": KIND, "epoch": int(epoch)},
        extra=extra,
    )
    return out


@dataclass
class Loaded:
    """A training state read back and verified (not yet applied to a model)."""

    path: Path
    epoch: int
    trainer: dict
    weights: dict
    best: dict | None
    optim: dict
    rng: dict
    skipped: list = field(default_factory=list)  # (folder, reason) of newer folders that did not verify/read


def _check_identity(path: Path, stored: Mapping, identity: Mapping, state_dir) -> None:
    diffs = ckpt._differences(stored, dict(identity))
    if diffs:
        raise StateMismatch(f"{path}: training state of another run ({'; '.join(diffs[:6])}); {_fix(state_dir)}")


def _read(path: Path, mode: str) -> tuple[dict, dict, dict | None, dict, dict]:
    from safetensors.torch import load_file

    trainer = json.loads((path / TRAINER).read_text(encoding="utf-8"))
    weights = load_file(str(path / ckpt.WEIGHTS_FILE[mode]))
    best = load_file(str(path / BEST)) if (path / BEST).is_file() else None
    optim = torch.load(path / OPTIMIZER, map_location="cpu", weights_only=True)
    rng = torch.load(path / RNG, map_location="cpu", weights_only=True)
    return trainer, weights, best, optim, rng


def load_latest(state_dir, *, identity: Mapping, model) -> Loaded | None:
    """The newest epoch state under ``state_dir`` that verifies and reads, or None.

    Corrupt, truncated or unreadable folders are skipped (logged with the reason); a folder of
    another run (identity, head config or model signature differ) raises StateMismatch.
    """
    skipped: list[tuple[str, str]] = []
    for path in ckpt.checkpoint_folders(state_dir):
        try:
            manifest = ckpt.verify_checkpoint(path)
            if TRAINER not in manifest["files"]:
                raise ckpt.CheckpointError(f"{path}: a model checkpoint without {TRAINER}, not a training state")
            info = json.loads((path / ckpt.INFO).read_text(encoding="utf-8"))
            ckpt.check_compatible(
                path,
                info,
                backbone_spec=identity["backbone_spec"],
                head=identity["head_config"],
                model=model,
                fix=_fix(state_dir),
            )
            trainer, weights, best, optim, rng = _read(path, manifest.get("weights", "full"))
        except StateMismatch:
            raise
        except ckpt.CheckpointError as exc:
            if "another model configuration" in str(exc):
                raise StateMismatch(str(exc)) from None
            skipped.append((str(path), str(exc)))
        except Exception as exc:
            skipped.append((str(path), f"{path}: unreadable ({type(exc).__name__}: {exc})"))
        else:
            _check_identity(path, trainer.get("identity", {}), identity, state_dir)
            if skipped:
                log.warning("resuming from %s instead of the newer %s", path, ", ".join(p for p, _ in skipped))
            return Loaded(path, int(trainer["epoch"]), trainer, weights, best, optim, rng, skipped)
        log.warning("training state %s skipped: %s", skipped[-1][0], skipped[-1][1])
    if skipped:
        log.warning("%s: no valid training state (%d skipped); starting at epoch 1", state_dir, len(skipped))
    return None


def apply(
    state: Loaded, *, model, optimizer, scheduler, generator: torch.Generator, scaler=None
) -> dict[str, torch.Tensor] | None:
    """Load weights, optimizer, scheduler, scaler and RNGs of ``state``; return the best epoch's weights
    (None when there is no validation)."""
    strict = set(state.weights) == set(model.state_dict())
    result = model.load_state_dict(state.weights, strict=strict)
    if result.unexpected_keys:
        raise ckpt.CheckpointError(f"{state.path}: unexpected weights {ckpt._names(result.unexpected_keys)}")
    optimizer.load_state_dict(state.optim["optimizer"])
    scheduler.load_state_dict(state.optim["scheduler"])
    if scaler is not None and state.optim.get("scaler") is not None:
        scaler.load_state_dict(state.optim["scaler"])
    set_rng_state(state.rng, generator)
    if state.trainer.get("best_score") is None:
        return None
    source = state.best if state.best is not None else state.weights
    full = {k: v.detach().clone() for k, v in model.state_dict().items()}
    full.update({k: v.clone() for k, v in source.items()})
    return full
