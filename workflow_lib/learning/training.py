"""Training of the classifier: criteria head, optional evidence head, or the sentence model whose loss adds
a sentence-level term (training.criteria_from: sentences; models/sentences.py) (CPU-lean; works on GPU too).

The loop is deliberately plain: post records become input rows once up front
(workflow_lib/learning/examples.py: one right-padded id matrix, BIO tags for the evidence task);
every batch is a slice of it cut to the batch's longest row (dynamic padding; with group_by_length
rows of similar length share a batch, workflow_lib/learning/batching.py; batches depend only on the seed);
the forward pass and the loss run in training.precision (workflow_lib/learning/precision.py); frozen bottom
layers run once and are cached; AdamW without decay on biases and norms, linear warmup and decay,
gradient clipping; validation on the objective after every epoch (predicted through
workflow_lib/learning/inference.py) with the best epoch's weights kept in memory and restored at the end.
With a ``state_dir`` every epoch's full training state is saved (workflow_lib/learning/epoch_states.py, resume.py) and a
rerun continues from the newest valid one with the same result; retention.py prunes old epochs.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from workflow_lib.config import Encoder, Objective, Training
from workflow_lib.devices import configure_threads
from workflow_lib.learning.augment import augment_records
from workflow_lib.learning.batching import epoch_batches
from workflow_lib.learning.epoch_states import EpochStates, NoStates, StatePolicy
from workflow_lib.learning.examples import Examples, build_examples, objective_value
from workflow_lib.learning.inference import Prediction, predict_examples, to_device
from workflow_lib.learning.models.losses import build_loss
from workflow_lib.learning.models.model import build_model, hidden_size_of
from workflow_lib.learning.models.sentences import balanced_pos_weight, sentence_loss
from workflow_lib.learning.precision import Precision

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: nn.Module
    tokenizer: Any
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, [val_score], seconds, cpu_seconds
    best_epoch: int = 0  # 1-based; the last epoch when there is no validation
    best_score: float | None = None
    val_probs: np.ndarray | None = None  # validation criteria probabilities (posts, 9), best epoch
    val_prediction: Prediction | None = None  # everything predicted on validation at the best epoch
    val_metrics: dict | None = None  # validation metrics at the best epoch (threshold 0.5)
    augmentation: list = field(default_factory=list)  # original/augmented evidence sentences
    train_seconds: float = 0.0
    resumed_from: int = 0  # epoch of the training state resumed from (0: none)


# -- environment ---------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# -- optimisation --------------------------------------------------------------------------


def _no_decay(module: nn.Module) -> set[int]:
    """ids of parameters without weight decay: biases and normalisation weights."""
    skip: set[int] = set()
    for mod in module.modules():
        norm = isinstance(mod, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d)) or "norm" in type(mod).__name__.lower()
        for name, p in mod.named_parameters(recurse=False):
            if norm or name == "bias" or p.ndim < 2:
                skip.add(id(p))
    return skip


def build_optimizer(model: nn.Module, train_cfg: Training) -> torch.optim.Optimizer:
    """AdamW: encoder at learning_rate, pooling + head at head_learning_rate (or learning_rate)."""
    lr = train_cfg.learning_rate
    head_lr = train_cfg.head_learning_rate or lr
    wd = train_cfg.weight_decay
    skip = _no_decay(model)
    encoder = getattr(model, "encoder", None)
    enc_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in enc_ids, id(p) in skip), []).append(p)
    param_groups = [
        {"params": ps, "lr": lr if is_enc else head_lr, "weight_decay": 0.0 if nd else wd}
        for (is_enc, nd), ps in sorted(groups.items())
    ]
    all_float = all(p.is_floating_point() for g in param_groups for p in g["params"])
    dev = next(model.parameters()).device.type
    if all_float and dev in ("cpu", "cuda"):
        try:  # fused AdamW: one kernel per step instead of a loop over ~100 tensors
            return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd)


def clip_grad_norm(params: Sequence[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` semantics; on CPU the rescale is skipped when it is a no-op.

    torch multiplies every gradient by min(1, max_norm / total_norm) even when that is 1; on CPU
    (where reading the norm costs no device sync) we only rescale when it changes something.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if grads[0].device.type != "cpu":
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = max_norm / (float(total) + 1e-6)
    if not coef >= 1.0:  # also for a non-finite norm, as torch does
        torch._foreach_mul_(grads, coef)


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """Linear warmup from 0 to the base rate, then linear decay to 0 at ``total_steps``."""
    total = max(1, total_steps)
    warm = max(0, min(warmup_steps, total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -- training ------------------------------------------------------------------------------

MAX_CACHE_BYTES = 4 * 2**30  # above this (e.g. binary_pairs on a large data set) the frozen layers run every step


@dataclass(frozen=True)
class FrozenStates:
    """The training windows' token states after the frozen bottom ``depth`` layers, stored without padding:
    window w's tokens are rows ``starts[w] : starts[w] + lengths[w]`` of ``flat`` (total tokens, H), float32.
    Sentences read alone are a few tokens each; padded to the longest they would take several times the memory."""

    depth: int
    flat: torch.Tensor
    starts: torch.Tensor
    lengths: torch.Tensor

    def _positions(self, widx: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(len(widx), width) rows of ``flat`` and whether each is a real token of its window."""
        pos = torch.arange(width)
        return self.starts[widx].unsqueeze(1) + pos, pos < self.lengths[widx].unsqueeze(1)

    def put(self, widx: torch.Tensor, states: torch.Tensor) -> None:
        rows, real = self._positions(widx, states.shape[1])
        self.flat[rows[real]] = states[real]

    def take(self, widx: torch.Tensor, width: int) -> torch.Tensor:
        """States of windows ``widx`` cut to ``width`` tokens, (len(widx), width, H), zeros on padding."""
        rows, real = self._positions(widx, width)
        out = self.flat.new_zeros((len(widx), width, self.flat.shape[1]))
        out[real] = self.flat[rows[real]]
        return out


