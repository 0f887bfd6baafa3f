"""Self-contained, verified classifier checkpoints.

A checkpoint folder holds::

    model.safetensors      full fine-tuning: the whole classifier's weights (encoder + pooling + head)
    adapter.safetensors    LoRA (train_cfg finetune: lora) instead: the LoRA adapter weights and every
                           weight outside the encoder (pooling, heads) - not the frozen base encoder
    encoder_config.json    the encoder's transformers config (rebuilt offline, no original weights needed)
    tokenizer/             tokenizer.save_pretrained()
    checkpoint.json        backbone_spec, train_cfg, n_labels, meta, code_version, weights ("full" | "adapter"),
                           and for adapters: LoRA settings, sizes and the base encoder's weight digest;
                           compatibility: signature (digest of the state-dict key names, shapes and dtypes)
                           and head_config (search_space.effective_config of train_cfg)
    ...                    extra files of the caller (workflow_lib/learning/resume.py adds the training state)
    manifest.json          written last: sha256 and size of every file above, and weights ("full" | "adapter")

A full checkpoint is self-contained. An adapter checkpoint re-loads its base encoder from
backbone_spec with load_encoder (package, local folder, Hub cache, or tiny from its init_seed),
re-applies LoRA, loads the stored weights, and refuses to load when the base encoder's weights
differ from those the adapter was trained on (digest in checkpoint.json) or when any stored or
expected key does not match.

It is written into a temporary folder beside the target, fsynced and renamed into place, so
a reader sees either the old complete checkpoint or the new one. The folder belongs to the
checkpoint: an existing one is replaced whole. Loading verifies the manifest first.

``load_checkpoint`` over a folder of checkpoints (say a run's ``state/epoch_{e}`` folders) loads
the newest valid one and logs every newer one it skipped and why; with ``expect`` it refuses a
checkpoint of another configuration (other backbone, head config or model signature).

checkpoint.json holds plain JSON. ``save_checkpoint`` takes the resolved sections (``Encoder``,
``Training``) and writes them as the schema completed them; ``load_checkpoint`` resolves the two it
reads back once (``Encoder.resolve`` / ``Training.resolve``, errors naming the file) and hands those
on: to the model it rebuilds and, in ``info``, to its caller.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workflow_lib.config.keys import digest, file_sha256
from workflow_lib.config.search_space import effective_config
from workflow_lib.config.sections import Encoder, Training, plain
from workflow_lib.provenance import code_version

FORMAT = 1
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
ADAPTER_WEIGHTS = "adapter.safetensors"
WEIGHTS_FILE = {"full": WEIGHTS, "adapter": ADAPTER_WEIGHTS}
ENCODER_CONFIG = "encoder_config.json"
TOKENIZER_DIR = "tokenizer"
INFO = "checkpoint.json"
ORDER_RE = re.compile(r"(\d+)$")  # checkpoint folders in a folder are ordered by their trailing number

log = logging.getLogger(__name__)


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
    path.write_text(
        json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def _names(keys, limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def _encoder_base_keys(model) -> set[str]:
    """state-dict keys of ``model`` that are the encoder's base (non-adapter) weights."""
    from workflow_lib.learning.models.lora import base_state_keys

    enc = model.encoder
    prefixes = [name for name, mod in model.named_modules(remove_duplicate=False) if mod is enc]
    base = base_state_keys(enc)
    return {f"{p}.{k}" if p else k for p in prefixes for k in base}


_SOURCE = {Training: "cfg.training", Encoder: "cfg.encoders[name]"}


def _resolved(value: Any, cls: type, name: str, where: str) -> None:
    """TypeError unless ``value`` is a resolved ``cls`` section (a plain or partial mapping would be
    stored, or compared, without the schema's defaults)."""
    if not isinstance(value, cls):
        raise TypeError(
            f"{where}: {name} must be a resolved {cls.__name__} ({_SOURCE[cls]} of the resolved "
            f"config, or {cls.__name__}.resolve({{...}})), got {type(value).__name__}"
        )


