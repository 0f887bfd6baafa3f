"""Classification heads: pooled vector (B, H) -> logits (B, n_labels).

``HEADS`` maps a config name to a class; add one with ``@register("name")``. Every head takes
``(in_features, n_labels, *, hidden, dropout)`` and ignores settings it does not use, so
callers never change.

Registered names: ``linear``, ``mlp``, ``mlp_residual`` (extra kwarg ``n_blocks=1``),
``gated``, ``multi_sample_dropout`` (extra kwarg ``n_samples=5``; ignores ``hidden``).
"""

from __future__ import annotations

import torch
from torch import nn

from workflow_lib.learning.models.registry import registrar

HEADS: dict[str, type[Head]] = {}


register = registrar(HEADS)


class Head(nn.Module):
    name = "base"

    def __init__(
        self, in_features: int, n_labels: int, *, hidden: int = 256, dropout: float = 0.1, **_: object
    ) -> None:
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


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block: ``x + dropout(W2 GELU(W1 LayerNorm(x)))`` (width ``dim``)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.fc2(self.act(self.fc1(self.norm(x)))))


@register("mlp_residual")
class ResidualMLPHead(Head):
    """dropout -> linear(hidden) -> ``n_blocks`` pre-norm residual blocks -> LayerNorm -> dropout -> linear.

    Each block is ``x + dropout(linear(GELU(linear(LayerNorm(x)))))`` at width ``hidden``.
    """

    def __init__(self, in_features, n_labels, *, hidden=256, dropout=0.1, n_blocks: int = 1, **kw):
        super().__init__(in_features, n_labels, hidden=hidden, dropout=dropout, **kw)
        if int(n_blocks) < 1:
            raise ValueError(f"mlp_residual head needs n_blocks >= 1, got {n_blocks}")
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_features, hidden)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden, dropout) for _ in range(int(n_blocks))))
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, pooled):
        x = self.blocks(self.proj(self.dropout(pooled)))
        return self.out(self.dropout(self.norm(x)))


@register("gated")
class GatedHead(Head):
    """GLU-style gate: dropout -> ``sigmoid(W_g x) * (W_v x)`` (width ``hidden``) -> dropout -> linear.

    ``W_g`` and ``W_v`` are one linear layer of width ``2 * hidden`` split in two halves
    (one matrix product instead of two).
    """

    def __init__(self, in_features, n_labels, *, hidden=256, dropout=0.1, **kw):
        super().__init__(in_features, n_labels, hidden=hidden, dropout=dropout, **kw)
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)
        self.gate_value = nn.Linear(in_features, 2 * hidden)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, pooled):
        gate, value = self.gate_value(self.dropout(pooled)).chunk(2, dim=-1)
        return self.out(self.dropout(torch.sigmoid(gate) * value))


@register("multi_sample_dropout")
class MultiSampleDropoutHead(Head):
    """Multi-sample dropout (Inoue 2019): in training, ``n_samples`` (default 5) independent
    dropout masks of the pooled vector go through one shared linear layer and the logits are
    averaged; in eval mode, a single pass without dropout (the expectation of that average,
    since inverted dropout keeps E[dropout(x)] = x and the layer is linear). ``hidden`` is unused.
    """

    def __init__(self, in_features, n_labels, *, hidden=256, dropout=0.1, n_samples: int = 5, **kw):
        super().__init__(in_features, n_labels, hidden=hidden, dropout=dropout, **kw)
        if int(n_samples) < 1:
            raise ValueError(f"multi_sample_dropout head needs n_samples >= 1, got {n_samples}")
        self.n_samples = int(n_samples)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_features, n_labels)

    def forward(self, pooled):
        if not self.training or self.dropout.p == 0:
            return self.out(pooled)
        # out is linear, so mean_k out(drop_k(x)) == out(mean_k drop_k(x)) up to rounding:
        # one small matrix product instead of n_samples.
        dropped = torch.stack([self.dropout(pooled) for _ in range(self.n_samples)]).mean(dim=0)
        return self.out(dropped)


def build_head(name: str, in_features: int, n_labels: int, **kwargs: object) -> Head:
    try:
        cls = HEADS[name]
    except KeyError:
        raise ValueError(f"unknown head {name!r}; choose one of {sorted(HEADS)}") from None
    return cls(in_features, n_labels, **kwargs)