def _frozen_cache(
    model: nn.Module, ex: Examples, precision: Precision, *, eval_batch_size: int, enabled: bool, desc: str
) -> FrozenStates | None:
    """The training windows' token states after the frozen bottom layers (:class:`FrozenStates`), computed once
    in eval mode; None when nothing is frozen (or caching is off, or it would not fit in MAX_CACHE_BYTES).

    Every epoch then runs only the trainable top layers and the heads. The one difference from
    running the whole encoder: no dropout in the frozen layers (they are evaluated once).
    """
    k = model.frozen_depth() if enabled else 0
    if k == 0 or len(ex) == 0:
        return None
    lengths = ex.lengths.long()
    need = int(lengths.sum()) * hidden_size_of(model.encoder) * 4
    if need > MAX_CACHE_BYTES:
        log.info(
            "%s: not caching the frozen bottom %d layer(s): %.1f GB for %d windows would exceed %.1f GB; "
            "running the whole encoder every step",
            desc,
            k,
            need / 2**30,
            ex.n_windows,
            MAX_CACHE_BYTES / 2**30,
        )
        return None
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    starts = torch.cumsum(lengths, 0) - lengths
    states = FrozenStates(k, torch.zeros((int(lengths.sum()), hidden_size_of(model.encoder))), starts, lengths)
    try:
        with torch.inference_mode():
            for widx in torch.argsort(ex.lengths, descending=True, stable=True).split(eval_batch_size):
                b = to_device(ex.window_inputs(widx), precision.device)
                with precision.autocast():
                    h = model.bottom_states(k, b["input_ids"], b["attention_mask"], b.get("token_type_ids"))
                states.put(widx, h.float().cpu())
    finally:
        model.train(was_training)
    log.info(
        "%s: frozen bottom %d layer(s) run once for %d windows in %.1f s (%.0f MB cached)",
        desc,
        k,
        ex.n_windows,
        time.perf_counter() - t0,
        states.flat.numel() * 4 / 2**20,
    )
    return states


