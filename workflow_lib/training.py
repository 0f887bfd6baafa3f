"""Training and prediction of the classifier: criteria head, optional evidence head (CPU-lean; works on GPU too).

The loop is deliberately plain: post records become input rows once up front
(workflow_lib/examples.py: one right-padded id matrix, BIO tags for the evidence task);
every batch is a slice of it cut to the batch's longest row (dynamic padding, no sorting, so
batches depend only on the seed); frozen bottom layers run once and are cached; AdamW without
decay on biases and norms, linear warmup and decay, gradient clipping; validation on the
objective after every epoch with the best epoch's weights kept in memory and restored at the end.
With a ``state_dir`` every epoch's full training state is saved (workflow_lib/resume.py) and a
rerun continues from the newest valid one with the same result; retention.py prunes old epochs.
"""
from __future__ import annotations

import contextlib
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from workflow_lib.config import validate_training
from workflow_lib.examples import (Examples, build_examples, evaluate, evidence_char_spans, objective_value,
                                   post_probabilities)
from workflow_lib.models.losses import build_loss
from workflow_lib.models.model import build_model, hidden_size_of
from workflow_lib.symptoms import SYMPTOMS

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: nn.Module
    tokenizer: Any
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, [val_score], seconds, cpu_seconds
    best_epoch: int = 0                                # 1-based; the last epoch when there is no validation
    best_score: float | None = None
    val_probs: np.ndarray | None = None                # validation criteria probabilities (posts, 9), best epoch
    val_prediction: "Prediction | None" = None         # everything predicted on validation at the best epoch
    val_metrics: dict | None = None                    # validation metrics at the best epoch (threshold 0.5)
    augmentation: list = field(default_factory=list)   # original/augmented evidence sentences
    train_seconds: float = 0.0
    resumed_from: int = 0                              # epoch of the training state resumed from (0: none)


# -- environment ---------------------------------------------------------------------------

