"""Evidence-binding heads: token states (B, T, H) -> evidence span(s) of each example, or none.

``EVIDENCE_HEADS`` maps a config name to a class; add one with ``@register("name")``. Every
head takes ``(hidden_size, *, hidden, dropout, max_span_len, pos_weight)`` and ignores settings it
does not use, and has the same four methods:

``forward(token_states, mask, sentence_ids) -> dict``
    ``token_states`` (B, T, H); ``mask`` (B, T) bool, True for the *eligible* tokens (the post
    segment: no special tokens, padding or second segment of a text pair); ``sentence_ids``
    (B, T) long, the post sentence of each token or -1 (:func:`workflow_lib.learning.spans.sentence_ids`).
    States at non-eligible positions are zeroed first, so nothing there (not even inf/NaN)
    reaches an eligible output or a decode, and no gradient flows back to them. The dict always
    holds ``"mask"``; masked logits are filled with ``-1e4``.
``loss(out, tags, sentence_ids) -> scalar``
    ``tags`` (B, T) long BIO (0=O, 1=B, 2=I, -100 ignored; :func:`workflow_lib.learning.spans.char_spans_to_tags`).
    Each example's loss is a mean over its own positions/pairs/sentences and the batch loss is
    the mean over the examples that have at least one eligible token (0 if none), so long posts
    do not outweigh short ones. An all-O example is a *null* example: all its targets are 0,
    which teaches the head to predict no span.
``token_scores(out) -> (B, T)``
    Probability in [0, 1] that each token is inside evidence, exactly 0 where ``mask`` is False,
    differentiable (for pooling an evidence representation in a multi-task model).
``decode(out, mask, sentence_ids, threshold=0.5) -> list[list[(start, end)]]``
    Token spans (end exclusive) per example in increasing order, never overlapping; ``[]`` is the
    null span. Convert with :func:`workflow_lib.learning.spans.token_spans_to_char_spans`.

Decoding rules (``p > threshold`` is strict):

* ``start_end_linear`` / ``start_end_mlp``: starts = eligible tokens with P(start) > threshold,
  ends likewise. Going left to right, each start that is not inside the previous span is paired
  with the nearest end at or after it within ``max_span_len`` tokens; a start with no such end is
  dropped. Null when no start or no pair passes.
* ``biaffine``: all (start, end) pairs of eligible tokens with ``0 <= end - start < max_span_len``
  and P > threshold, accepted greedily by decreasing probability when they overlap no accepted
  span.
* ``bio_crf``: Viterbi path over the eligible tokens (``threshold`` is unused); spans per
  :func:`workflow_lib.learning.spans.tags_to_token_spans` (``O I`` opens a span); all-O is null.
* ``sentence_reranker``: every sentence with P > threshold gives the span from its first to its
  last eligible token (adjacent sentences stay separate spans; the evidence metrics merge spans
  separated only by whitespace).
"""

from __future__ import annotations

import bisect

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workflow_lib.learning.models.registry import registrar
from workflow_lib.learning.spans import B, I, tags_to_token_spans

EVIDENCE_HEADS: dict[str, type[EvidenceHead]] = {}

register = registrar(EVIDENCE_HEADS)

NEG = -1e4  # logit at masked positions: sigmoid ~ 0, finite so sums and softmaxes stay finite

__all__ = ["EVIDENCE_HEADS", "EvidenceHead", "build_evidence_head", "gold_token_spans"]


# ------------------------------------------------------------------------------------------------ helpers


def gold_token_spans(tags: torch.Tensor) -> list[list[tuple[int, int]]]:
    """Gold token spans per example of a (B, T) BIO tag tensor (see ``tags_to_token_spans``)."""
    return [tags_to_token_spans(row) for row in tags.detach().cpu().tolist()]