def train(
    spec: Encoder,
    train_cfg: Training,
    train_records: Sequence[Mapping],
    val_records: Sequence[Mapping] | None = None,
    *,
    epochs: int | None = None,
    patience: int | None = None,
    metric: str | None = None,
    objective: Objective | None = None,
    on_epoch: Callable[[int, float | None], None] | None = None,
    progress_desc: str = "train",
    threads: int | None = None,
    device: str | torch.device | None = None,
    state_dir: str | None = None,
    state_policy: StatePolicy | None = None,
) -> TrainResult:
    """Fine-tune a new model (encoder of ``spec``, heads of ``train_cfg``) on post records.

    ``spec`` and ``train_cfg`` are resolved sections (an ``Encoder`` of the catalogue, a ``Training``
    section or a trial's); they are used as they are. ``epochs`` None: ``train_cfg.epochs``.
    Records are those of data/prepare.py ({"post_id", "text", "labels", "evidence"}). With
    ``training.augment`` the training records (never the validation ones) get their evidence
    sentences augmented once, seeded by the training seed. With validation records the model is
    scored after every epoch on the objective (``metric`` at threshold 0.5, weighted with the
    evidence metric per ``objective``, the hpo section's ``metric`` and ``objective``: both required
    then, ValueError otherwise); the best epoch's weights are restored at the end and
    training stops after ``patience`` epochs without improvement (None: never early; a tie is no
    improvement). ``on_epoch(epoch, val_score)`` runs after every epoch; whatever it raises
    (e.g. optuna.TrialPruned) propagates. ``device`` None: CUDA when available, else CPU.

    ``state_dir``: save the training state after every epoch (before ``on_epoch``) into
    ``state_dir/epoch_{e}`` and start from the newest valid one found there, as ``state_policy``
    (required with a state_dir, ValueError otherwise) says: its ``checkpoints`` section (enabled,
    keep_last_n, keep_best_k) and its ``storage`` section (free-space preflight before training and
    before every save, the storage monitor). While another process holds the folder's lock the run
    trains without saving state (workflow_lib/learning/epoch_states.py owns the states).
    """
    if val_records:
        missing = [name for name, value in (("metric", metric), ("objective", objective)) if value is None]
        if missing:
            raise ValueError(
                f"train() with validation records needs {' and '.join(missing)} (the hpo "
                f"section's metric and objective, e.g. metric=cfg.hpo.metric, "
                f"objective=cfg.hpo.objective) to score the epochs on"
            )
    if state_dir is not None and state_policy is None:
        raise ValueError(
            f"train() with state_dir {str(state_dir)!r} needs state_policy (the checkpoints and "
            f"storage settings, e.g. StatePolicy.of(cfg)) to save epoch states there"
        )
    with EpochStates.open(state_dir, state_policy, progress_desc) as states:
        return _train(
            spec,
            train_cfg,
            train_records,
            val_records,
            epochs=epochs,
            patience=patience,
            metric=metric,
            objective=objective,
            on_epoch=on_epoch,
            progress_desc=progress_desc,
            threads=threads,
            device=device,
            states=states,
        )


@dataclass
class _Run:
    """What one training run works with, built once by _setup (in this order: the random streams depend on it)."""

    model: nn.Module
    tokenizer: Any
    device: torch.device
    train_records: list
    augmentation: list
    train_ex: Examples
    val_ex: Examples | None
    cache: FrozenStates | None  # _frozen_cache
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator  # the batch order
    params: list
    batch_size: int
    eval_batch_size: int
    steps_per_epoch: int
    max_grad_norm: float | None
    evidence_weight: float
    evidence_threshold: float
    sentence_loss_weight: float  # criteria_from: sentences (0 otherwise: no sentence loss)
    sentence_pos_weight: torch.Tensor | None  # training.sentence_pos_weight balanced: per symptom (9,)
    precision: Precision  # training.precision: autocast, fp16 GradScaler, the optimisation step
    group_by_length: bool  # training.group_by_length: batches of similar-length rows


