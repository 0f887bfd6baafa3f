"""Multi-label losses on logits (B, n_labels) and 0/1 targets.

``LOSSES`` maps a config name to a class; add one with ``@register("name")``. A class that
needs per-label weights from the training labels sets ``needs_class_weights = True``;
:func:`build_loss` then computes them with :func:`class_weights` from the labels of the data
it trains on (never held-out data).

Every loss takes ``(*, pos_weight=None, label_smoothing=0.0, gamma=..., alpha=..., **kw)`` and
ignores the settings it does not use, so a caller can always pass all of them. Notation
(all losses average over samples and labels): ``x`` logit, ``p = sigmoid(x)``, ``t`` target
after label smoothing ``t = y (1 - ls) + 0.5 ls`` (``ls = 0`` leaves targets untouched),
``w_j`` the positive weight of label ``j``, ``p_t = p t + (1 - p)(1 - t)``.

- ``bce``:            ``-[t log p + (1 - t) log(1 - p)]``
- ``weighted_bce``:   ``-[w_j t log p + (1 - t) log(1 - p)]``
- ``focal``:          ``(1 - p_t)^gamma * BCE`` (BCE weighted by ``w_j`` only if pos_weight is given)
- ``adaptive_focal``: ``(gamma_j / gamma) (1 - p_t)^gamma_j * BCE``, ``gamma_j = gamma + s (1 - min(1, 1 / w_j))``
- ``hybrid``:         ``alpha * weighted_bce + (1 - alpha) * focal`` (the focal part unweighted)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workflow_lib.learning.models.registry import registrar

LOSSES: dict[str, type[Loss]] = {}
MAX_POS_WEIGHT = 50.0
DEFAULT_GAMMA = 2.0
DEFAULT_ALPHA = 0.5
DEFAULT_GAMMA_SCALE = 2.0


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


def _check_range(name: str, value: float, low: float, high: float, *, high_open: bool = False) -> float:
    value = float(value)
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        raise ValueError(f"{name} must be in [{low}, {high}{')' if high_open else ']'}, got {value}")
    return value


def focal_terms(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float | torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Element-wise sigmoid focal loss ``(1 - p_t)^gamma * BCE(x, t; pos_weight)`` (no reduction).

    ``p_t = p t + (1 - p)(1 - t)`` also works for soft (smoothed) targets; ``gamma`` is a number
    or a per-label tensor broadcast over the last dimension. With gamma 0 this is exactly BCE.
    """
    ce = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    # 1 - p_t = p (1 - t) + (1 - p) t, with 1 - p computed as sigmoid(-x): it stays > 0 for a
    # saturated logit (1 - sigmoid(30) is 0 in float32), and the clamp keeps the gradient of
    # q^gamma finite for gamma < 1 where q would underflow to 0.
    q = torch.sigmoid(logits) * (1 - targets) + torch.sigmoid(-logits) * targets
    q = q.clamp(min=torch.finfo(q.dtype).tiny)
    return q.pow(gamma) * ce