def _weights_mode(model, train_cfg: Training) -> str:
    from workflow_lib.learning.models.lora import has_lora

    lora_cfg = train_cfg.finetune == "lora"
    lora_model = "peft" in sys.modules and has_lora(model.encoder)  # no peft imported: no LoRA layer (saves ~2 s)
    if lora_cfg and not lora_model:
        raise ValueError(
            "train_cfg has finetune: lora but model.encoder carries no LoRA adapter; build the "
            "model with apply_lora (assemble does it for finetune: lora) or save with the "
            "training config it was trained with"
        )
    if lora_model and not lora_cfg:
        raise ValueError(
            f"model.encoder carries a LoRA adapter but train_cfg has finetune: "
            f"{train_cfg.finetune!r}; pass the training config it was trained with "
            f"(finetune: lora)"
        )
    return "adapter" if lora_cfg else "full"


def _adapter_tensors(model) -> tuple[dict, dict]:
    """(tensors to store, adapter description) for a LoRA model: everything except the base encoder."""
    from workflow_lib.learning.models.lora import base_weights_digest, is_lora_key, lora_param_names, lora_settings

    sd = model.state_dict()
    base = _encoder_base_keys(model)
    lora = lora_param_names(model)
    tensors = {k: v.detach().contiguous().clone() for k, v in sd.items() if k not in base}
    if not lora:
        raise ValueError("model.encoder has a LoRA layer but no adapter weights in model.state_dict()")
    base_ids = {id(p) for n, p in model.encoder.named_parameters() if not is_lora_key(n)}
    described = {
        **lora_settings(model.encoder),
        "tensors": len(tensors),
        "adapter_params": int(sum(sd[k].numel() for k in lora)),
        "other_params": int(sum(t.numel() for k, t in tensors.items() if k not in lora)),
        "base_params": int(sum(p.numel() for p in model.encoder.parameters() if id(p) in base_ids)),
        "base_weights_sha256": base_weights_digest(model.encoder),
    }
    return tensors, described


def model_signature(model) -> str:
    """Digest of the state dict's key names, shapes and dtypes (not the values): the model's architecture."""
    return digest([[k, list(v.shape), str(v.dtype)] for k, v in model.state_dict().items()], length=16)


def head_config(train_cfg: Training) -> dict:
    """The settings of the resolved ``train_cfg`` that change the trained model (search_space.effective_config)."""
    _resolved(train_cfg, Training, "train_cfg", "head_config")
    return effective_config(train_cfg)


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """The files ``tokenizer.save_pretrained`` writes, in memory (for writing many checkpoints of one run)."""
    with tempfile.TemporaryDirectory() as d:
        tokenizer.save_pretrained(d)
        return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(Path(d).rglob("*")) if p.is_file()}


