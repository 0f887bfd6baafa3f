"""Classification heads: pooled vector (B, H) -> logits (B, n_labels).

``HEADS`` maps a config name to a class; add one with ``@register("name")`` (gated,
mlp_residual, multi_sample_dropout, ...). Every head takes ``(in_features, n_labels, *,
hidden, dropout)`` and ignores settings it does not use, so callers never change.
"""
from __future__ import annotations

import torch
from torch import nn

from workflow_lib.models.registry import registrar

HEADS: dict[str, type["Head"]] = {}


register = registrar(HEADS)


class Head(nn.Module):
    name = "base"

    def __init__(self, in_features: int, n_labels: int, *, hidden: int = 256, dropout: float = 0.1,
                 **_: object) -> None:
        super().__init__()
        self.in_features = in_features
        self.n_labels = n_labels

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register("linear")
class LinearHead(Head):
    """dropout -> linear."""

    def __init__(self, in_features, n_labels, *, hidden=256, dropout=0.1, **kw):
        super().__init__(in_features, n_labels, hidden=hidden, dropout=dropout, **kw)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_features, n_labels)

    def forward(self, pooled):
        return self.out(self.dropout(pooled))


@register("mlp")
class MLPHead(Head):
    """dropout -> linear(hidden) -> GELU -> dropout -> linear."""

    def __init__(self, in_features, n_labels, *, hidden=256, dropout=0.1, **kw):
        super().__init__(in_features, n_labels, hidden=hidden, dropout=dropout, **kw)
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_labels),
        )

    def forward(self, pooled):
        return self.net(pooled)


def build_head(name: str, in_features: int, n_labels: int, **kwargs: object) -> Head:
    try:
        cls = HEADS[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; choose one of {sorted(HEADS)}") from None
    return cls(in_features, n_labels, **kwargs)
