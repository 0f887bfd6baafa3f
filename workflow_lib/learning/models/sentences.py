"""The parts of the sentence model (``training.criteria_from: sentences``; model.SentenceClassifier puts them
together): every sentence of a post gets nine logits, and the post's logits, its decisions and its evidence all
come from those scores.

A post's sentences are read in its windows (examples.py decides, where the windows are built, the one window
that reads each sentence: the window holding it whole, or most of it, so a sentence always sees its context;
with ``training.sentence_context: alone`` each sentence is encoded on its own instead). The token states of a sentence's tokens in that window are averaged (:class:`SentencePooling`, the tokens
mapped from the sentence's character span through the tokenizer's offsets) and the criteria head
(training.head) turns the vector into nine sentence logits. :class:`SentenceAggregator` folds a post's sentence
logits into its nine post logits (training.sentence_aggregation), per symptom:

* ``max``: ``max_i x_i`` (the post is as sure as its surest sentence; the gradient reaches the top sentence);
* ``logsumexp``: ``log sum_i exp(x_i)``, a smooth max (every sentence gets gradient, the surest most; it is at
  least the max and grows by up to log(n) with n sentences);
* ``noisy_or``: ``p = 1 - prod_i (1 - p_i)`` with ``p_i = sigmoid(x_i)`` (the post shows the symptom unless no
  sentence does), returned as the logit ``log p - log(1 - p)``, computed from ``log(1 - p) = -sum_i
  softplus(x_i)`` without forming p, so it is accurate and finite from very negative to very positive logits
  (at float32's floor, sentences all below about -100, the post's logit stays about -87, not -inf);
* ``attention``: ``sum_i a_i x_i`` with ``a = softmax_i(s_i)`` over the post's sentences and ``s_i`` a learned
  score of the sentence vector per symptom (Linear -> tanh -> Linear to 9); the last layer starts at zero, so
  the untrained attention is the mean.

Every aggregation is differentiable. The training loss (training.py) is the configured criteria loss
(training.loss) on the post logits plus ``training.sentence_loss_weight`` x :func:`sentence_loss` on the
sentences whose label is known (the rule: examples.sentence_targets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AGGREGATIONS", "SentencePooling", "SentenceAggregator", "sentence_loss"]

AGGREGATIONS = ("max", "logsumexp", "noisy_or", "attention")
LOG2 = 0.6931471805599453


class SentencePooling(nn.Module):
    """Mean of the token states of each sentence: ``states`` (W, T, H) and ``unit_ids`` (W, T), the batch
    sentence (0 .. n_units - 1) each token is pooled into or -1, give (n_units, H) in float32; a sentence
    without a token pools to zeros (the criteria head then gives it its bias)."""

    needs_all_hidden_states = False  # the frozen-layer cache may run the bottom layers once

    def forward(self, states: torch.Tensor, unit_ids: torch.Tensor, n_units: int) -> torch.Tensor:
        keep = unit_ids >= 0
        ids = unit_ids[keep]
        x = states[keep].float()
        sums = torch.zeros((n_units, states.shape[-1]), dtype=x.dtype, device=x.device).index_add_(0, ids, x)
        counts = torch.bincount(ids, minlength=n_units).clamp(min=1).to(x.dtype)
        return sums / counts.unsqueeze(1)


def _row_max(x: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    index = rows.unsqueeze(1).expand_as(x)
    return torch.full((n, x.shape[1]), float("-inf"), dtype=x.dtype, device=x.device).scatter_reduce(
        0, index, x, "amax", include_self=False
    )


def _row_sum(x: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    return torch.zeros((n, x.shape[1]), dtype=x.dtype, device=x.device).index_add(0, rows, x)


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(-a))`` for ``a > 0``, accurate on both sides of log 2 (Maechler 2012); ``a`` is kept
    at least the smallest normal float so a sentence-free limit stays finite."""
    a = a.clamp(min=torch.finfo(a.dtype).tiny)
    small = a < LOG2
    # each branch sees only inputs it is exact for, so the branch torch.where drops has a finite gradient too
    near = torch.log(-torch.expm1(-torch.where(small, a, LOG2)))
    far = torch.log1p(-torch.exp(-torch.where(small, 1.0, a)))
    return torch.where(small, near, far)