def configure_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n`` (None: leave as is); return the number in force."""
    if n is not None:
        n = int(n)
        if n < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return torch.get_num_threads()


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


# -- data ----------------------------------------------------------------------------------

def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


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


def build_optimizer(model: nn.Module, train_cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """AdamW: encoder at learning_rate, pooling + head at head_learning_rate (or learning_rate)."""
    train_cfg = validate_training(train_cfg)
    lr = float(train_cfg["learning_rate"])
    head_lr = float(train_cfg["head_learning_rate"] or lr)
    wd = float(train_cfg["weight_decay"])
    skip = _no_decay(model)
    encoder = getattr(model, "encoder", None)
    enc_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in enc_ids, id(p) in skip), []).append(p)
    param_groups = [{"params": ps, "lr": lr if is_enc else head_lr, "weight_decay": 0.0 if nd else wd}
                    for (is_enc, nd), ps in sorted(groups.items())]
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


# -- prediction ----------------------------------------------------------------------------

@dataclass
class Prediction:
    """Predictions for a list of post records."""
    examples: Examples
    row_probs: np.ndarray                 # (rows, n_out) sigmoid probabilities
    probs: np.ndarray                     # (posts, 9): criteria probabilities per post
    spans: list | None = None             # per row: predicted evidence character spans ([] = none)

    def metrics(self, records: Sequence[Mapping], thresholds: float | Sequence[float] = 0.5) -> dict:
        return evaluate(self.examples, records, self.row_probs, self.spans, thresholds)


def _predict_examples(model: nn.Module, ex: Examples, batch_size: int, threshold: float = 0.5):
    """(row probabilities (n, n_out), decoded token spans per row or None); eval mode, no gradients."""
    n = len(ex)
    n_out = int(ex.targets.shape[1])
    with_spans = ex.has_evidence and getattr(model, "evidence_head", None) is not None
    if n == 0:
        return np.zeros((0, n_out), dtype=np.float32), ([] if with_spans else None)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    order = torch.argsort(ex.lengths, descending=True, stable=True)  # less padding; order restored below
    out = torch.empty((n, n_out), dtype=torch.float32)
    spans: list = [None] * n if with_spans else None
    try:
        with torch.inference_mode():
            for idx in order.split(int(batch_size)):
                batch = _to(ex.batch(idx), device)
                res = model(**batch)
                out[idx] = torch.sigmoid(res["criteria"].float()).cpu()
                if with_spans:
                    decoded = model.evidence_head.decode(res["evidence"], batch["eligible"], batch["sentence_ids"],
                                                         threshold=threshold)
                    for i, row in zip(idx.tolist(), decoded):
                        spans[i] = row
    finally:
        model.train(was_training)
    return out.numpy(), spans


def predict_examples(model: nn.Module, ex: Examples, *, batch_size: int = 64, evidence_threshold: float = 0.5
                     ) -> Prediction:
    row_probs, token_spans = _predict_examples(model, ex, batch_size, evidence_threshold)
    spans = evidence_char_spans(ex, token_spans) if token_spans is not None else None
    return Prediction(ex, row_probs, post_probabilities(ex, row_probs), spans)


def predict(model: nn.Module, tokenizer, records: Sequence[Mapping], train_cfg: Mapping[str, Any], *,
            max_length: int, batch_size: int | None = None) -> Prediction:
    """Criteria probabilities per post (and evidence spans with the evidence task) for ``records``."""
    train_cfg = validate_training(train_cfg)
    ex = build_examples(records, tokenizer, train_cfg, max_length)
    return predict_examples(model, ex, batch_size=int(batch_size or train_cfg["eval_batch_size"]),
                            evidence_threshold=float(train_cfg["evidence_threshold"]))


def predict_proba(model: nn.Module, tokenizer, texts: Sequence[str], *, max_length: int,
                  batch_size: int = 64) -> np.ndarray:
    """Criteria probabilities (n, 9) for bare post texts, in their order (no evidence decoding)."""
    records = [{"post_id": str(i), "text": t if isinstance(t, str) else str(t), "labels": [0] * len(SYMPTOMS),
                "evidence": []} for i, t in enumerate(texts)]
    cfg = validate_training({"input_format": "binary_pairs" if int(model.n_labels) == 1 else "multi_label"})
    return predict(model, tokenizer, records, cfg, max_length=max_length, batch_size=batch_size).probs


# -- training ------------------------------------------------------------------------------

MAX_CACHE_BYTES = 4 * 2**30  # above this (e.g. binary_pairs on a large data set) the frozen layers run every step


def _frozen_cache(model: nn.Module, ex: Examples, device: torch.device, *, eval_batch_size: int, enabled: bool,
                  desc: str):
    """``(k, states (n, L, H))``: the training rows' token states after the frozen bottom ``k`` layers,
    computed once in eval mode; None when nothing is frozen (or caching is off).

    Every epoch then runs only the trainable top layers and the heads. The one difference from
    running the whole encoder: no dropout in the frozen layers (they are evaluated once).
    """
    k = model.frozen_depth() if enabled else 0
    if k == 0 or len(ex) == 0:
        return None
    need = len(ex) * int(ex.input_ids.shape[1]) * hidden_size_of(model.encoder) * 4
    if need > MAX_CACHE_BYTES:
        log.info("%s: not caching the frozen bottom %d layer(s): %.1f GB for %d rows would exceed %.1f GB; "
                 "running the whole encoder every step", desc, k, need / 2**30, len(ex), MAX_CACHE_BYTES / 2**30)
        return None
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    states = None
    try:
        with torch.inference_mode():
            for idx in torch.arange(len(ex)).split(eval_batch_size):
                b = _to(ex.batch(idx), device)
                h = model.bottom_states(k, b["input_ids"], b["attention_mask"], b.get("token_type_ids")).float().cpu()
                if states is None:
                    states = torch.zeros((len(ex), ex.input_ids.shape[1], h.shape[-1]), dtype=torch.float32)
                states[idx, :h.shape[1]] = h
    finally:
        model.train(was_training)
    log.info("%s: frozen bottom %d layer(s) run once for %d rows in %.1f s (%.0f MB cached)", desc, k, len(ex),
             time.perf_counter() - t0, states.numel() * 4 / 2**20)
    return k, states.clone()


def _preflight(policy: Mapping | None, state_dir, model: nn.Module, optimizer, has_val: bool):
    """``check(n, what)``: storage.preflight for n training-state checkpoints (no-op without the setting)."""
    if not policy or not (policy.get("storage") or {}).get("preflight", False):
        return lambda n, what: None
    from workflow_lib import storage

    def check(n: int, what: str) -> None:
        per = storage.estimate_checkpoint_bytes(model, optimizer)
        per += storage.estimate_checkpoint_bytes(model) if has_val else 0  # the best epoch's weights
        storage.preflight(state_dir, n * per, what=what, results_dir=policy.get("results_dir"), policy=policy)

    return check


DEFAULT_OBJECTIVE = {"criteria_weight": 1.0, "evidence_weight": 0.0, "evidence_metric": "token_f1"}


def train(spec: Mapping[str, Any], train_cfg: Mapping[str, Any], train_records: Sequence[Mapping],
          val_records: Sequence[Mapping] | None = None, *, epochs: int | None = None,
          patience: int | None = None, metric: str = "macro_f1", objective: Mapping | None = None,
          on_epoch: Callable[[int, float | None], None] | None = None, progress_desc: str = "train",
          threads: int | None = None, device: str | torch.device | None = None, state_dir: str | None = None,
          checkpoint_cfg: Mapping | None = None, policy: Mapping | None = None) -> TrainResult:
    """Fine-tune a new model (encoder of ``spec``, heads of ``train_cfg``) on post records.

    Records are those of data/prepare.py ({"post_id", "text", "labels", "evidence"}). With
    ``training.augment`` the training records (never the validation ones) get their evidence
    sentences augmented once, seeded by the training seed. With validation records the model is
    scored after every epoch on the objective (``metric`` at threshold 0.5, weighted with the
    evidence metric per ``objective``); the best epoch's weights are restored at the end and
    training stops after ``patience`` epochs without improvement (None: never early; a tie is no
    improvement). ``on_epoch(epoch, val_score)`` runs after every epoch; whatever it raises
    (e.g. optuna.TrialPruned) propagates. ``device`` None: CUDA when available, else CPU.

    ``state_dir``: save the training state after every epoch (before ``on_epoch``) into
    ``state_dir/epoch_{e}`` and start from the newest valid one found there; ``checkpoint_cfg`` is
    the config's ``checkpoints`` section (enabled, keep_last_n, keep_best_k). While another process
    holds the folder's lock the run trains without saving state. ``policy`` (the resolved config):
    with ``storage.preflight`` free disk space is checked (storage.preflight, StorageError) before
    training for the checkpoints the policy keeps and before every save.
    """
    ck = {"enabled": True, "keep_last_n": 1, "keep_best_k": 1, **(checkpoint_cfg or {})}
    if state_dir is None or not ck["enabled"]:
        return _train(spec, train_cfg, train_records, val_records, epochs=epochs, patience=patience, metric=metric,
                      objective=objective, on_epoch=on_epoch, progress_desc=progress_desc, threads=threads,
                      device=device, state_dir=None, ck=ck, policy=policy)
    from workflow_lib.resume import locked

    with locked(state_dir) as owned, _storage_monitor(policy, state_dir, ck, progress_desc) as monitor:
        if not owned:
            log.warning("%s: %s is in use by another process; training without saving state", progress_desc,
                        state_dir)
        return _train(spec, train_cfg, train_records, val_records, epochs=epochs, patience=patience, metric=metric,
                      objective=objective, on_epoch=on_epoch, progress_desc=progress_desc, threads=threads,
                      device=device, state_dir=state_dir if owned else None, ck=ck, policy=policy, monitor=monitor)


@contextlib.contextmanager
def _storage_monitor(policy: Mapping | None, state_dir, ck: dict, desc: str):
    """A storage.StorageMonitor on the state folder's disk while training runs (None without ``policy``).

    When free space falls below storage.critical_free_fraction it (1) prunes this run's epoch folders
    down to the newest (needed to resume) and the best one, (2) tightens the run's policy to
    keep_best_k 1, keep_last_n 0 (``ck`` is changed in place, so later saves follow it), and only
    then (3) records an error that the next save raises. Result files (metrics) are never touched.
    """
    if not policy or not (policy.get("storage") or {}).get("monitor", False):
        yield None
        return
    from workflow_lib import retention, storage

    def prune(keep_last_n: int, keep_best_k: int) -> int:
        root = Path(state_dir)
        scores = ck.get("_scores", {})
        before = retention.folder_bytes(root) if root.is_dir() else 0
        retention.prune_run(root, scores, keep_last_n=keep_last_n, keep_best_k=keep_best_k,
                            protected=[max(scores)] if scores else [])
        return before - (retention.folder_bytes(root) if root.is_dir() else 0)

    def tighten() -> int:
        ck.update(keep_best_k=1, keep_last_n=0)
        log.warning("%s: storage critical: checkpoint policy tightened to keep_best_k 1, keep_last_n 0", desc)
        return prune(0, 1)

    mon = storage.StorageMonitor.from_config(policy, path=state_dir, on_prune=lambda: prune(1, 1), on_tighten=tighten,
                                             what=f"the training state of {desc}")
    mon.start()
    try:
        yield mon
    finally:
        mon.stop()


def _train(spec, train_cfg, train_records, val_records, *, epochs, patience, metric, objective, on_epoch,
           progress_desc, threads, device, state_dir, ck, policy, monitor=None) -> TrainResult:
    t_start = time.perf_counter()
    train_cfg = validate_training(train_cfg)
    objective = {**DEFAULT_OBJECTIVE, **(objective or {})}
    n_threads = configure_threads(threads if threads is not None else train_cfg["threads"])
    epochs = int(epochs if epochs is not None else train_cfg["epochs"])
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not train_records:
        raise ValueError("no training records")
    seed = int(train_cfg["seed"])
    set_seed(seed)

    model, tokenizer = build_model(spec, train_cfg)
    max_length = int(spec.get("max_length", 128))
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)

    augmentation: list[dict] = []
    if train_cfg["augment"] != "none":
        from workflow_lib.augment import augment_records

        train_records, augmentation = augment_records(list(train_records), recipe=train_cfg["augment"],
                                                      prob=float(train_cfg["augment_prob"]), seed=seed)
        log.info("%s: augmented %d evidence sentence(s) with %s (p=%.2f)", progress_desc, len(augmentation),
                 train_cfg["augment"], train_cfg["augment_prob"])
    train_ex = build_examples(train_records, tokenizer, train_cfg, max_length)
    has_val = bool(val_records)
    val_ex = build_examples(val_records, tokenizer, train_cfg, max_length) if has_val else None
    evidence = model.evidence_head is not None
    ev_weight = float(train_cfg["evidence_loss_weight"])
    ev_threshold = float(train_cfg["evidence_threshold"])

    cache = _frozen_cache(model, train_ex, device, eval_batch_size=int(train_cfg["eval_batch_size"]),
                          enabled=bool(train_cfg["cache_frozen"]), desc=progress_desc)
    y_train = train_ex.targets
    loss_fn = build_loss(train_cfg["loss"], train_labels=y_train.numpy(), gamma=float(train_cfg["loss_gamma"]),
                         alpha=float(train_cfg["loss_alpha"]),
                         label_smoothing=float(train_cfg["label_smoothing"])).to(device)
    batch_size = int(train_cfg["batch_size"])
    eval_batch_size = int(train_cfg["eval_batch_size"])
    n = len(train_ex)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * epochs
    optimizer = build_optimizer(model, train_cfg)
    scheduler = linear_schedule(optimizer, total_steps,
                                math.ceil(total_steps * float(train_cfg["warmup_ratio"])))
    max_grad_norm = train_cfg.get("max_grad_norm")
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    log.info("%s: %d rows (%s%s), %d epochs x %d steps (batch %d, max_length %d), %d threads, %s trainable params",
             progress_desc, n, train_cfg["input_format"], " + evidence" if evidence else "", epochs,
             steps_per_epoch, batch_size, max_length, n_threads, f"{sum(p.numel() for p in params) / 1e6:.2f}M")

    history: list[dict] = []
    best_score: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_pred: Prediction | None = None
    best_metrics: dict | None = None
    stale = start = 0
    finished = False
    if state_dir is not None:
        from workflow_lib import resume, retention
        from workflow_lib.checkpoint import tokenizer_files as ckpt_tokenizer_files

        identity = resume.run_identity(spec, train_cfg, epochs=epochs, patience=patience, metric=metric,
                                       objective=objective, train_records=train_records, val_records=val_records)
        loaded = resume.load_latest(state_dir, identity=identity, model=model)
        if loaded is not None:
            best_state = resume.apply(loaded, model=model, optimizer=optimizer, scheduler=scheduler,
                                      generator=generator)
            t = loaded.trainer
            history, best_score, best_epoch, stale = t["history"], t["best_score"], t["best_epoch"], t["stale"]
            start, finished = loaded.epoch, bool(t["finished"])
            log.info("%s: resuming from %s (epoch %d/%d done%s)", progress_desc, loaded.path, start, epochs,
                     ", training finished" if finished else "")
        tok_files = ckpt_tokenizer_files(tokenizer)
        preflight = _preflight(policy, state_dir, model, optimizer, has_val)
        if not finished:
            preflight(max(1, int(ck["keep_last_n"])) + int(ck["keep_best_k"]),
                      f"the training state of {progress_desc} (policy: keep_last_n {ck['keep_last_n']}, "
                      f"keep_best_k {ck['keep_best_k']})")
    for epoch in range(start + 1, epochs + 1) if not finished else ():
        t_epoch, cpu_epoch = time.perf_counter(), time.process_time()
        model.train()
        order = torch.randperm(n, generator=generator)
        loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per step on GPU
        seen = 0
        bar = tqdm(total=steps_per_epoch, desc=f"{progress_desc} epoch {epoch}/{epochs}", unit="step",
                   file=sys.stderr, leave=False, mininterval=1.0, dynamic_ncols=True)
        try:
            for step, idx in enumerate(order.split(batch_size), start=1):
                batch = _to(train_ex.batch(idx, training=True), device)
                if cache is not None:
                    k, states = cache
                    out = model.forward_from(k, states[idx, :batch["input_ids"].shape[1]].to(device),
                                             batch["attention_mask"], batch.get("eligible"), batch.get("sentence_ids"))
                else:
                    out = model(**batch)
                loss = loss_fn(out["criteria"], y_train[idx].to(device, non_blocking=True))
                if evidence:
                    tags, sids = train_ex.evidence_targets(idx, batch["input_ids"].shape[1])
                    loss = loss + ev_weight * model.evidence_head.loss(out["evidence"], tags.to(device),
                                                                       sids.to(device))
                loss.backward()
                if max_grad_norm:
                    clip_grad_norm(params, float(max_grad_norm))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loss_sum += loss.detach() * len(idx)
                seen += len(idx)
                bar.update(1)
                if bar.n == steps_per_epoch or step % 4 == 0:
                    bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}", refresh=False)
        finally:
            bar.close()
        train_loss = float(loss_sum) / max(1, seen)
        entry: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        val_score = None
        if has_val:
            t_val = time.perf_counter()
            pred = predict_examples(model, val_ex, batch_size=eval_batch_size, evidence_threshold=ev_threshold)
            val_metrics = pred.metrics(val_records)
            val_score = objective_value(val_metrics, metric, objective)
            entry["val_score"] = val_score
            if "evidence" in val_metrics:
                entry["val_evidence_" + objective["evidence_metric"]] = val_metrics["evidence"][objective["evidence_metric"]]
            entry["val_seconds"] = time.perf_counter() - t_val
            if best_score is None or val_score > best_score:
                best_score, best_epoch, best_pred, best_metrics, stale = val_score, epoch, pred, val_metrics, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        else:
            best_epoch = epoch
        entry["seconds"] = time.perf_counter() - t_epoch
        entry["cpu_seconds"] = time.process_time() - cpu_epoch  # process CPU time, all threads
        history.append(entry)
        log.info("%s epoch %d/%d: train_loss %.4f%s, %.1f s", progress_desc, epoch, epochs, train_loss,
                 f", val objective {val_score:.4f} (best {best_score:.4f} at epoch {best_epoch})" if has_val else "",
                 entry["seconds"])
        stop = has_val and patience is not None and stale >= max(1, int(patience)) and epoch < epochs
        if state_dir is not None:
            t_save = time.perf_counter()
            if monitor is not None:
                monitor.check()  # the storage monitor's error, after it pruned and tightened (StorageError)
            preflight(1, f"the epoch {epoch} training state of {progress_desc}")
            trainer = {"history": history, "best_score": best_score, "best_epoch": best_epoch, "stale": stale,
                       "finished": bool(stop or epoch == epochs)}
            ck["_scores"] = {h["epoch"]: h.get("val_score") for h in history}
            with monitor.lock if monitor is not None else contextlib.nullcontext():
                resume.save_state(state_dir, epoch, model=model, tokenizer=tok_files, spec=spec, train_cfg=train_cfg,
                                  identity=identity, optimizer=optimizer, scheduler=scheduler, generator=generator,
                                  trainer=trainer, best_state=best_state)
                retention.prune_run(state_dir, ck["_scores"], keep_last_n=int(ck["keep_last_n"]),
                                    keep_best_k=int(ck["keep_best_k"]), protected=[epoch])
            entry["save_seconds"] = time.perf_counter() - t_save
        if on_epoch is not None:
            on_epoch(epoch, val_score)
        if stop:
            log.info("%s: no improvement for %d epoch(s); stopping early, best epoch %d", progress_desc, stale,
                     best_epoch)
            break
    if best_state is not None and best_epoch != history[-1]["epoch"]:
        model.load_state_dict(best_state)
    if has_val and best_pred is None:  # resumed past the best epoch: its validation prediction again
        best_pred = predict_examples(model, val_ex, batch_size=eval_batch_size, evidence_threshold=ev_threshold)
        best_metrics = best_pred.metrics(val_records)
    model.eval()
    return TrainResult(model=model, tokenizer=tokenizer, history=history, best_epoch=best_epoch,
                       best_score=best_score, val_probs=best_pred.probs if best_pred is not None else None,
                       val_prediction=best_pred, val_metrics=best_metrics, augmentation=augmentation,
                       train_seconds=time.perf_counter() - t_start, resumed_from=start)