def save_checkpoint(
    out_dir,
    model,
    tokenizer,
    *,
    backbone_spec: Encoder,
    train_cfg: Training,
    meta: Mapping,
    extra: Callable[[Path], None] | None = None,
) -> dict:
    """Write a verified checkpoint of ``model`` (a CriteriaClassifier) to ``out_dir``; return its manifest.

    ``backbone_spec`` and ``train_cfg`` are the resolved sections the model was built and trained with
    (TypeError otherwise); checkpoint.json stores them as plain JSON.
    With ``train_cfg.finetune == "lora"`` only the adapter and the weights outside ``model.encoder``
    are stored (``adapter.safetensors``); the base encoder is re-loaded from ``backbone_spec`` at load time.
    ``extra(folder)`` writes further files into the temporary folder; the manifest covers them too.
    ``tokenizer`` may also be the output of ``tokenizer_files``.
    """
    from safetensors.torch import save_file, save_model

    _resolved(backbone_spec, Encoder, "backbone_spec", "save_checkpoint")
    _resolved(train_cfg, Training, "train_cfg", "save_checkpoint")
    mode = _weights_mode(model, train_cfg)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        adapter = None
        was_training = model.training
        model.eval()
        try:
            if mode == "full":
                save_model(model, str(tmp / WEIGHTS), metadata={"format": "pt"})
            else:
                tensors, adapter = _adapter_tensors(model)
                save_file(tensors, str(tmp / ADAPTER_WEIGHTS), metadata={"format": "pt", "weights": "adapter"})
                adapter["bytes"] = (tmp / ADAPTER_WEIGHTS).stat().st_size
        finally:
            model.train(was_training)
        (tmp / ENCODER_CONFIG).write_text(model.encoder.config.to_json_string(use_diff=False), encoding="utf-8")
        if isinstance(tokenizer, Mapping):
            for rel, data in tokenizer.items():
                (tmp / TOKENIZER_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / TOKENIZER_DIR / rel).write_bytes(data)
        else:
            tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        version = code_version()
        info = {
            "format": FORMAT,
            "weights": mode,
            "backbone_spec": plain(backbone_spec),
            "train_cfg": plain(train_cfg),
            "n_labels": int(model.n_labels),
            "max_length": getattr(model, "max_length", None) or backbone_spec.max_length,
            "meta": dict(meta),
            "code_version": version,
            "signature": model_signature(model),
            "head_config": head_config(train_cfg),
        }
        if adapter is not None:
            info["adapter"] = adapter
        if extra is not None:
            extra(tmp)
        _write_json(tmp / INFO, info)
        files = {}
        for f in _files(tmp):
            _fsync_file(f)
            files[f.relative_to(tmp).as_posix()] = {"sha256": file_sha256(f), "bytes": f.stat().st_size}
        manifest = {"files": files, "code_version": version, "format": FORMAT, "weights": mode}
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
        raise CheckpointError(
            f"{mpath}: checkpoint format {manifest.get('format')!r}, this code reads format {FORMAT}; {_fix(root)}"
        )
    mode = manifest.get("weights", "full")
    if mode not in WEIGHTS_FILE:
        raise CheckpointError(
            f"{mpath}: unknown weights kind {mode!r} (this code reads {', '.join(WEIGHTS_FILE)}); {_fix(root)}"
        )
    for name in (WEIGHTS_FILE[mode], ENCODER_CONFIG, INFO):
        if name not in files:
            raise CheckpointError(f"{mpath}: does not list {name}; {_fix(root)}")
    for rel, want in sorted(files.items()):
        f = root / rel
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (listed in the manifest); {_fix(root)}")
        size = f.stat().st_size
        if size != want.get("bytes"):
            raise CheckpointError(f"{f}: size mismatch: expected {want.get('bytes')} bytes, found {size}; {_fix(root)}")
        digest = file_sha256(f)
        if digest != want.get("sha256"):
            raise CheckpointError(f"{f}: sha256 mismatch: expected {want.get('sha256')}, found {digest}; {_fix(root)}")
    return manifest


def _rebuild_adapter_model(root: Path, info: Mapping):
    """Base encoder from backbone_spec + LoRA + stored adapter/head weights; every key accounted for.

    ``info``: checkpoint.json with its backbone_spec and train_cfg resolved (load_checkpoint)."""
    from safetensors.torch import load_file

    from workflow_lib.learning.models.encoders import EncoderLoadError, load_encoder
    from workflow_lib.learning.models.lora import apply_lora, base_weights_digest, lora_settings
    from workflow_lib.learning.models.model import assemble

    spec = info["backbone_spec"]
    adapter = info["adapter"]
    try:
        encoder, _ = load_encoder(spec)
    except EncoderLoadError as exc:
        raise CheckpointError(
            f"{root}: this LoRA checkpoint stores only the adapter; its base encoder "
            f"(backbone_spec {spec!r}) could not be loaded: {exc}"
        ) from None
    model = assemble(encoder, info["train_cfg"], int(info["n_labels"]), max_length=info.get("max_length"))
    settings = {k: adapter[k] for k in ("r", "alpha", "dropout", "target_modules")}
    current = lora_settings(model.encoder)
    if current is None:  # assemble did not apply LoRA itself
        apply_lora(model.encoder, **settings)
    elif current != settings:
        raise CheckpointError(
            f"{root}: the rebuilt model's LoRA settings {current} differ from the stored {settings}; {_fix(root)}"
        )
    digest = base_weights_digest(model.encoder)
    if digest != adapter["base_weights_sha256"]:
        raise CheckpointError(
            f"{root}: the base encoder loaded from backbone_spec {spec!r} is not the one this adapter was "
            f"trained on (base weights sha256 {digest}, expected {adapter['base_weights_sha256']}); restore "
            f"that encoder (same package version / folder / revision) or {_fix(root)}"
        )
    tensors = load_file(str(root / ADAPTER_WEIGHTS))
    base = _encoder_base_keys(model)
    expected = set(model.state_dict()) - base
    missing, unexpected = expected - set(tensors), set(tensors) - expected
    if missing or unexpected:
        parts = ([f"missing {_names(missing)}"] if missing else []) + (
            [f"unexpected {_names(unexpected)}"] if unexpected else []
        )
        raise CheckpointError(
            f"{root / ADAPTER_WEIGHTS}: stored keys do not match the rebuilt model: "
            f"{'; '.join(parts)}; if the code changed since it was written "
            f"(code_version {info.get('code_version', '?')}), {_fix(root)}"
        )
    result = model.load_state_dict(tensors, strict=False)
    if result.unexpected_keys or set(result.missing_keys) != base:  # pragma: no cover - guarded above
        raise CheckpointError(
            f"{root / ADAPTER_WEIGHTS}: loading left keys unset: "
            f"{_names(set(result.missing_keys) - base)}; {_fix(root)}"
        )
    return model


