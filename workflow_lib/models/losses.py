"""Multi-label losses on logits (B, n_labels) and 0/1 targets.

``LOSSES`` maps a config name to a class; add focal/adaptive_focal/hybrid with
``@register("name")``. A class that needs per-label weights from the training labels sets
``needs_class_weights = True``; :func:`build_loss` then computes them with
:func:`class_weights` from the labels of the data it trains on (never held-out data).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workflow_lib.models.registry import registrar

LOSSES: dict[str, type["Loss"]] = {}
MAX_POS_WEIGHT = 50.0


register = registrar(LOSSES)


def class_weights(labels: np.ndarray, max_weight: float = MAX_POS_WEIGHT) -> torch.Tensor:
    """Per-label positive weight neg/pos, clipped to [1/max_weight, max_weight].

    A label with no positives (or no negatives) in ``labels`` gets 1.0: there is nothing to
    rebalance, and an unbounded weight would blow up the loss.
    """
    y = np.asarray(labels)
    if y.ndim != 2:
        raise ValueError(f"labels must be (n_samples, n_labels), got shape {y.shape}")
    pos = (y > 0.5).sum(axis=0).astype(np.float64)
    neg = y.shape[0] - pos
    w = np.ones(y.shape[1], dtype=np.float64)
    ok = (pos > 0) & (neg > 0)
    w[ok] = neg[ok] / pos[ok]
    w = np.clip(w, 1.0 / max_weight, max_weight)
    return torch.tensor(w, dtype=torch.float32)


class Loss(nn.Module):
    name = "base"
    needs_class_weights = False

    def __init__(self, *, pos_weight: torch.Tensor | None = None, **_: object) -> None:
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register("bce")
class BCELoss(Loss):
    """Mean binary cross-entropy over samples and labels."""

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


@register("weighted_bce")
class WeightedBCELoss(Loss):
    """BCE with each label's positive term multiplied by ``pos_weight`` (see class_weights)."""

    needs_class_weights = True

    def __init__(self, *, pos_weight: torch.Tensor | None = None, **kw):
        super().__init__(pos_weight=pos_weight, **kw)
        if pos_weight is None:
            raise ValueError("weighted_bce needs pos_weight (class_weights of the training labels)")
        self.register_buffer("pos_weight", torch.as_tensor(pos_weight, dtype=torch.float32))

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype),
                                                  pos_weight=self.pos_weight.to(logits.dtype))


def build_loss(name: str, train_labels: np.ndarray | None = None, **kwargs: object) -> Loss:
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
    if cls.needs_class_weights and kwargs.get("pos_weight") is None:
        if train_labels is None:
            raise ValueError(f"loss {name!r} needs the training labels to compute class weights")
        kwargs["pos_weight"] = class_weights(train_labels)
    return cls(**kwargs)
