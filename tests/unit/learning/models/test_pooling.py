"""Pooling strategies: shapes, gradients, padding masking, determinism and values."""

from __future__ import annotations

import math

import pytest
import torch

from workflow_lib.learning.models.pooling import POOLING, build_pooling, masked_mean

NAMES = ["cls", "mean", "max", "attention", "last_2_layer_mix"]
B, T, H, LAYERS = 3, 5, 8, 3  # LAYERS hidden-state tensors: embeddings + 2 layers
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
PAD = MASK == 0


def _layers(seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, T, H, generator=g, requires_grad=True) for _ in range(LAYERS))


def _pool(pooling, layers, mask=MASK):
    all_states = layers if pooling.needs_all_hidden_states else None
    return pooling(layers[-1], mask, all_states)


def _inputs(pooling, layers):
    """The tensors a pooling reads: all layers if it asks for them, else the last one."""
    return layers[-2:] if pooling.needs_all_hidden_states else layers[-1:]


def _fresh(name):
    torch.manual_seed(0)
    pooling = build_pooling(name, H)
    with torch.no_grad():  # move learned parts off their neutral init so every path is exercised
        for p in pooling.parameters():
            p.copy_(torch.randn_like(p))
    return pooling


def test_registry_holds_all_strategies():
    assert set(POOLING) >= set(NAMES)
    assert POOLING["last_2_layer_mix"].needs_all_hidden_states
    assert not any(POOLING[n].needs_all_hidden_states for n in NAMES if n != "last_2_layer_mix")
    with pytest.raises(ValueError, match="unknown pooling 'nope'.*attention.*last_2_layer_mix.*max"):
        build_pooling("nope", H)


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_gradients_reach_parameters_and_input(name):
    pooling = _fresh(name)
    layers = _layers()
    out = _pool(pooling, layers)
    assert out.shape == (B, pooling.output_size) and pooling.output_size == H
    (out * torch.randn_like(out)).sum().backward()
    for p in pooling.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for x in _inputs(pooling, layers):
        assert x.grad is not None and x.grad.abs().sum() > 0
        assert x.grad[PAD].abs().sum() == 0  # padded positions get no gradient


@pytest.mark.parametrize("name", NAMES)
def test_padded_values_never_change_the_output(name):
    pooling = _fresh(name).eval()
    layers = _layers()
    with torch.no_grad():
        base = _pool(pooling, layers)
        for fill in (1e6, -1e6, float("inf"), float("nan")):
            changed = tuple(x.detach().clone() for x in layers)
            for x in changed:
                x[PAD] = fill
            assert torch.equal(_pool(pooling, changed), base), fill


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_rows_are_independent(name):
    pooling = _fresh(name).eval()
    layers = _layers()
    with torch.no_grad():
        a, b = _pool(pooling, layers), _pool(pooling, layers)
        assert torch.equal(a, b)
        # row 1 alone, cut to its real length, pools to the same vector
        alone = tuple(x[1:2, :3].detach() for x in layers)
        assert torch.allclose(_pool(pooling, alone, MASK[1:2, :3]), a[1:2], atol=1e-6)


@pytest.mark.parametrize("name", ["mean", "max", "attention", "last_2_layer_mix"])
def test_all_padding_row_pools_to_zeros(name):
    pooling = _fresh(name)
    layers = _layers()
    mask = MASK.clone()
    mask[2] = 0
    out = _pool(pooling, layers, mask)
    assert torch.equal(out[2], torch.zeros(H))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in pooling.parameters())


def test_max_pooling_takes_max_over_real_tokens_only():
    pooling = build_pooling("max", H)
    hs = _layers()[-1]
    out = pooling(hs, MASK)
    for i in range(B):
        n = int(MASK[i].sum())
        assert torch.equal(out[i], hs[i, :n].max(dim=0).values)
    # padding holding huge values never wins
    big = hs.detach().clone()
    big[PAD] = 1e9
    assert torch.equal(pooling(big, MASK), out.detach())
    # the gradient of each output dimension goes to exactly one real token
    out.sum().backward()
    assert torch.equal((hs.grad != 0).sum(dim=1), torch.ones(B, H, dtype=torch.long))


