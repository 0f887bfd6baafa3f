"""The criteria classifier: encoder -> pooling -> head -> one logit per symptom."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from workflow_lib.config import validate_training
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
    raise ValueError(f"cannot find the transformer layers of {type(encoder).__name__} to freeze; "
                     f"set training.freeze_layers: 0 for this encoder")


def freeze_bottom(encoder: nn.Module, n_layers: int) -> int:
    """Freeze the embeddings and the lowest ``n_layers`` transformer layers; return the layer count.

    Gradients then stop at the first trainable layer, so a step costs the forward pass plus
    the backward pass of the top layers only.
    """
    if n_layers <= 0:
        return 0
    emb, layers = encoder_layers(encoder)
    if n_layers > len(layers):
        raise ValueError(f"training.freeze_layers is {n_layers} but the encoder has {len(layers)} layers; "
                         f"use at most {len(layers)}")
    for module in ([emb] if emb is not None else []) + list(layers[:n_layers]):
        for p in module.parameters():
            p.requires_grad_(False)
    return n_layers


def assemble(encoder: nn.Module, train_cfg: Mapping[str, Any], n_labels: int = len(SYMPTOMS),
             max_length: int | None = None) -> CriteriaClassifier:
    """Wrap an encoder with the pooling and head named in ``train_cfg`` (fresh head weights)."""
    train_cfg = validate_training(train_cfg)
    hidden = hidden_size_of(encoder)
    freeze_bottom(encoder, int(train_cfg["freeze_layers"]))
    pooling = build_pooling(train_cfg["pooling"], hidden)
    head = build_head(train_cfg["head"], pooling.output_size, n_labels,
                      hidden=int(train_cfg["head_hidden"]), dropout=float(train_cfg["dropout"]))
    return CriteriaClassifier(encoder, pooling, head, n_labels, max_length=max_length)


def build_model(spec: Mapping[str, Any], train_cfg: Mapping[str, Any], n_labels: int = len(SYMPTOMS)):
    """Return ``(CriteriaClassifier, tokenizer)``: pretrained (or tiny) encoder + new pooling/head."""
    encoder, tokenizer = load_encoder(spec)
    model = assemble(encoder, train_cfg, n_labels, max_length=int(spec.get("max_length", 128)))
    return model, tokenizer
