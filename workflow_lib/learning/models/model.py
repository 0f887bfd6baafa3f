"""The classifier: shared encoder -> criteria head (one logit per symptom, or per pair) and an
optional evidence-span head, independent or coupled. With ``training.criteria_from: sentences`` assemble
builds the sentence model instead (models/sentences.py: the criteria head scores every sentence)."""

from __future__ import annotations

import torch
from torch import nn

from workflow_lib.config import Encoder, Training
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.models.heads import build_head
from workflow_lib.learning.models.pooling import build_pooling
from workflow_lib.learning.models.sentences import SentenceAggregator, SentencePooling
from workflow_lib.symptoms import SYMPTOMS


class Coupler(nn.Module):
    """Combine the criteria vector (B, H) with an evidence vector pooled from the token states
    weighted by the evidence head's token scores (coupled multi-task mode).

    concat -> (B, 2H); add -> c + e; mean -> (c + e) / 2; weighted_sum -> a*c + b*e with learned
    scalars a, b (init 1); weighted_mean -> softmax([a, b]) weighted mean (init 1/2 each).
    """

    METHODS = ("concat", "add", "mean", "weighted_sum", "weighted_mean")

    def __init__(self, method: str, pooling: nn.Module) -> None:
        super().__init__()
        if method not in self.METHODS:
            raise ValueError(f"unknown coupling {method!r}; choose one of {', '.join(self.METHODS)}")
        self.method = method
        self.pooling = pooling
        self.weights = nn.Parameter(
            torch.ones(2) if method == "weighted_sum" else torch.zeros(2),
            requires_grad=method in ("weighted_sum", "weighted_mean"),
        )

    def output_size(self, hidden: int) -> int:
        return 2 * hidden if self.method == "concat" else hidden

    def forward(
        self, criteria_vec: torch.Tensor, token_states: torch.Tensor, token_scores: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        weighted = token_states * token_scores.unsqueeze(-1).to(token_states.dtype)
        ev = self.pooling(weighted, mask.long(), None)
        if self.method == "concat":
            return torch.cat([criteria_vec, ev], dim=-1)
        if self.method == "add":
            return criteria_vec + ev
        if self.method == "mean":
            return (criteria_vec + ev) / 2
        if self.method == "weighted_sum":
            return self.weights[0] * criteria_vec + self.weights[1] * ev
        w = torch.softmax(self.weights, dim=0)
        return w[0] * criteria_vec + w[1] * ev


class WindowAggregator(nn.Module):
    """Fold the windows of each post into the post (training.window_aggregation).

    ``max`` / ``mean``: of the window logits (the criteria head runs per window); ``attention``: a
    learned score per pooled window embedding, softmax over the post's windows, the weighted sum
    fed to the criteria head. ``rows`` (W,) gives each window's post (0 .. n - 1, consecutive).
    """

    METHODS = ("max", "mean", "attention")

    def __init__(self, method: str, in_features: int) -> None:
        super().__init__()
        if method not in self.METHODS:
            raise ValueError(f"unknown training.window_aggregation {method!r}; choose one of {', '.join(self.METHODS)}")
        self.method = method
        self.score = (
            nn.Sequential(nn.Linear(in_features, in_features), nn.Tanh(), nn.Linear(in_features, 1))
            if method == "attention"
            else None
        )

    def forward(self, pooled: torch.Tensor, rows: torch.Tensor, head: nn.Module) -> torch.Tensor:
        n = int(rows[-1]) + 1 if len(rows) else 0
        if self.method == "attention":
            x = pooled.float()
            s = self.score(x).squeeze(-1).float()
            top = torch.full((n,), float("-inf"), device=s.device).scatter_reduce(
                0, rows, s, "amax", include_self=False
            )
            w = torch.exp(s - top[rows])
            w = w / torch.zeros(n, device=s.device).index_add(0, rows, w)[rows]
            return head(torch.zeros(n, x.shape[1], device=x.device).index_add(0, rows, w.unsqueeze(1) * x))
        logits = head(pooled).float()
        index = rows.unsqueeze(1).expand(-1, logits.shape[1])
        return torch.zeros(n, logits.shape[1], device=logits.device).scatter_reduce(
            0, index, logits, "amax" if self.method == "max" else "mean", include_self=False
        )


class CriteriaClassifier(nn.Module):
    """Shared encoder -> criteria head (always) and evidence head (optional).

    ``forward(input_ids, attention_mask, token_type_ids=None, eligible=None, sentence_ids=None,
    window_rows=None)`` returns ``{"criteria": logits (B, n_labels), "evidence": head outputs or None}``.
    ``eligible`` marks the post tokens an evidence span may cover (default: every real token);
    ``sentence_ids`` maps tokens to post sentences (default: one sentence). With ``window_rows``
    (W,) the W inputs are windows of B = window_rows[-1] + 1 posts: the criteria logits are per post
    (``window_aggregator``), the evidence outputs stay per window.
    """

    def __init__(
        self,
        encoder: nn.Module,
        pooling: nn.Module,
        head: nn.Module,
        n_labels: int,
        max_length: int | None = None,
        evidence_head: nn.Module | None = None,
        coupler: Coupler | None = None,
        window_aggregator: WindowAggregator | None = None,
    ) -> None:
        super().__init__()
        self.window_aggregator = window_aggregator
        self.encoder = encoder
        self.pooling = pooling
        self.head = head
        self.evidence_head = evidence_head
        self.coupler = coupler
        self.n_labels = n_labels
        self.max_length = max_length
        if coupler is not None and evidence_head is None:
            raise ValueError("a coupled model needs an evidence head")

    def encode(self, input_ids, attention_mask, token_type_ids=None):
        want_all = self.pooling.needs_all_hidden_states
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "return_dict": True}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if want_all:
            kwargs["output_hidden_states"] = True
        out = self.encoder(**kwargs)
        return out.last_hidden_state, (out.hidden_states if want_all else None)

    # -- frozen-bottom cache: run the frozen layers once, train only the top -----------------
    def frozen_depth(self) -> int:
        """How many bottom transformer layers (after the embeddings) have no trainable parameter and
        can be run once and cached: 0 when the embeddings train, when the pooling needs every
        layer's states, or when the encoder's layers cannot be driven one by one."""
        if self.pooling.needs_all_hidden_states or not hasattr(self.encoder, "get_extended_attention_mask"):
            return 0
        try:
            emb, layers = encoder_layers(self.encoder)
        except ValueError:
            return 0
        if emb is None or any(p.requires_grad for p in emb.parameters()):
            return 0
        k = 0
        for layer in layers:
            if any(p.requires_grad for p in layer.parameters()):
                break
            k += 1
        return min(k, len(layers))

    def bottom_states(self, k: int, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Token states after the embeddings and the lowest ``k`` layers (call in eval mode)."""
        emb, layers = encoder_layers(self.encoder)
        kwargs = {"input_ids": input_ids}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        h = emb(**kwargs)
        ext = self.encoder.get_extended_attention_mask(attention_mask, attention_mask.shape)
        for layer in layers[:k]:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        return h

    def forward_from(self, k: int, states, attention_mask, eligible=None, sentence_ids=None, window_rows=None) -> dict:
        """The model's output given the states after layer ``k`` (see bottom_states)."""
        _, layers = encoder_layers(self.encoder)
        ext = self.encoder.get_extended_attention_mask(attention_mask, attention_mask.shape)
        h = states
        for layer in layers[k:]:
            out = layer(h, attention_mask=ext)
            h = out[0] if isinstance(out, tuple) else out
        return self.heads(h, attention_mask, None, eligible, sentence_ids, window_rows)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        eligible: torch.Tensor | None = None,
        sentence_ids: torch.Tensor | None = None,
        window_rows: torch.Tensor | None = None,
    ) -> dict:
        states, all_states = self.encode(input_ids, attention_mask, token_type_ids)
        return self.heads(states, attention_mask, all_states, eligible, sentence_ids, window_rows)

    def heads(
        self, states, attention_mask, all_states=None, eligible=None, sentence_ids=None, window_rows=None
    ) -> dict:
        pooled = self.pooling(states, attention_mask, all_states)
        evidence = None
        if self.evidence_head is not None:
            if eligible is None:
                eligible = attention_mask.bool()
            if sentence_ids is None:
                sentence_ids = torch.where(eligible, 0, -1)
            evidence = self.evidence_head(states, eligible, sentence_ids)
            if self.coupler is not None:
                pooled = self.coupler(pooled, states, self.evidence_head.token_scores(evidence), eligible)
        if window_rows is not None:
            if self.window_aggregator is None:
                raise ValueError("window inputs need a model built with training.long_posts: windows")
            return {"criteria": self.window_aggregator(pooled, window_rows, self.head), "evidence": evidence}
        return {"criteria": self.head(pooled), "evidence": evidence}