class Loss(nn.Module):
    name = "base"
    needs_class_weights = False

    def __init__(self, *, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0, **_: object) -> None:
        super().__init__()
        self.label_smoothing = _check_range("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)

    def smooth(self, targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``t (1 - ls) + 0.5 ls`` for label smoothing ``ls`` (targets unchanged when ls is 0)."""
        targets = targets.to(dtype)
        if self.label_smoothing == 0.0:
            return targets
        return targets * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing

    def _register_pos_weight(self, pos_weight: torch.Tensor | None, required: bool) -> None:
        if pos_weight is None:
            if required:
                raise ValueError(f"{self.name} needs pos_weight (class_weights of the training labels)")
            self.pos_weight = None
            return
        self.register_buffer("pos_weight", torch.as_tensor(pos_weight, dtype=torch.float32))

    def _pw(self, logits: torch.Tensor) -> torch.Tensor | None:
        return None if self.pos_weight is None else self.pos_weight.to(logits.dtype)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register("bce")
class BCELoss(Loss):
    """Mean binary cross-entropy over samples and labels."""

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, self.smooth(targets, logits.dtype))


@register("weighted_bce")
class WeightedBCELoss(Loss):
    """BCE with each label's positive term multiplied by ``pos_weight`` (see class_weights)."""

    needs_class_weights = True

    def __init__(self, *, pos_weight: torch.Tensor | None = None, **kw):
        super().__init__(pos_weight=pos_weight, **kw)
        self._register_pos_weight(pos_weight, required=True)

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(
            logits, self.smooth(targets, logits.dtype), pos_weight=self._pw(logits)
        )


@register("focal")
class FocalLoss(Loss):
    """Sigmoid focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection"), mean over
    samples and labels: ``(1 - p_t)^gamma * BCE(x, t)`` with ``p_t = p t + (1 - p)(1 - t)``.

    ``gamma >= 0`` (default 2.0; 0 gives plain BCE). No alpha balancing term (``alpha`` is the
    mixing weight of ``hybrid`` and is ignored here); when ``pos_weight`` is given the BCE
    factor weights the positive term by it, as in weighted_bce. build_loss never computes
    pos_weight for this loss: pass it explicitly to get the weighted variant.
    """

    def __init__(self, *, pos_weight: torch.Tensor | None = None, gamma: float = DEFAULT_GAMMA, **kw):
        super().__init__(pos_weight=pos_weight, **kw)
        self.gamma = _check_range("gamma", gamma, 0.0, float("inf"))
        self._register_pos_weight(pos_weight, required=False)

    def forward(self, logits, targets):
        return focal_terms(logits, self.smooth(targets, logits.dtype), self.gamma, self._pw(logits)).mean()


@register("adaptive_focal")
class AdaptiveFocalLoss(Loss):
    """Focal loss whose gamma grows with each label's imbalance: Equalized Focal Loss
    (Li et al., CVPR 2022, "Equalized Focal Loss for Dense Long-Tailed Object Detection"),
    with the class statistic taken from the training labels.

    EFL: ``loss_ij = (gamma_j / gamma) * (1 - p_t)^gamma_j * BCE(x_ij, t_ij)`` with
    ``gamma_j = gamma + s * (1 - g_j)``, ``g_j`` in [0, 1]. The paper's ``g_j`` is a running
    ratio of accumulated positive to negative gradients; here it is the static positive to
    negative ratio of label ``j`` in the training labels, ``g_j = min(1, pos_j / neg_j) =
    min(1, 1 / w_j)`` with ``w_j`` = ``class_weights`` (neg/pos clipped to [1/50, 50]; 1 for a
    label without positives or negatives). A balanced label keeps ``gamma``; a rare label gets up
    to ``gamma + s``: its many easy negatives are down-weighted more, and the factor
    ``gamma_j / gamma`` restores the loss of its hard examples. Same weights for every batch,
    so runs are reproducible and resumable.

    Settings: ``gamma > 0`` (default 2.0; the EFL weighting divides by it), ``gamma_scale`` =
    ``s >= 0`` (default 2.0; the paper uses 8 for LVIS's 1203 very long-tailed classes; 0 makes
    this plain focal). The BCE term is unweighted (``pos_weight`` only sets ``g_j``).
    """

    needs_class_weights = True

    def __init__(
        self,
        *,
        pos_weight: torch.Tensor | None = None,
        gamma: float = DEFAULT_GAMMA,
        gamma_scale: float = DEFAULT_GAMMA_SCALE,
        **kw,
    ):
        super().__init__(pos_weight=pos_weight, **kw)
        self._register_pos_weight(pos_weight, required=True)
        self.gamma = float(gamma)
        if not self.gamma > 0:
            raise ValueError(f"adaptive_focal needs gamma > 0 (its weighting divides by gamma), got {gamma}")
        self.gamma_scale = _check_range("gamma_scale", gamma_scale, 0.0, float("inf"))
        ratio = torch.clamp(1.0 / self.pos_weight, max=1.0)
        self.register_buffer("label_gamma", self.gamma + self.gamma_scale * (1.0 - ratio))

    def forward(self, logits, targets):
        gamma_j = self.label_gamma.to(logits.dtype)
        terms = focal_terms(logits, self.smooth(targets, logits.dtype), gamma_j)
        return (terms * (gamma_j / self.gamma)).mean()


@register("hybrid")
class HybridLoss(Loss):
    """``alpha * weighted_bce + (1 - alpha) * focal``, each the mean over samples and labels.

    ``weighted_bce`` uses ``pos_weight`` (from the training labels); ``focal`` is the unweighted
    sigmoid focal loss with ``gamma`` (see FocalLoss); both see the same smoothed targets.
    ``alpha`` in [0, 1] (default 0.5): 1 is weighted_bce, 0 is focal.
    """

    needs_class_weights = True

    def __init__(
        self,
        *,
        pos_weight: torch.Tensor | None = None,
        alpha: float = DEFAULT_ALPHA,
        gamma: float = DEFAULT_GAMMA,
        **kw,
    ):
        super().__init__(pos_weight=pos_weight, **kw)
        self._register_pos_weight(pos_weight, required=True)
        self.alpha = _check_range("alpha", alpha, 0.0, 1.0)
        self.gamma = _check_range("gamma", gamma, 0.0, float("inf"))

    def forward(self, logits, targets):
        t = self.smooth(targets, logits.dtype)
        wbce = F.binary_cross_entropy_with_logits(logits, t, pos_weight=self._pw(logits))
        focal = focal_terms(logits, t, self.gamma).mean()
        return self.alpha * wbce + (1.0 - self.alpha) * focal


def build_loss(name: str, train_labels: np.ndarray | None = None, **kwargs: object) -> Loss:
    """Build loss ``name``; ``kwargs`` (gamma, alpha, label_smoothing, pos_weight, ...) go to the class.

    Settings a loss does not use are ignored, and a setting given as None takes the class
    default, so callers can always pass gamma, alpha and label_smoothing. A loss with
    ``needs_class_weights`` gets ``pos_weight = class_weights(train_labels)`` unless given.
    """
    try:
        cls = LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if cls.needs_class_weights and kwargs.get("pos_weight") is None:
        if train_labels is None:
            raise ValueError(f"loss {name!r} needs the training labels to compute class weights")
        kwargs["pos_weight"] = class_weights(train_labels)
    return cls(**kwargs)