def _setup(spec, train_cfg, train_records, val_records, *, epochs, threads, device, desc) -> _Run:
    """Threads and seeds, the model, augmentation, examples, frozen-layer cache, loss, optimizer and schedule."""
    n_threads = configure_threads(threads if threads is not None else train_cfg.threads)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not train_records:
        raise ValueError("no training records")
    seed = train_cfg.seed
    set_seed(seed)

    model, tokenizer = build_model(spec, train_cfg)
    max_length = spec.max_length
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)

    augmentation: list[dict] = []
    if train_cfg.augment != "none":
        train_records, augmentation = augment_records(
            list(train_records), recipe=train_cfg.augment, prob=train_cfg.augment_prob, seed=seed
        )
        log.info(
            "%s: augmented %d evidence sentence(s) with %s (p=%.2f)",
            desc,
            len(augmentation),
            train_cfg.augment,
            train_cfg.augment_prob,
        )
    train_ex = build_examples(train_records, tokenizer, train_cfg, max_length)
    val_ex = build_examples(val_records, tokenizer, train_cfg, max_length) if val_records else None

    precision = Precision.for_device(train_cfg.precision, device)
    cache = _frozen_cache(
        model,
        train_ex,
        precision,
        eval_batch_size=train_cfg.eval_batch_size,
        enabled=train_cfg.cache_frozen,
        desc=desc,
    )
    loss_fn = build_loss(
        train_cfg.loss,
        train_labels=train_ex.targets.numpy(),
        gamma=train_cfg.loss_gamma,
        alpha=train_cfg.loss_alpha,
        label_smoothing=train_cfg.label_smoothing,
    ).to(device)
    batch_size = train_cfg.batch_size
    steps_per_epoch = math.ceil(len(train_ex) / batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = build_optimizer(model, train_cfg)
    scheduler = linear_schedule(optimizer, total_steps, math.ceil(total_steps * train_cfg.warmup_ratio))
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    log.info(
        "%s: %d rows (%s%s%s), %d epochs x %d steps (batch %d, max_length %d), %d threads, %s trainable params",
        desc,
        len(train_ex),
        train_cfg.input_format,
        " + evidence" if model.evidence_head is not None else "",
        f", {len(train_ex.units)} sentences scored" if train_ex.units is not None else "",
        epochs,
        steps_per_epoch,
        batch_size,
        max_length,
        n_threads,
        f"{sum(p.numel() for p in params) / 1e6:.2f}M",
    )
    log.info(
        "%s: %s arithmetic (training.precision: %s), %s batches",
        desc,
        precision.name,
        train_cfg.precision,
        "length-grouped" if train_cfg.group_by_length else "randomly composed",
    )
    return _Run(
        model=model,
        tokenizer=tokenizer,
        device=device,
        train_records=train_records,
        augmentation=augmentation,
        train_ex=train_ex,
        val_ex=val_ex,
        cache=cache,
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=scheduler,
        generator=generator,
        params=params,
        batch_size=batch_size,
        eval_batch_size=train_cfg.eval_batch_size,
        steps_per_epoch=steps_per_epoch,
        max_grad_norm=train_cfg.max_grad_norm,
        evidence_weight=train_cfg.evidence_loss_weight,
        evidence_threshold=train_cfg.evidence_threshold,
        sentence_loss_weight=train_cfg.sentence_loss_weight if train_cfg.criteria_from == "sentences" else 0.0,
        sentence_pos_weight=(
            balanced_pos_weight(train_ex.units.targets, train_ex.units.weights).to(device)
            if train_ex.units is not None and train_cfg.sentence_pos_weight == "balanced"
            else None
        ),
        precision=precision,
        group_by_length=train_cfg.group_by_length,
    )


def _batch_loss(run: _Run, idx: torch.Tensor) -> torch.Tensor:
    """The training loss of one batch (rows ``idx``): criteria loss (+ weighted evidence loss; for the
    sentence model + sentence_loss_weight x the sentence loss, models/sentences.py)."""
    model, device, ex = run.model, run.device, run.train_ex
    batch = to_device(ex.batch(idx, training=True), device)
    if run.cache is not None:
        heads_inputs = {n: v for n, v in batch.items() if n not in ("input_ids", "attention_mask", "token_type_ids")}
        out = model.forward_from(
            run.cache.depth,
            run.cache.take(ex.window_index(idx), batch["input_ids"].shape[1]).to(device),
            batch["attention_mask"],
            **heads_inputs,
        )
    else:
        out = model(**batch)
    loss = run.loss_fn(out["criteria"], ex.targets[idx].to(device, non_blocking=True))
    if ex.units is not None and run.sentence_loss_weight > 0:
        targets, weights = ex.units.targets_of(idx)
        loss = loss + run.sentence_loss_weight * sentence_loss(
            out["sentences"],
            targets.to(device, non_blocking=True),
            weights.to(device, non_blocking=True),
            run.sentence_pos_weight,
        )
    if model.evidence_head is not None:
        tags, sids = ex.evidence_targets(idx, batch["input_ids"].shape[1])
        loss = loss + run.evidence_weight * model.evidence_head.loss(out["evidence"], tags.to(device), sids.to(device))
    return loss


def train_one_epoch(run: _Run, desc: str) -> float:
    """One pass over the training rows in a fresh random order (run.generator), length-grouped with
    group_by_length (workflow_lib/learning/batching.py), in run.precision; the mean training loss."""
    run.model.train()
    ex = run.train_ex
    batches = epoch_batches(ex.row_lengths(), run.batch_size, run.generator, group_by_length=run.group_by_length)
    clip = (lambda: clip_grad_norm(run.params, run.max_grad_norm)) if run.max_grad_norm else None
    loss_sum = torch.zeros((), device=run.device)  # summed on the device: no host sync per step on GPU
    seen = 0
    bar = tqdm(
        total=run.steps_per_epoch,
        desc=desc,
        unit="step",
        file=sys.stderr,
        leave=False,
        mininterval=1.0,
        dynamic_ncols=True,
    )
    try:
        for step, idx in enumerate(batches, start=1):
            with run.precision.autocast():  # the forward pass and the loss
                loss = _batch_loss(run, idx)
            if run.precision.step(loss, run.optimizer, clip=clip):  # False: fp16 step skipped (inf/nan gradients)
                run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach() * len(idx)
            seen += len(idx)
            bar.update(1)
            if bar.n == run.steps_per_epoch or step % 4 == 0:
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", refresh=False)
    finally:
        bar.close()
    return float(loss_sum) / max(1, seen)


def _predict_validation(run: _Run, val_records) -> tuple[Prediction, dict]:
    pred = predict_examples(
        run.model,
        run.val_ex,
        batch_size=run.eval_batch_size,
        evidence_threshold=run.evidence_threshold,
        precision=run.precision,
    )
    return pred, pred.metrics(val_records)


@dataclass
class Validation:
    """One epoch's validation: the prediction, its metrics, the objective and the history fields."""

    pred: Prediction
    metrics: dict
    score: float
    fields: dict  # val_score, [val_evidence_<metric>], val_seconds


def evaluate_epoch(run: _Run, val_records, metric: str, objective: Objective) -> Validation:
    """Predict the validation rows and score them on the objective (``metric`` at threshold 0.5)."""
    t0 = time.perf_counter()
    pred, metrics = _predict_validation(run, val_records)
    score = objective_value(metrics, metric, objective)
    fields: dict[str, Any] = {"val_score": score}
    if "evidence" in metrics:
        fields["val_evidence_" + objective.evidence_metric] = metrics["evidence"][objective.evidence_metric]
    fields["val_seconds"] = time.perf_counter() - t0
    return Validation(pred, metrics, score, fields)


@dataclass
class _Progress:
    """The history and early-stopping bookkeeping (what a training state stores, plus the best prediction)."""

    history: list = field(default_factory=list)
    best_score: float | None = None
    best_epoch: int = 0
    stale: int = 0
    best_state: dict | None = None  # the best epoch's weights (with validation)
    best_pred: Prediction | None = None  # None after a resume past the best epoch
    best_metrics: dict | None = None

    @classmethod
    def resumed(cls, trainer: Mapping, best_state) -> _Progress:
        return cls(trainer["history"], trainer["best_score"], trainer["best_epoch"], trainer["stale"], best_state)

    def record(self, epoch: int, model: nn.Module, val: Validation | None) -> None:
        """Note epoch ``epoch`` (after its validation, before its history entry); a tie is no improvement."""
        if val is None:
            self.best_epoch = epoch
        elif self.best_score is None or val.score > self.best_score:
            self.best_score, self.best_epoch, self.best_pred, self.best_metrics, self.stale = (
                val.score,
                epoch,
                val.pred,
                val.metrics,
                0,
            )
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1

    def trainer_state(self, finished: bool) -> dict:
        return {
            "history": self.history,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "stale": self.stale,
            "finished": bool(finished),
        }


def _result(run: _Run, progress: _Progress, val_records, *, t_start: float, resumed_from: int) -> TrainResult:
    """The best epoch's model (weights restored) and its validation prediction, in eval mode."""
    if progress.best_state is not None and progress.best_epoch != progress.history[-1]["epoch"]:
        run.model.load_state_dict(progress.best_state)
    if run.val_ex is not None and progress.best_pred is None:  # resumed past the best epoch: predict it again
        progress.best_pred, progress.best_metrics = _predict_validation(run, val_records)
    run.model.eval()
    return TrainResult(
        model=run.model,
        tokenizer=run.tokenizer,
        history=progress.history,
        best_epoch=progress.best_epoch,
        best_score=progress.best_score,
        val_probs=progress.best_pred.probs if progress.best_pred is not None else None,
        val_prediction=progress.best_pred,
        val_metrics=progress.best_metrics,
        augmentation=run.augmentation,
        train_seconds=time.perf_counter() - t_start,
        resumed_from=resumed_from,
    )


def _train(
    spec,
    train_cfg,
    train_records,
    val_records,
    *,
    epochs,
    patience,
    metric,
    objective,
    on_epoch,
    progress_desc,
    threads,
    device,
    states: NoStates,
) -> TrainResult:
    t_start = time.perf_counter()
    epochs = int(epochs if epochs is not None else train_cfg.epochs)
    run = _setup(
        spec, train_cfg, train_records, val_records, epochs=epochs, threads=threads, device=device, desc=progress_desc
    )
    states.attach(
        spec=spec,
        train_cfg=train_cfg,
        model=run.model,
        tokenizer=run.tokenizer,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        generator=run.generator,
        has_val=run.val_ex is not None,
        scaler=run.precision.scaler,
        identity=dict(
            epochs=epochs,
            patience=patience,
            metric=metric,
            objective=objective,
            train_records=run.train_records,
            val_records=val_records,
        ),
    )
    progress, start, finished = _Progress(), 0, False
    resumed = states.resume()
    if resumed is not None:
        progress = _Progress.resumed(resumed.trainer, resumed.best_state)
        start, finished = resumed.epoch, bool(resumed.trainer["finished"])
        log.info(
            "%s: resuming from %s (epoch %d/%d done%s)",
            progress_desc,
            resumed.path,
            start,
            epochs,
            ", training finished" if finished else "",
        )
    if not finished:
        states.preflight_run()

    for epoch in range(start + 1, epochs + 1) if not finished else ():
        t_epoch, cpu_epoch = time.perf_counter(), time.process_time()
        entry: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_one_epoch(run, f"{progress_desc} epoch {epoch}/{epochs}"),
        }
        val = evaluate_epoch(run, val_records, metric, objective) if run.val_ex is not None else None
        entry.update(val.fields if val is not None else {})
        progress.record(epoch, run.model, val)
        entry["seconds"] = time.perf_counter() - t_epoch
        entry["cpu_seconds"] = time.process_time() - cpu_epoch  # process CPU time, all threads
        progress.history.append(entry)
        log.info(
            "%s epoch %d/%d: train_loss %.4f%s, %.1f s",
            progress_desc,
            epoch,
            epochs,
            entry["train_loss"],
            f", val objective {val.score:.4f} (best {progress.best_score:.4f} at epoch {progress.best_epoch})"
            if val is not None
            else "",
            entry["seconds"],
        )
        stop = val is not None and patience is not None and progress.stale >= max(1, int(patience)) and epoch < epochs

        save_seconds = states.save(
            epoch, trainer=progress.trainer_state(finished=stop or epoch == epochs), best_state=progress.best_state
        )
        if save_seconds is not None:
            entry["save_seconds"] = save_seconds
        if on_epoch is not None:
            on_epoch(epoch, val.score if val is not None else None)
        if stop:
            log.info(
                "%s: no improvement for %d epoch(s); stopping early, best epoch %d",
                progress_desc,
                progress.stale,
                progress.best_epoch,
            )
            break

    return _result(run, progress, val_records, t_start=t_start, resumed_from=start)