class SentenceAggregator(nn.Module):
    """Sentence logits (U, C) of n posts -> post logits (n, C) (training.sentence_aggregation; module docstring).

    ``rows`` (U,) gives each sentence's post (0 .. n - 1, consecutive, every post at least one sentence);
    ``vectors`` (U, H) the pooled sentence vectors (read by ``attention`` only). Computed in float32."""

    def __init__(self, method: str, in_features: int, n_labels: int) -> None:
        super().__init__()
        if method not in AGGREGATIONS:
            raise ValueError(
                f"unknown training.sentence_aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}"
            )
        self.method = method
        self.score = None
        if method == "attention":
            self.score = nn.Sequential(nn.Linear(in_features, in_features), nn.Tanh(), nn.Linear(in_features, n_labels))
            nn.init.zeros_(self.score[2].weight)
            nn.init.zeros_(self.score[2].bias)

    def forward(self, logits: torch.Tensor, rows: torch.Tensor, vectors: torch.Tensor | None = None) -> torch.Tensor:
        x = logits.float()
        n = int(rows[-1]) + 1 if len(rows) else 0
        if self.method == "max":
            return _row_max(x, rows, n)
        if self.method == "logsumexp":
            top = _row_max(x, rows, n).detach()  # a constant shift: exact, and exp never overflows
            return top + torch.log(_row_sum(torch.exp(x - top[rows]), rows, n))
        if self.method == "noisy_or":
            log_none = _row_sum(-F.softplus(x), rows, n)  # log(1 - p) = sum_i log(1 - p_i) <= 0
            return _log1mexp(-log_none) - log_none  # logit(p) = log(1 - exp(log_none)) - log_none
        if vectors is None:
            raise ValueError("attention over sentences needs the sentence vectors")
        s = self.score(vectors.float()).float()
        w = torch.exp(s - _row_max(s, rows, n).detach()[rows])
        w = w / _row_sum(w, rows, n)[rows]
        return _row_sum(w * x, rows, n)


def balanced_pos_weight(targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(9,) per-symptom weight of an evidence sentence (training.sentence_pos_weight: balanced): the known negative
    cells over the known positive cells of ``targets``/``weights`` (SentenceUnits of the training posts), 1 for a
    symptom without both."""
    known = weights > 0
    pos = ((targets > 0.5) & known).sum(dim=0).double()
    neg = ((targets <= 0.5) & known).sum(dim=0).double()
    ok = (pos > 0) & (neg > 0)
    return torch.where(ok, neg / pos.clamp(min=1), torch.ones_like(pos)).float()


def sentence_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean BCE over the sentence cells (sentences x symptoms): ``sum(w * bce(x, t)) / sum(w)``,
    0 when no cell counts; computed in float32. Targets and weights follow examples.sentence_targets: an
    evidence sentence (code 1) -> target 1; a sentence a clinician rejected for the symptom (code -1) ->
    target 0 with weight training.hard_negative_weight; an unannotated sentence of a post without the symptom
    -> target 0 (no sentence of such a post shows it); an unannotated sentence of a post with the symptom ->
    weight 0, no loss (which of its sentences show it beyond the annotated ones is unknown). ``pos_weight`` (9,)
    multiplies the weight of the evidence cells (:func:`balanced_pos_weight`)."""
    x = logits.float()
    w = weights.to(x.dtype)
    if pos_weight is not None:
        t = targets.to(x.dtype)
        w = w * (1 + (pos_weight.to(x) - 1) * t)
    total = w.sum()
    if not bool(total > 0):
        return x.sum() * 0.0  # keeps the graph, adds nothing
    raw = F.binary_cross_entropy_with_logits(x, targets.to(x.dtype), reduction="none")
    return (raw * w).sum() / total