class SentenceClassifier(CriteriaClassifier):
    """Shared encoder -> sentence logits (criteria head over each sentence's pooled tokens) -> post logits.

    ``forward(input_ids, attention_mask, token_type_ids=None, *, unit_ids, unit_rows)``: the W windows of a
    batch with ``unit_ids`` (W, T), the batch sentence of each token (-1: pooled nowhere, e.g. special tokens,
    padding and the tokens of a sentence read in another window), and ``unit_rows`` (U,), the post of each
    sentence (0 .. n - 1). Returns ``{"criteria": post logits (n, 9), "sentences": sentence logits (U, 9),
    "evidence": None}``. The frozen-layer cache works as for the post model (bottom_states / forward_from).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        n_labels: int,
        aggregator: SentenceAggregator,
        max_length: int | None = None,
    ) -> None:
        super().__init__(encoder, SentencePooling(), head, n_labels, max_length=max_length)
        self.sentence_aggregator = aggregator

    def forward(self, input_ids, attention_mask, token_type_ids=None, *, unit_ids, unit_rows) -> dict:
        def run(rows, width):
            types = None if token_type_ids is None else token_type_ids[rows, :width]
            return self.encode(input_ids[rows, :width], attention_mask[rows, :width], types)[0]

        return self.heads(by_length(run, attention_mask), unit_ids, unit_rows)

    def forward_from(self, k: int, states, attention_mask, *, unit_ids, unit_rows) -> dict:
        _, layers = encoder_layers(self.encoder)

        def run(rows, width):
            mask = attention_mask[rows, :width]
            ext = self.encoder.get_extended_attention_mask(mask, mask.shape)
            h = states[rows, :width]
            for layer in layers[k:]:
                out = layer(h, attention_mask=ext)
                h = out[0] if isinstance(out, tuple) else out
            return h

        return self.heads(by_length(run, attention_mask), unit_ids, unit_rows)

    def heads(self, states, unit_ids, unit_rows) -> dict:
        vectors = self.pooling(states, unit_ids, len(unit_rows))
        logits = self.head(vectors).float()
        return {
            "criteria": self.sentence_aggregator(logits, unit_rows, vectors),
            "sentences": logits,
            "evidence": None,
        }


LENGTH_GROUP = 32  # windows per encoder call when the sentence model's windows are run by length


def by_length(run, attention_mask: torch.Tensor, group: int | None = None) -> torch.Tensor:
    """The token states (W, T, H) of W windows (``attention_mask`` (W, T)), as one padded call gives them, from
    calls ``run(rows, width)`` -> states (len(rows), width, H) of windows ``rows`` cut to ``width`` tokens, made
    on ``group`` (default LENGTH_GROUP) windows of similar length at a time (sorted by length, each call cut to its longest window).

    Sentences read alone differ in length several-fold, so one call padded to a batch's longest sentence computes
    mostly padding; the grouped calls give the same states on every real token (padding is masked) and zeros past
    each group's longest window, which nothing pools. One call when the windows fit in one group."""
    n, width = attention_mask.shape
    group = group or LENGTH_GROUP
    if n <= group:
        return run(torch.arange(n, device=attention_mask.device), width)
    lengths = attention_mask.sum(dim=1)
    out = None
    for rows in torch.argsort(lengths, descending=True).split(group):
        cut = int(lengths[rows].max())
        h = run(rows, cut)
        if out is None:
            out = h.new_zeros((n, width, h.shape[-1]))
        out[rows, :cut] = h
    return out