def test_attention_weights_are_a_masked_softmax_of_learned_scores():
    pooling = build_pooling("attention", H)
    hs = _layers()[-1].detach()
    # untrained (zero scorer): uniform weights over real tokens == mean pooling
    assert torch.allclose(pooling(hs, MASK), masked_mean(hs, MASK), atol=1e-6)
    with torch.no_grad():
        pooling.score.weight.copy_(torch.linspace(-1, 1, H).unsqueeze(0))
    w = pooling.weights(hs, MASK)
    assert w.shape == (B, T)
    assert torch.equal(w[PAD], torch.zeros(int(PAD.sum())))  # exactly zero, not just tiny
    assert torch.allclose(w.sum(dim=1), torch.ones(B))
    # row 1 by hand: softmax of w.h_t over its 3 real tokens
    scores = [float(hs[1, t] @ pooling.score.weight[0].detach()) for t in range(3)]
    z = sum(math.exp(s) for s in scores)
    assert w[1, :3].tolist() == pytest.approx([math.exp(s) / z for s in scores], rel=1e-5)
    assert torch.allclose(pooling(hs, MASK)[1], (w[1, :3, None] * hs[1, :3]).sum(0), atol=1e-6)


def test_last_2_layer_mix_weights_the_top_two_layers_then_means():
    pooling = build_pooling("last_2_layer_mix", H)
    layers = tuple(x.detach() for x in _layers())
    # starts as an equal mix
    want = masked_mean(0.5 * layers[-2] + 0.5 * layers[-1], MASK)
    assert torch.allclose(pooling(layers[-1], MASK, layers), want, atol=1e-6)
    # softmax([ln 3, 0]) = [0.75, 0.25]; the embeddings (layers[0]) are not used
    with torch.no_grad():
        pooling.layer_logits.copy_(torch.tensor([math.log(3.0), 0.0]))
    want = masked_mean(0.75 * layers[-2] + 0.25 * layers[-1], MASK)
    got = pooling(layers[-1], MASK, layers)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(pooling(layers[-1], MASK, (torch.full_like(layers[0], 7.0),) + layers[1:]), got)
    with pytest.raises(ValueError, match="all_hidden_states"):
        pooling(layers[-1], MASK, None)


@pytest.fixture(scope="module")
def tiny_encoder():
    from workflow_lib.config import Encoder
    from workflow_lib.learning.models.encoders import load_encoder

    encoder, tok = load_encoder(
        Encoder.resolve(
            {
                "source": "tiny",
                "max_length": 32,
                "tiny": {
                    "hidden_size": 16,
                    "num_hidden_layers": 2,
                    "num_attention_heads": 2,
                    "intermediate_size": 32,
                    "init_seed": 0,
                },
            }
        )
    )
    return encoder.eval(), tok


@pytest.mark.parametrize("name", NAMES)
def test_on_a_real_encoder_padding_does_not_change_the_pooled_vector(name, tiny_encoder):
    """With a tiny BERT's real outputs (embeddings first), a padded text pools like the text alone."""
    encoder, tok = tiny_encoder
    torch.manual_seed(1)
    pooling = build_pooling(name, 16)
    with torch.no_grad():
        for p in pooling.parameters():
            p.copy_(torch.randn_like(p))

    def pool(texts):
        enc = tok(texts, padding=True, return_tensors="pt")
        out = encoder(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            output_hidden_states=True,
            return_dict=True,
        )
        assert len(out.hidden_states) == 3
        return pooling(out.last_hidden_state, enc["attention_mask"], out.hidden_states)

    with torch.no_grad():
        both = pool(["i cannot sleep at night and feel tired", "tired"])
        alone = pool(["tired"])
    assert both.shape == (2, 16)
    assert torch.allclose(both[1], alone[0], atol=1e-5)
