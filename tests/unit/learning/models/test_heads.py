"""Criteria heads: shapes, gradients, padding masking, dropout behaviour and values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workflow_lib.learning.models.heads import HEADS, build_head
from workflow_lib.learning.models.pooling import build_pooling

NAMES = ["linear", "mlp", "mlp_residual", "gated", "multi_sample_dropout"]
IN, LABELS, HIDDEN = 8, 9, 16


def _x(b=4, seed=0, grad=False):
    return torch.randn(b, IN, generator=torch.Generator().manual_seed(seed), requires_grad=grad)


def _head(name, **kw):
    torch.manual_seed(0)
    return build_head(name, IN, LABELS, **{"hidden": HIDDEN, "dropout": 0.1, **kw})


def _linears(head):
    return [(m.in_features, m.out_features) for m in head.modules() if isinstance(m, torch.nn.Linear)]


def test_registry_holds_all_heads_and_rejects_unknown_names():
    assert set(HEADS) >= set(NAMES)
    with pytest.raises(ValueError, match="unknown head 'nope'.*gated.*mlp_residual.*multi_sample_dropout"):
        build_head("nope", IN, LABELS)


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_gradients_reach_every_parameter_and_the_input(name):
    head = _head(name).train()
    x = _x(grad=True)
    out = head(x)
    assert out.shape == (4, LABELS)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_train_uses_dropout(name):
    head = _head(name, dropout=0.5)
    x = _x()
    head.eval()
    with torch.no_grad():
        a, b = head(x), head(x)
        assert torch.equal(a, b)
        # rows are independent (no batch statistics): a row alone gives the same logits
        assert torch.allclose(head(x[2:3]), a[2:3], atol=1e-6)
        head.train()
        assert not torch.equal(head(x), head(x))
    assert all(m.p == 0.5 for m in head.modules() if isinstance(m, torch.nn.Dropout))
    assert any(isinstance(m, torch.nn.Dropout) for m in head.modules())


@pytest.mark.parametrize("name", NAMES)
def test_padded_tokens_never_change_the_logits(name):
    """Head on mean pooling: the values at padded positions never reach the logits or gradients."""
    pooling, head = build_pooling("mean", IN), _head(name).eval()
    hs = torch.randn(3, 5, IN, generator=torch.Generator().manual_seed(1), requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    logits = head(pooling(hs, mask))
    changed = hs.detach().clone()
    changed[mask == 0] = 1e6
    with torch.no_grad():
        assert torch.equal(head(pooling(changed, mask)), logits.detach())
    logits.sum().backward()
    assert hs.grad[mask == 0].abs().sum() == 0 and hs.grad[mask == 1].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_hpo_extremes_build_and_run(name):
    head = build_head(name, IN, LABELS, hidden=1024, dropout=0.5).train()
    assert head(_x()).shape == (4, LABELS)
    head = build_head(name, IN, LABELS, hidden=128, dropout=0.1).eval()
    assert torch.isfinite(head(_x())).all()


def test_mlp_residual_structure_and_value():
    head = _head("mlp_residual")
    assert _linears(head) == [(IN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, LABELS)]
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in head.modules()) == 2
    assert len(_linears(_head("mlp_residual", n_blocks=3))) == 2 + 2 * 3
    with pytest.raises(ValueError, match="n_blocks"):
        _head("mlp_residual", n_blocks=0)
    head.eval()
    x = _x()
    h = head.proj(x)
    blk = head.blocks[0]
    h = h + blk.fc2(F.gelu(blk.fc1(F.layer_norm(h, (HIDDEN,), blk.norm.weight, blk.norm.bias))))
    want = head.out(F.layer_norm(h, (HIDDEN,), head.norm.weight, head.norm.bias))
    assert torch.allclose(head(x), want, atol=1e-6)


def test_gated_head_is_sigmoid_gate_times_value():
    head = _head("gated").eval()
    assert _linears(head) == [(IN, 2 * HIDDEN), (HIDDEN, LABELS)]
    x = _x()
    wg, wv = head.gate_value.weight[:HIDDEN], head.gate_value.weight[HIDDEN:]
    bg, bv = head.gate_value.bias[:HIDDEN], head.gate_value.bias[HIDDEN:]
    want = head.out(torch.sigmoid(x @ wg.T + bg) * (x @ wv.T + bv))
    assert torch.allclose(head(x), want, atol=1e-6)


def test_multi_sample_dropout_averages_five_dropout_samples_through_one_linear():
    head = _head("multi_sample_dropout", dropout=0.3)
    assert head.n_samples == 5 and _linears(head) == [(IN, LABELS)]  # hidden is unused
    x = _x()
    head.train()
    torch.manual_seed(7)
    got = head(x)
    torch.manual_seed(7)  # replay the same five dropout masks by hand
    want = torch.stack([head.out(F.dropout(x, 0.3, training=True)) for _ in range(5)]).mean(0)
    assert torch.allclose(got, want, atol=1e-6)
    # not a single sample: differs from each of the five
    torch.manual_seed(7)
    assert not torch.allclose(got, head.out(F.dropout(x, 0.3, training=True)))
    # eval: one pass without dropout ...
    head.eval()
    with torch.no_grad():
        ev = head(x)
        assert torch.equal(ev, head.out(x))
        # ... which is the expectation of the training output (inverted dropout, linear layer)
        head.train()
        torch.manual_seed(0)
        mean_train = torch.stack([head(x) for _ in range(400)]).mean(0)
    assert torch.allclose(mean_train, ev, atol=0.05)
    # dropout 0: training output equals the eval output
    no_drop = _head("multi_sample_dropout", dropout=0.0).train()
    assert torch.equal(no_drop(x), no_drop.eval()(x))
    assert _head("multi_sample_dropout", n_samples=2).n_samples == 2
    with pytest.raises(ValueError, match="n_samples"):
        _head("multi_sample_dropout", n_samples=0)


def test_heads_ignore_settings_they_do_not_use():
    for name in NAMES:
        assert build_head(name, IN, LABELS, hidden=HIDDEN, dropout=0.1, unused_setting=3).n_labels == LABELS


def test_heads_benchmark_covers_every_head_and_pooling():
    """The benchmark's wiring (not its timings): one step of every variant on a micro BERT."""
    from transformers import BertConfig, BertModel

    from devbench.heads import BASELINE, format_table, measure, variants
    from workflow_lib.learning.models.pooling import POOLING

    pairs = variants()
    assert pairs[0] == BASELINE == ("linear", "cls") and len(set(pairs)) == len(pairs)
    assert {h for h, p in pairs if p == "mean"} == set(HEADS)
    assert {p for h, p in pairs if h == "linear"} == set(POOLING)
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16),
        add_pooling_layer=False,
    )
    batch = {"input_ids": torch.randint(0, 50, (2, 6)), "attention_mask": torch.tensor([[1] * 6, [1] * 3 + [0] * 3])}
    rows = measure(encoder, 8, batch, torch.zeros(2, 9), rounds=1, steps=1, warmup=0, head_hidden=16, dropout=0.1)
    assert [(r["head"], r["pooling"]) for r in rows] == pairs
    assert rows[0]["ratio"] == 1.0 and all(r["ms"] > 0 and r["n"] == 1 for r in rows)
    table = format_table(rows)
    assert all(r["name"] in table for r in rows)