def _differences(stored: Any, now: Any, where: str = "") -> list[str]:
    """Human-readable differences between two JSON-like values (at most the first few)."""
    if isinstance(stored, Mapping) and isinstance(now, Mapping):
        out = []
        for k in sorted(set(stored) | set(now), key=str):
            out += _differences(stored.get(k, "<absent>"), now.get(k, "<absent>"), f"{where}.{k}" if where else k)
        return out
    return [] if stored == now else [f"{where or 'value'}: stored {stored!r}, now {now!r}"]


def check_compatible(
    root,
    info: Mapping,
    *,
    backbone_spec: Encoder | None = None,
    train_cfg: Training | None = None,
    head: Mapping | None = None,
    model=None,
    fix: str | None = None,
) -> None:
    """Refuse a checkpoint written for another model: backbone spec, head config (of the resolved
    ``train_cfg``, or ``head`` already computed) or model signature differ."""
    diffs = []
    if backbone_spec is not None:
        diffs += _differences(info.get("backbone_spec"), dict(backbone_spec), "backbone_spec")
    if train_cfg is not None or head is not None:
        diffs += _differences(info.get("head_config"), dict(head or head_config(train_cfg)), "head_config")
    if model is not None and info.get("signature") != model_signature(model):
        diffs.append(
            f"model signature (state-dict names/shapes): stored {info.get('signature')}, now {model_signature(model)}"
        )
    if diffs:
        raise CheckpointError(
            f"{root}: checkpoint of another model configuration "
            f"(code_version {info.get('code_version', '?')}): {'; '.join(diffs[:6])}"
            f"{f' (and {len(diffs) - 6} more)' if len(diffs) > 6 else ''}; "
            f"{fix or _fix(Path(root))}"
        )


def checkpoint_folders(folder) -> list[Path]:
    """Sub-folders of ``folder`` that are (or were meant to be) checkpoints, newest (highest number) first."""
    root = Path(folder)
    subs = (
        [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and ORDER_RE.search(p.name)]
        if root.is_dir()
        else []
    )
    return sorted(subs, key=lambda p: (int(ORDER_RE.search(p.name).group(1)), p.name), reverse=True)


def newest_valid(folder) -> tuple[Path | None, dict | None, list[tuple[str, str]]]:
    """``(path, manifest, skipped)``: the newest sub-folder of ``folder`` that verifies, and every newer
    one skipped with its reason (each logged). ``(None, None, skipped)`` when none verifies."""
    skipped: list[tuple[str, str]] = []
    for sub in checkpoint_folders(folder):
        try:
            return sub, verify_checkpoint(sub), skipped
        except CheckpointError as exc:
            skipped.append((str(sub), str(exc)))
            log.warning("skipping checkpoint %s: %s", sub, exc)
    return None, None, skipped