def hidden_size_of(encoder: nn.Module) -> int:
    cfg = encoder.config
    for attr in ("hidden_size", "d_model", "dim"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError(f"cannot tell the hidden size of {type(encoder).__name__}")


def encoder_layers(encoder: nn.Module) -> tuple[nn.Module | None, nn.ModuleList]:
    """(embeddings, transformer layers) of a BERT-, RoBERTa-, ELECTRA- or DistilBERT-style encoder."""
    emb = getattr(encoder, "embeddings", None)
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        mod = encoder
        for attr in path.split("."):
            mod = getattr(mod, attr, None)
            if mod is None:
                break
        if isinstance(mod, nn.ModuleList):
            return emb, mod
    raise ValueError(
        f"cannot find the transformer layers of {type(encoder).__name__} to freeze; "
        f"set training.freeze_layers: 0 for this encoder"
    )


def freeze_bottom(encoder: nn.Module, n_layers: int) -> int:
    """Freeze the embeddings and the lowest ``n_layers`` transformer layers; return the layer count.

    Gradients then stop at the first trainable layer, so a step costs the forward pass plus
    the backward pass of the top layers only.
    """
    if n_layers <= 0:
        return 0
    emb, layers = encoder_layers(encoder)
    if n_layers > len(layers):
        raise ValueError(
            f"training.freeze_layers is {n_layers} but the encoder has {len(layers)} layers; use at most {len(layers)}"
        )
    for module in ([emb] if emb is not None else []) + list(layers[:n_layers]):
        for p in module.parameters():
            p.requires_grad_(False)
    return n_layers


def n_outputs(train_cfg: Training) -> int:
    """Criteria outputs per input row: 9 for multi_label, 1 (present/absent) for binary_pairs."""
    return 1 if train_cfg.input_format == "binary_pairs" else len(SYMPTOMS)


def assemble(
    encoder: nn.Module, train_cfg: Training, n_labels: int | None = None, max_length: int | None = None
) -> CriteriaClassifier:
    """Wrap an encoder with the pooling, heads (and LoRA) named in ``train_cfg`` (fresh head weights)."""
    n_labels = n_outputs(train_cfg) if n_labels is None else int(n_labels)
    hidden = hidden_size_of(encoder)
    if train_cfg.finetune == "lora":  # before freezing, so freeze_layers also freezes the low adapters
        from workflow_lib.learning.models.lora import apply_lora, lora_kwargs

        encoder = apply_lora(encoder, **lora_kwargs(train_cfg))
    freeze_bottom(encoder, train_cfg.freeze_layers)
    if train_cfg.criteria_from == "sentences":
        return _assemble_sentences(encoder, train_cfg, n_labels, hidden, max_length)
    pooling = build_pooling(train_cfg.pooling, hidden)
    evidence_head = coupler = None
    in_features = pooling.output_size
    if train_cfg.evidence_task:
        from workflow_lib.learning.models.evidence_heads import build_evidence_head

        evidence_head = build_evidence_head(
            train_cfg.evidence_head, hidden, hidden=train_cfg.head_hidden, dropout=train_cfg.dropout
        )
        if train_cfg.multitask == "coupled":
            coupler = Coupler(train_cfg.coupling, build_pooling(train_cfg.coupling_pooling, hidden))
            in_features = coupler.output_size(in_features)
    head = build_head(train_cfg.head, in_features, n_labels, hidden=train_cfg.head_hidden, dropout=train_cfg.dropout)
    aggregator = (
        WindowAggregator(train_cfg.window_aggregation, in_features) if train_cfg.long_posts == "windows" else None
    )
    return CriteriaClassifier(
        encoder,
        pooling,
        head,
        n_labels,
        max_length=max_length,
        evidence_head=evidence_head,
        coupler=coupler,
        window_aggregator=aggregator,
    )


def _assemble_sentences(encoder: nn.Module, train_cfg: Training, n_labels: int, hidden: int, max_length: int | None):
    """The sentence model (models/sentences.py): the criteria head over each sentence, sentence logits
    aggregated per post by training.sentence_aggregation."""
    head = build_head(train_cfg.head, hidden, n_labels, hidden=train_cfg.head_hidden, dropout=train_cfg.dropout)
    aggregator = SentenceAggregator(train_cfg.sentence_aggregation, hidden, n_labels)
    return SentenceClassifier(encoder, head, n_labels, aggregator, max_length=max_length)


def build_model(spec: Encoder, train_cfg: Training, n_labels: int | None = None):
    """Return ``(CriteriaClassifier, tokenizer)``: pretrained (or tiny) encoder + new pooling/head."""
    encoder, tokenizer = load_encoder(spec)
    model = assemble(encoder, train_cfg, n_labels, max_length=spec.max_length)
    return model, tokenizer
