"""Self-contained, verified classifier checkpoints.

A checkpoint folder holds::

    model.safetensors      the whole classifier's weights (encoder + pooling + head)
    encoder_config.json    the encoder's transformers config (rebuilt offline, no original weights needed)
    tokenizer/             tokenizer.save_pretrained()
    checkpoint.json        backbone_spec, train_cfg, n_labels, meta, code_version
    manifest.json          written last: sha256 and size of every file above

It is written into a temporary folder beside the target, fsynced and renamed into place, so
a reader sees either the old complete checkpoint or the new one. The folder belongs to the
checkpoint: an existing one is replaced whole. Loading verifies the manifest first.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Mapping

from workflow_lib.keys import file_sha256
from workflow_lib.provenance import code_version

FORMAT = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
ENCODER_CONFIG = "encoder_config.json"
TOKENIZER_DIR = "tokenizer"
INFO = "checkpoint.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or altered; the message names the file and the fix."""


def _fix(path: Path) -> str:
    return f"delete the folder {str(path)!r} and rerun the rule that made it"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def save_checkpoint(out_dir, model, tokenizer, *, backbone_spec: Mapping, train_cfg: Mapping,
                    meta: Mapping) -> dict:
    """Write a verified checkpoint of ``model`` (a CriteriaClassifier) to ``out_dir``; return its manifest."""
    from safetensors.torch import save_model

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        was_training = model.training
        model.eval()
        try:
            save_model(model, str(tmp / WEIGHTS), metadata={"format": "pt"})
        finally:
            model.train(was_training)
        (tmp / ENCODER_CONFIG).write_text(model.encoder.config.to_json_string(use_diff=False), encoding="utf-8")
        tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        version = code_version()
        _write_json(tmp / INFO, {
            "format": FORMAT,
            "backbone_spec": dict(backbone_spec),
            "train_cfg": dict(train_cfg),
            "n_labels": int(model.n_labels),
            "max_length": getattr(model, "max_length", None) or backbone_spec.get("max_length"),
            "meta": dict(meta),
            "code_version": version,
        })
        files = {}
        for f in _files(tmp):
            _fsync_file(f)
            files[f.relative_to(tmp).as_posix()] = {"sha256": file_sha256(f), "bytes": f.stat().st_size}
        manifest = {"files": files, "code_version": version, "format": FORMAT}
        _write_json(tmp / MANIFEST, manifest)
        _fsync_file(tmp / MANIFEST)
        for d in {f.parent for f in _files(tmp)} | {tmp}:
            _fsync_dir(d)
        if out.exists() or out.is_symlink():
            old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify_checkpoint(path) -> dict:
    """Check every file against the manifest; return the manifest or raise CheckpointError."""
    root = Path(path)
    mpath = root / MANIFEST
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {str(root)!r} does not exist; rerun the rule that makes it")
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: manifest missing (the checkpoint was never finished); {_fix(root)}")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            raise ValueError("no files listed")
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{mpath}: unreadable manifest ({exc}); {_fix(root)}") from None
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{mpath}: checkpoint format {manifest.get('format')!r}, this code reads "
                              f"format {FORMAT}; {_fix(root)}")
    for name in (WEIGHTS, ENCODER_CONFIG, INFO):
        if name not in files:
            raise CheckpointError(f"{mpath}: does not list {name}; {_fix(root)}")
    for rel, want in sorted(files.items()):
        f = root / rel
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (listed in the manifest); {_fix(root)}")
        size = f.stat().st_size
        if size != want.get("bytes"):
            raise CheckpointError(f"{f}: size mismatch: expected {want.get('bytes')} bytes, found {size}; "
                                  f"{_fix(root)}")
        digest = file_sha256(f)
        if digest != want.get("sha256"):
            raise CheckpointError(f"{f}: sha256 mismatch: expected {want.get('sha256')}, found {digest}; "
                                  f"{_fix(root)}")
    return manifest


def load_checkpoint(path):
    """Verify and load a checkpoint: ``(model in eval mode, tokenizer, info)``; never touches the network.

    ``info`` is checkpoint.json plus ``manifest_sha256`` and ``path``.
    """
    from safetensors.torch import load_model
    from transformers import AutoTokenizer
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from workflow_lib.models.encoders import encoder_from_config
    from workflow_lib.models.model import assemble

    root = Path(path)
    verify_checkpoint(root)
    info: dict = {}
    try:
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
        cfg_dict = json.loads((root / ENCODER_CONFIG).read_text(encoding="utf-8"))
        config = CONFIG_MAPPING[cfg_dict["model_type"]].from_dict(cfg_dict)
        encoder = encoder_from_config(config)
        model = assemble(encoder, info["train_cfg"], int(info["n_labels"]), max_length=info.get("max_length"))
        load_model(model, str(root / WEIGHTS), strict=True)
        tokenizer = AutoTokenizer.from_pretrained(str(root / TOKENIZER_DIR), local_files_only=True)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - any rebuild failure means an unusable checkpoint
        raise CheckpointError(f"{root}: checkpoint verified but could not be rebuilt "
                              f"({type(exc).__name__}: {exc}); if the code changed since it was written "
                              f"(code_version {info.get('code_version', '?')}), "
                              f"{_fix(root)}") from exc
    model.eval()
    info = dict(info, manifest_sha256=manifest_digest(root), path=str(root))
    return model, tokenizer, info


def manifest_digest(path) -> str:
    """sha256 of the checkpoint's manifest.json (one identifier for the whole checkpoint)."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: manifest missing; {_fix(Path(path))}")
    return file_sha256(mpath)