def _bce_per_example(
    logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, pos_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example mean BCE over ``valid`` positions (any trailing shape) and which examples count."""
    pw = None if pos_weight == 1.0 else logits.new_tensor(pos_weight)
    raw = F.binary_cross_entropy_with_logits(logits, targets, reduction="none", pos_weight=pw)
    raw = raw * valid
    dims = tuple(range(1, raw.dim()))
    count = valid.sum(dim=dims)
    return raw.sum(dim=dims) / count.clamp(min=1), count > 0


def _batch_mean(per_example: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    w = counts.to(per_example.dtype)
    return (per_example * w).sum() / w.sum().clamp(min=1)


def _check(token_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if token_states.dim() != 3 or mask.shape != token_states.shape[:2]:
        raise ValueError(
            f"token_states must be (B, T, H) and mask (B, T); got {tuple(token_states.shape)} and {tuple(mask.shape)}"
        )
    return mask.bool()


def _mlp(hidden_size: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(hidden_size, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out)
    )


class EvidenceHead(nn.Module):
    name = "base"
    uses_sentence_ids = False  # True when forward/loss/decode read sentence_ids

    def __init__(
        self,
        hidden_size: int,
        *,
        hidden: int = 256,
        dropout: float = 0.1,
        max_span_len: int = 128,
        pos_weight: float = 1.0,
        **_: object,
    ) -> None:
        super().__init__()
        if max_span_len < 1:
            raise ValueError(f"max_span_len must be >= 1, got {max_span_len}")
        self.hidden_size = hidden_size
        self.max_span_len = int(max_span_len)
        self.pos_weight = float(pos_weight)

    def forward(self, token_states, mask, sentence_ids):  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, out, tags, sentence_ids):  # pragma: no cover - abstract
        raise NotImplementedError

    def token_scores(self, out):  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, out, mask, sentence_ids, threshold=0.5):  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ start/end


class _StartEndHead(EvidenceHead):
    """Per-token start, end and inside logits (B, T, 3); subclasses set ``self.net``.

    The inside channel is trained on B/I tags and gives ``token_scores``; start/end targets are
    the first/last token of each gold span.
    """

    def forward(self, token_states, mask, sentence_ids=None):
        mask = _check(token_states, mask)
        x = token_states.masked_fill(~mask.unsqueeze(-1), 0.0)
        logits = self.net(x).masked_fill(~mask.unsqueeze(-1), NEG)
        return {
            "start_logits": logits[..., 0],
            "end_logits": logits[..., 1],
            "inside_logits": logits[..., 2],
            "mask": mask,
        }

    def loss(self, out, tags, sentence_ids=None):
        valid = out["mask"] & (tags >= 0)
        start_t = torch.zeros_like(out["start_logits"])
        end_t = torch.zeros_like(start_t)
        for b, spans in enumerate(gold_token_spans(tags)):
            for s, e in spans:
                start_t[b, s] = 1.0
                end_t[b, e - 1] = 1.0
        inside_t = ((tags == B) | (tags == I)).to(start_t.dtype)
        logits = torch.stack([out["start_logits"], out["end_logits"], out["inside_logits"]], dim=-1)
        targets = torch.stack([start_t, end_t, inside_t], dim=-1)
        per_ex, counts = _bce_per_example(
            logits, targets, valid.unsqueeze(-1).expand_as(logits).to(logits.dtype), self.pos_weight
        )
        return _batch_mean(per_ex, counts)

    def token_scores(self, out):
        return torch.where(out["mask"], torch.sigmoid(out["inside_logits"]), 0.0)

    def decode(self, out, mask, sentence_ids=None, threshold=0.5):
        mask = mask.bool().cpu()
        ps = torch.sigmoid(out["start_logits"].detach()).cpu()
        pe = torch.sigmoid(out["end_logits"].detach()).cpu()
        result = []
        for b in range(mask.shape[0]):
            starts = torch.nonzero(mask[b] & (ps[b] > threshold)).flatten().tolist()
            ends = torch.nonzero(mask[b] & (pe[b] > threshold)).flatten().tolist()
            spans, taken = [], -1
            for s in starts:
                if s < taken:
                    continue
                k = bisect.bisect_left(ends, s)
                if k < len(ends) and ends[k] - s < self.max_span_len:
                    spans.append((s, ends[k] + 1))
                    taken = ends[k] + 1
            result.append(spans)
        return result


@register("start_end_linear")
class StartEndLinearHead(_StartEndHead):
    """dropout -> linear(3): start, end, inside logits per token."""

    def __init__(self, hidden_size, *, hidden=256, dropout=0.1, **kw):
        super().__init__(hidden_size, hidden=hidden, dropout=dropout, **kw)
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, 3))


@register("start_end_mlp")
class StartEndMLPHead(_StartEndHead):
    """dropout -> linear(hidden) -> GELU -> dropout -> linear(3): start, end, inside logits."""

    def __init__(self, hidden_size, *, hidden=256, dropout=0.1, **kw):
        super().__init__(hidden_size, hidden=hidden, dropout=dropout, **kw)
        self.net = _mlp(hidden_size, hidden, 3, dropout)


# ------------------------------------------------------------------------------------------------ biaffine


@register("biaffine")
class BiaffineHead(EvidenceHead):
    """Biaffine span scorer: ``s(i, j) = h_i^T U g_j + w.h_i + v.g_j + b`` with start/end MLP
    projections ``h``, ``g`` (size ``hidden``), one sigmoid per (start i, end j) pair.

    Only pairs of eligible tokens with ``0 <= j - i < max_span_len`` are valid (``pair_mask``);
    memory is O(B * T * T). Targets: 1 for (first, last) token of each gold span, 0 for every
    other valid pair. ``token_scores`` is the probability of the most probable valid pair covering
    the token (so every token of a decoded span scores above the threshold).
    """

    def __init__(self, hidden_size, *, hidden=256, dropout=0.1, **kw):
        super().__init__(hidden_size, hidden=hidden, dropout=dropout, **kw)
        self.start_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden), nn.GELU())
        self.end_proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden), nn.GELU())
        self.U = nn.Parameter(torch.empty(hidden, hidden))
        nn.init.xavier_uniform_(self.U)
        self.w_start = nn.Linear(hidden, 1)
        self.w_end = nn.Linear(hidden, 1, bias=False)

    def forward(self, token_states, mask, sentence_ids=None):
        mask = _check(token_states, mask)
        x = token_states.masked_fill(~mask.unsqueeze(-1), 0.0)
        h, g = self.start_proj(x), self.end_proj(x)
        scores = torch.bmm(h @ self.U, g.transpose(1, 2))  # (B, T, T): [b, start, end]
        scores = scores + self.w_start(h) + self.w_end(g).transpose(1, 2)
        t = mask.shape[1]
        pos = torch.arange(t, device=mask.device)
        width = pos.view(1, t) - pos.view(t, 1)  # end - start
        band = (width >= 0) & (width < self.max_span_len)
        pair_mask = band.unsqueeze(0) & mask.unsqueeze(2) & mask.unsqueeze(1)
        return {"span_logits": scores.masked_fill(~pair_mask, NEG), "pair_mask": pair_mask, "mask": mask}

    def loss(self, out, tags, sentence_ids=None):
        logits, pair_mask = out["span_logits"], out["pair_mask"]
        targets = torch.zeros_like(logits)
        for b, spans in enumerate(gold_token_spans(tags)):
            for s, e in spans:
                if e - 1 - s < self.max_span_len:  # longer gold spans cannot be represented
                    targets[b, s, e - 1] = 1.0
        valid = pair_mask & (tags >= 0).unsqueeze(2) & (tags >= 0).unsqueeze(1)
        per_ex, counts = _bce_per_example(logits, targets, valid.to(logits.dtype), self.pos_weight)
        return _batch_mean(per_ex, counts)

    def token_scores(self, out):
        p = torch.where(out["pair_mask"], torch.sigmoid(out["span_logits"]), 0.0)  # [b, i, j]
        best_start = torch.cummax(p, dim=1).values  # [b, t, j] = max over i <= t of p[b, i, j]
        t = p.shape[1]
        upper = torch.ones(t, t, dtype=torch.bool, device=p.device).triu()  # j >= t
        cover = torch.where(upper, best_start, 0.0).amax(dim=2)
        return torch.where(out["mask"], cover, 0.0)

    def decode(self, out, mask, sentence_ids=None, threshold=0.5):
        mask = mask.bool().cpu()
        probs = torch.sigmoid(out["span_logits"].detach()).cpu()
        pair_mask = out["pair_mask"].cpu() & mask.unsqueeze(2) & mask.unsqueeze(1)
        result = []
        for b in range(mask.shape[0]):
            cand = torch.nonzero(pair_mask[b] & (probs[b] > threshold))
            spans: list[tuple[int, int]] = []
            if len(cand):
                scores = probs[b][cand[:, 0], cand[:, 1]]
                order = torch.argsort(scores, descending=True, stable=True)
                taken = np.zeros(mask.shape[1], dtype=bool)
                free = int(mask[b].sum())
                for i, j in cand[order].tolist():
                    if not taken[i : j + 1].any():
                        taken[i : j + 1] = True
                        spans.append((i, j + 1))
                        free -= int(mask[b, i : j + 1].sum())
                        if free <= 0:
                            break
            result.append(sorted(spans))
        return result


# ------------------------------------------------------------------------------------------------ BIO + CRF


@register("bio_crf")
class BioCRFHead(EvidenceHead):
    """dropout -> linear(3) emissions -> linear-chain CRF over the O/B/I tags of the eligible tokens.

    ``torchcrf.CRF`` needs each sequence's mask to be a prefix (its first position on); we
    therefore *compact* each example: its eligible tokens are moved, in order, to the front of a
    (B, T', 3) emission tensor (T' = most eligible tokens in the batch), so eligible tokens that do
    not start at position 0 (a [CLS] token, a left-padded or text-pair input) or are not contiguous
    are handled, and non-eligible positions never enter the CRF. An example without eligible tokens
    gets one dummy position, excluded from the loss and decoded as [].

    Loss: the CRF negative log-likelihood of the gold tags divided by the example's number of
    eligible tokens (per-token NLL, comparable in scale to the BCE heads), averaged over examples.
    ``token_scores`` are the exact CRF marginals P(tag in {B, I}) by forward-backward.
    """

    def __init__(self, hidden_size, *, hidden=256, dropout=0.1, **kw):
        super().__init__(hidden_size, hidden=hidden, dropout=dropout, **kw)
        from torchcrf import CRF

        self.emit = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, 3))
        self.crf = CRF(3, batch_first=True)

    @staticmethod
    def _compact(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Index (B, T') of each example's eligible positions first, in order; compact mask; counts."""
        bsz, t = mask.shape
        n = mask.sum(dim=1)
        tc = max(1, int(n.max()) if bsz else 1)
        pos = torch.arange(t, device=mask.device).expand(bsz, t)
        key = torch.where(mask, pos, pos + t)
        index = torch.argsort(key, dim=1)[:, :tc]
        if index.shape[1] < tc:  # T == 0
            index = torch.zeros(bsz, tc, dtype=torch.long, device=mask.device)
        cmask = torch.arange(tc, device=mask.device).unsqueeze(0) < n.unsqueeze(1)
        cmask[:, 0] = True  # dummy first position for examples with no eligible token
        return index, cmask, n

    def forward(self, token_states, mask, sentence_ids=None):
        mask = _check(token_states, mask)
        x = token_states.masked_fill(~mask.unsqueeze(-1), 0.0)
        emissions = self.emit(x)
        index, cmask, n = self._compact(mask)
        compact = torch.gather(emissions, 1, index.unsqueeze(-1).expand(-1, -1, 3))
        compact = compact.masked_fill(~cmask.unsqueeze(-1), 0.0)
        return {
            "emissions": emissions.masked_fill(~mask.unsqueeze(-1), NEG),
            "compact_emissions": compact,
            "compact_index": index,
            "compact_mask": cmask,
            "n_eligible": n,
            "mask": mask,
        }

    def loss(self, out, tags, sentence_ids=None):
        mask, index, cmask, n = out["mask"], out["compact_index"], out["compact_mask"], out["n_eligible"]
        if ((tags < 0) & mask).any():
            raise ValueError(
                "bio_crf: tags are -100 at eligible positions; tags must be 0/1/2 exactly where mask is True"
            )
        ctags = torch.gather(tags, 1, index).masked_fill(~cmask, 0).clamp(min=0)
        ctags = torch.where((n > 0).unsqueeze(1), ctags, 0)
        llh = self.crf(out["compact_emissions"], ctags, mask=cmask, reduction="none")
        per_ex = -llh / n.clamp(min=1).to(llh.dtype)
        return _batch_mean(per_ex, n > 0)

    def token_scores(self, out):
        em, cmask = out["compact_emissions"], out["compact_mask"]
        start, end, trans = self.crf.start_transitions, self.crf.end_transitions, self.crf.transitions
        bsz, tc, _ = em.shape
        alphas = [start + em[:, 0]]
        for t in range(1, tc):
            nxt = torch.logsumexp(alphas[-1].unsqueeze(2) + trans + em[:, t].unsqueeze(1), dim=1)
            alphas.append(torch.where(cmask[:, t : t + 1], nxt, alphas[-1]))
        betas = [end.expand(bsz, 3)]
        for t in range(tc - 2, -1, -1):
            nxt = torch.logsumexp(trans + (em[:, t + 1] + betas[-1]).unsqueeze(1), dim=2)
            betas.append(torch.where(cmask[:, t + 1 : t + 2], nxt, end.expand(bsz, 3)))
        alpha = torch.stack(alphas, dim=1)
        beta = torch.stack(betas[::-1], dim=1)
        log_z = torch.logsumexp(alphas[-1] + end, dim=1)
        marg = torch.exp(alpha + beta - log_z.view(bsz, 1, 1))  # (B, T', 3)
        inside = (marg[..., B] + marg[..., I]).clamp(0.0, 1.0)
        inside = torch.where(cmask & (out["n_eligible"] > 0).unsqueeze(1), inside, 0.0)
        scores = torch.zeros(out["mask"].shape, dtype=inside.dtype, device=inside.device)
        scores = scores.scatter_add(1, out["compact_index"], inside)
        return torch.where(out["mask"], scores, 0.0)

    def decode(self, out, mask, sentence_ids=None, threshold=0.5):
        paths = self.crf.decode(out["compact_emissions"].detach(), mask=out["compact_mask"])
        index = out["compact_index"].cpu().tolist()
        n = out["n_eligible"].cpu().tolist()
        result = []
        for b, path in enumerate(paths):
            spans = tags_to_token_spans(path[: n[b]])
            result.append([(index[b][s], index[b][e - 1] + 1) for s, e in spans])
        return result


# ------------------------------------------------------------------------------------------------ sentences


@register("sentence_reranker")
class SentenceRerankerHead(EvidenceHead):
    """Scores whole post sentences: attention-pool the eligible tokens of each sentence
    (``sentence_ids``; tokens with id -1 belong to none), MLP -> one logit per sentence, sigmoid.

    A sentence's target is 1 when any of its tokens is tagged B or I (it overlaps a gold span).
    ``token_scores`` gives every token its sentence's probability (0 for id -1).
    """

    uses_sentence_ids = True

    def __init__(self, hidden_size, *, hidden=256, dropout=0.1, **kw):
        super().__init__(hidden_size, hidden=hidden, dropout=dropout, **kw)
        self.attn = nn.Linear(hidden_size, 1, bias=False)  # a bias would cancel in the softmax
        self.score = _mlp(hidden_size, hidden, 1, dropout)

    @staticmethod
    def _membership(mask, sentence_ids):
        sid = torch.where(mask, sentence_ids.long(), -1)
        n_sent = max(1, int(sid.max()) + 1) if sid.numel() else 1
        member = sid.unsqueeze(1) == torch.arange(n_sent, device=sid.device).view(1, n_sent, 1)  # (B, S, T)
        return sid, member

    def forward(self, token_states, mask, sentence_ids):
        mask = _check(token_states, mask)
        if sentence_ids is None or sentence_ids.shape != mask.shape:
            raise ValueError("sentence_reranker needs sentence_ids of shape (B, T)")
        x = token_states.masked_fill(~mask.unsqueeze(-1), 0.0)
        sid, member = self._membership(mask, sentence_ids)
        a = self.attn(x).squeeze(-1).unsqueeze(1).masked_fill(~member, NEG)  # (B, S, T)
        pooled = torch.softmax(a, dim=-1) @ x  # (B, S, H)
        sent_mask = member.any(dim=-1)
        logits = self.score(pooled).squeeze(-1).masked_fill(~sent_mask, NEG)
        return {"sentence_logits": logits, "sentence_mask": sent_mask, "token_sentence": sid, "mask": mask}

    def loss(self, out, tags, sentence_ids=None):
        sid, sent_mask = out["token_sentence"], out["sentence_mask"]
        member = sid.unsqueeze(1) == torch.arange(sent_mask.shape[1], device=sid.device).view(1, -1, 1)
        inside = ((tags == B) | (tags == I)) & out["mask"]
        targets = (member & inside.unsqueeze(1)).any(dim=-1).to(out["sentence_logits"].dtype)
        per_ex, counts = _bce_per_example(out["sentence_logits"], targets, sent_mask.to(targets.dtype), self.pos_weight)
        return _batch_mean(per_ex, counts)

    def token_scores(self, out):
        probs = torch.sigmoid(out["sentence_logits"])
        sid = out["token_sentence"]
        per_token = torch.gather(probs, 1, sid.clamp(min=0))
        return torch.where(out["mask"] & (sid >= 0), per_token, 0.0)

    def decode(self, out, mask, sentence_ids=None, threshold=0.5):
        mask = mask.bool().cpu()
        sid = torch.where(mask, out["token_sentence"].cpu(), -1)
        probs = torch.sigmoid(out["sentence_logits"].detach()).cpu()
        keep = (probs > threshold) & out["sentence_mask"].cpu()
        result = []
        for b in range(mask.shape[0]):
            spans = []
            for k in torch.nonzero(keep[b]).flatten().tolist():
                pos = torch.nonzero(sid[b] == k).flatten()
                if len(pos):
                    spans.append((int(pos[0]), int(pos[-1]) + 1))
            result.append(sorted(spans))
        return result


# ------------------------------------------------------------------------------------------------ factory


def build_evidence_head(
    name: str, hidden_size: int, *, hidden: int = 256, dropout: float = 0.1, **kwargs: object
) -> EvidenceHead:
    """An evidence head by registry name (``max_span_len``, ``pos_weight`` and others via kwargs)."""
    try:
        cls = EVIDENCE_HEADS[name]
    except KeyError:
        raise ValueError(f"unknown evidence head {name!r}; choose one of {sorted(EVIDENCE_HEADS)}") from None
    return cls(hidden_size, hidden=hidden, dropout=dropout, **kwargs)
