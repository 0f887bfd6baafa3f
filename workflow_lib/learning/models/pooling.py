"""Pooling: token states (B, T, H) + attention mask (B, T) -> one vector per text (B, H).

``POOLING`` maps a config name to a class. A new strategy is one class added with
``@register("name")``; callers only use :func:`build_pooling`.
A class that needs every layer's states sets ``needs_all_hidden_states = True`` and then
receives them as ``all_hidden_states`` (tuple of (B, T, H), embeddings first).

Every strategy ignores padded positions completely: their values (even inf/nan) never change
the output and they receive no gradient. A text whose mask is all zeros pools to zeros.

Registered names: ``cls``, ``mean``, ``max``, ``attention``, ``last_2_layer_mix``.
"""

from __future__ import annotations

import torch
from torch import nn

from workflow_lib.learning.models.registry import registrar

POOLING: dict[str, type[Pooling]] = {}


register = registrar(POOLING)


def _keep(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) 0/1 mask -> (B, T, 1) bool."""
    return attention_mask.unsqueeze(-1).to(torch.bool)


def masked_mean(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions with mask 1; padded values (even inf/nan) are never read."""
    keep = _keep(attention_mask)
    summed = hidden_states.masked_fill(~keep, 0.0).sum(dim=1)
    counts = keep.sum(dim=1).clamp(min=1).to(hidden_states.dtype)
    return summed / counts


class Pooling(nn.Module):
    name = "base"
    needs_all_hidden_states = False

    def __init__(self, hidden_size: int, **_: object) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.output_size = hidden_size

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        all_hidden_states: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
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
        return masked_mean(hidden_states, attention_mask)


@register("max")
class MaxPooling(Pooling):
    """Per-dimension max over real tokens; a padded position never wins, whatever its value.

    The gradient of each output dimension goes to the one real token that holds the max.
    """

    def forward(self, hidden_states, attention_mask, all_hidden_states=None):
        keep = _keep(attention_mask)
        pooled = hidden_states.masked_fill(~keep, float("-inf")).max(dim=1).values
        has_tokens = keep.any(dim=1)  # (B, 1)
        return torch.where(has_tokens, pooled, torch.zeros_like(pooled))


@register("attention")
class AttentionPooling(Pooling):
    """Learned attention over tokens: ``score_t = w . h_t``, ``a = softmax over real tokens``,
    output ``sum_t a_t h_t``.

    Padded positions get exactly zero weight: their score is set to the dtype's minimum and the
    softmax is multiplied by the mask. Their states are zeroed before scoring, so inf/nan there
    cannot leak into the scores or into ``w``'s gradient. The scorer has no bias (a constant
    shift cancels in the softmax, so a bias would never get a gradient). ``w`` starts at zero,
    so the untrained pooling is exactly the masked mean.
    """

    def __init__(self, hidden_size: int, **kw: object) -> None:
        super().__init__(hidden_size, **kw)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        nn.init.zeros_(self.score.weight)

    def weights(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) attention weights; 0 at padded positions, rows sum to 1 (0 for empty rows)."""
        keep = _keep(attention_mask)
        return self._weights(hidden_states.masked_fill(~keep, 0.0), keep)

    def _weights(self, states: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        keep = keep.squeeze(-1)
        scores = self.score(states).squeeze(-1)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        # exp(min - max) is already 0 in a row with a real token; the product also zeroes
        # an all-padding row (whose softmax would otherwise be uniform over padding).
        return torch.softmax(scores, dim=1) * keep.to(scores.dtype)

    def forward(self, hidden_states, attention_mask, all_hidden_states=None):
        keep = _keep(attention_mask)
        states = hidden_states.masked_fill(~keep, 0.0)
        return torch.einsum("bt,bth->bh", self._weights(states, keep), states)


@register("last_2_layer_mix")
class Last2LayerMixPooling(Pooling):
    """Learned mix of the last two layers, then masked mean.

    ``mix = softmax(l)[0] * all_hidden_states[-2] + softmax(l)[1] * all_hidden_states[-1]``
    with two learned logits ``l`` (start at 0: an equal mix), then the mean over real tokens.
    """

    needs_all_hidden_states = True

    def __init__(self, hidden_size: int, **kw: object) -> None:
        super().__init__(hidden_size, **kw)
        self.layer_logits = nn.Parameter(torch.zeros(2))

    def forward(self, hidden_states, attention_mask, all_hidden_states=None):
        if all_hidden_states is None or len(all_hidden_states) < 2:
            raise ValueError(
                "last_2_layer_mix pooling needs all_hidden_states with at least two entries "
                "(the model passes them because needs_all_hidden_states is True)"
            )
        keep = _keep(attention_mask)
        w = torch.softmax(self.layer_logits, dim=0).to(hidden_states.dtype)
        below = all_hidden_states[-2].masked_fill(~keep, 0.0)
        top = all_hidden_states[-1].masked_fill(~keep, 0.0)
        return masked_mean(w[0] * below + w[1] * top, attention_mask)


def build_pooling(name: str, hidden_size: int, **kwargs: object) -> Pooling:
    try:
        cls = POOLING[name]
    except KeyError:
        raise ValueError(f"unknown pooling {name!r}; choose one of {sorted(POOLING)}") from None
    return cls(hidden_size, **kwargs)