def resolve_checkpoint(path) -> Path:
    """``path`` itself when it holds a manifest, else the newest valid checkpoint folder inside it."""
    root = Path(path)
    if (root / MANIFEST).is_file() or not checkpoint_folders(root):
        return root
    found, _, skipped = newest_valid(root)
    if found is None:
        raise CheckpointError(
            f"{root}: none of its {len(skipped)} checkpoint folder(s) verifies ("
            + "; ".join(f"{Path(p).name}: {why}" for p, why in skipped[:3])
            + f"); delete the folder {str(root)!r} and rerun the rule that made it"
        )
    if skipped:
        log.warning("%s: loading %s; skipped %s", root, found.name, ", ".join(Path(p).name for p, _ in skipped))
    return found


def load_checkpoint(path, *, expect: Mapping | None = None):
    """Verify and load a checkpoint: ``(model in eval mode, tokenizer, info)``.

    ``path`` is a checkpoint folder, or a folder of checkpoint folders (the newest valid one is
    loaded; newer invalid ones are logged and skipped). ``expect`` ({"backbone_spec": Encoder,
    "train_cfg": Training}, either optional) refuses a checkpoint of another configuration with
    CheckpointError. A full checkpoint never touches the network. An adapter (LoRA) checkpoint
    re-loads its base encoder with ``load_encoder(backbone_spec)`` - package, local folder and tiny
    never download; a hub encoder comes from the local cache first. ``info`` is checkpoint.json
    plus ``manifest_sha256`` and ``path``, its ``backbone_spec`` an ``Encoder`` and its ``train_cfg``
    a ``Training``, resolved once here (a setting the schema refuses: CheckpointError naming the file).
    """
    from safetensors.torch import load_model
    from transformers import AutoTokenizer
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from workflow_lib.learning.models.encoders import encoder_from_config
    from workflow_lib.learning.models.model import assemble

    expect = expect or {}
    for name, cls in (("backbone_spec", Encoder), ("train_cfg", Training)):
        if expect.get(name) is not None:  # a caller's mistake, not the checkpoint's: before the try below
            _resolved(expect[name], cls, f"expect[{name!r}]", "load_checkpoint")
    root = resolve_checkpoint(path)
    manifest = verify_checkpoint(root)
    mode = manifest.get("weights", "full")
    info: dict = {}
    try:
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
        info["backbone_spec"] = Encoder.resolve(info["backbone_spec"], what=f"{root / INFO}: backbone_spec")
        info["train_cfg"] = Training.resolve(info["train_cfg"], what=f"{root / INFO}: train_cfg")
        if expect:
            check_compatible(root, info, backbone_spec=expect.get("backbone_spec"), train_cfg=expect.get("train_cfg"))
        if info.get("weights", "full") != mode:
            raise CheckpointError(
                f"{root / INFO}: weights {info.get('weights', 'full')!r} but the manifest says {mode!r}; {_fix(root)}"
            )
        if mode == "adapter":
            model = _rebuild_adapter_model(root, info)
        else:
            cfg_dict = json.loads((root / ENCODER_CONFIG).read_text(encoding="utf-8"))
            config = CONFIG_MAPPING[cfg_dict["model_type"]].from_dict(cfg_dict)
            encoder = encoder_from_config(config)
            model = assemble(encoder, info["train_cfg"], int(info["n_labels"]), max_length=info.get("max_length"))
            load_model(model, str(root / WEIGHTS), strict=True)
        if info.get("signature") not in (None, model_signature(model)):
            check_compatible(root, info, model=model)
        tokenizer = AutoTokenizer.from_pretrained(str(root / TOKENIZER_DIR), local_files_only=True)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"{root}: checkpoint verified but could not be rebuilt "
            f"({type(exc).__name__}: {exc}); if the code changed since it was written "
            f"(code_version {info.get('code_version', '?')}), "
            f"{_fix(root)}"
        ) from exc
    model.eval()
    info = dict(info, manifest_sha256=manifest_digest(root), path=str(root))
    return model, tokenizer, info


def manifest_digest(path) -> str:
    """sha256 of the checkpoint's manifest.json (one identifier for the whole checkpoint)."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        raise CheckpointError(f"{mpath}: manifest missing; {_fix(Path(path))}")
    return file_sha256(mpath)
