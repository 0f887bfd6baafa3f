"""The criteria classifier: encoder -> pooling -> head -> one logit per symptom."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from workflow_lib.models.encoders import load_encoder
from workflow_lib.models.heads import build_head
from workflow_lib.models.pooling import build_pooling
from workflow_lib.symptoms import SYMPTOMS


class CriteriaClassifier(nn.Module):
    """``forward(input_ids, attention_mask, token_type_ids=None) -> logits (B, n_labels)``."""

    def __init__(self, encoder: nn.Module, pooling: nn.Module, head: nn.Module, n_labels: int,
                 max_length: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.head = head
        self.n_labels = n_labels
        self.max_length = max_length

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        want_all = self.pooling.needs_all_hidden_states
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "return_dict": True}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if want_all:
            kwargs["output_hidden_states"] = True
        out = self.encoder(**kwargs)
        pooled = self.pooling(out.last_hidden_state, attention_mask,
                              out.hidden_states if want_all else None)
        return self.head(pooled)


def hidden_size_of(encoder: nn.Module) -> int:
    cfg = encoder.config
    for attr in ("hidden_size", "d_model", "dim"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError(f"cannot tell the hidden size of {type(encoder).__name__}")


def assemble(encoder: nn.Module, train_cfg: Mapping[str, Any], n_labels: int = len(SYMPTOMS),
             max_length: int | None = None) -> CriteriaClassifier:
    """Wrap an encoder with the pooling and head named in ``train_cfg`` (fresh head weights)."""
    hidden = hidden_size_of(encoder)
    pooling = build_pooling(train_cfg.get("pooling", "mean"), hidden)
    head = build_head(train_cfg.get("head", "linear"), pooling.output_size, n_labels,
                      hidden=int(train_cfg.get("head_hidden", 256)), dropout=float(train_cfg.get("dropout", 0.1)))
    return CriteriaClassifier(encoder, pooling, head, n_labels, max_length=max_length)


def build_model(spec: Mapping[str, Any], train_cfg: Mapping[str, Any], n_labels: int = len(SYMPTOMS)):
    """Return ``(CriteriaClassifier, tokenizer)``: pretrained (or tiny) encoder + new pooling/head."""
    encoder, tokenizer = load_encoder(spec)
    model = assemble(encoder, train_cfg, n_labels, max_length=int(spec.get("max_length", 128)))
    return model, tokenizer
