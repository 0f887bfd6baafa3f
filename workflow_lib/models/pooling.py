"""Pooling: token states (B, T, H) + attention mask (B, T) -> one vector per text (B, H).

``POOLING`` maps a config name to a class. A new strategy (attention, last_2_layer_mix, ...)
is one class added with ``@register("name")``; callers only use :func:`build_pooling`.
A class that needs every layer's states sets ``needs_all_hidden_states = True`` and then
receives them as ``all_hidden_states`` (tuple of (B, T, H), embeddings first).
"""
from __future__ import annotations

import torch
from torch import nn

from workflow_lib.models.registry import registrar

POOLING: dict[str, type["Pooling"]] = {}


register = registrar(POOLING)


class Pooling(nn.Module):
    name = "base"
    needs_all_hidden_states = False

    def __init__(self, hidden_size: int, **_: object) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.output_size = hidden_size

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor,
                all_hidden_states: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        raise NotImplementedError


@register("cls")
class ClsPooling(Pooling):
    """The first token's state ([CLS])."""

    def forward(self, hidden_states, attention_mask, all_hidden_states=None):
        return hidden_states[:, 0]


@register("mean")
class MeanPooling(Pooling):
    """Mean over real tokens; padded positions never contribute (whatever their values)."""

    def forward(self, hidden_states, attention_mask, all_hidden_states=None):
        keep = attention_mask.unsqueeze(-1).to(torch.bool)
        summed = hidden_states.masked_fill(~keep, 0.0).sum(dim=1)
        counts = keep.sum(dim=1).clamp(min=1).to(hidden_states.dtype)
        return summed / counts


def build_pooling(name: str, hidden_size: int, **kwargs: object) -> Pooling:
    try:
        cls = POOLING[name]
    except KeyError:
        raise ValueError(f"unknown pooling {name!r}; choose one of {sorted(POOLING)}") from None
    return cls(hidden_size, **kwargs)
