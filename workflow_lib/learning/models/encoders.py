"""Load a transformer encoder and its tokenizer from a resolved backbone spec.

Sources (``$defs.backbone`` of the config schema):

- ``package``: a pip package that ships a transformers model in ``<package dir>/model``
  (the default MiniLM comes this way, so nothing is downloaded at run time);
- ``local``: a folder with a transformers model (``spec.path``);
- ``hub``: a Hugging Face Hub id pinned by ``revision``; the local cache is tried first,
  then the Hub with a few retries on transient errors;
- ``tiny``: a BERT built from a ``BertConfig`` with random weights (deterministic from
  ``tiny.init_seed``) and the tokenizer of ``tokenizer_package`` - for tests and smoke runs.

The pooler of BERT-like encoders is not built: the classifier pools the token states itself.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import torch

from workflow_lib.config import Encoder

log = logging.getLogger(__name__)

HUB_ATTEMPTS = 3  # online attempts for a hub model that is not in the local cache
HUB_BACKOFF_SECONDS = 2.0  # first wait between attempts; doubles each time
_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{6,}")


class EncoderLoadError(RuntimeError):
    """An encoder or tokenizer could not be loaded; the message says what to change."""


def _redact(text: str) -> str:
    return _TOKEN_RE.sub("hf_***", str(text))


@contextlib.contextmanager
def _quiet_transformers():
    """Silence 'weights not used: pooler...' and similar load-time chatter."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def package_model_dir(package: str) -> Path:
    """``<package dir>/model`` of an installed model package, without importing it."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        raise EncoderLoadError(
            f"model package {package!r} is not installed in this environment; install it "
            f"(pip install {package.replace('_', '-')}) or point the encoder at a folder with source: local"
        )
    model_dir = Path(found.origin).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise EncoderLoadError(
            f"model package {package!r} has no model/config.json under {model_dir.parent}; "
            f"reinstall it or use source: local with a transformers model folder"
        )
    return model_dir


def encoder_init_kwargs(config) -> dict:
    """Keyword arguments for building the bare encoder: no pooler where the class has one."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        cls = MODEL_MAPPING[type(config)]
    except KeyError:
        return {}
    if "add_pooling_layer" in inspect.signature(cls.__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def encoder_from_config(config) -> torch.nn.Module:
    """A randomly initialised encoder of the given transformers config (checkpoint rebuild)."""
    from transformers import AutoModel

    with _quiet_transformers():
        return AutoModel.from_config(config, **encoder_init_kwargs(config))


def _load_pretrained(location: str, **kw):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    with _quiet_transformers():
        config = AutoConfig.from_pretrained(location, **kw)
        model = AutoModel.from_pretrained(location, config=config, **kw, **encoder_init_kwargs(config))
        tokenizer = AutoTokenizer.from_pretrained(location, **kw)
    return model, tokenizer


def _tokenizer_from_package(package: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(package_model_dir(package)))


def _build_tiny(spec: Encoder):
    from transformers import BertConfig, BertModel

    tokenizer = _tokenizer_from_package(spec.tokenizer_package)
    tiny = spec.tiny
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny.hidden_size,
        num_hidden_layers=tiny.num_hidden_layers,
        num_attention_heads=tiny.num_attention_heads,
        intermediate_size=tiny.intermediate_size,
        max_position_embeddings=max(512, spec.max_length),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
    )
    if config.hidden_size % config.num_attention_heads:
        raise EncoderLoadError(
            f"tiny encoder: hidden_size {config.hidden_size} must be divisible by "
            f"num_attention_heads {config.num_attention_heads}"
        )
    # Same init_seed -> same weights, without disturbing the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tiny.init_seed)
        model = BertModel(config, add_pooling_layer=False)
    return model, tokenizer


def _offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_unreachable() -> str | None:
    """A reason when the Hub's host name does not even resolve (and no proxy is set), else None.

    huggingface_hub already retries each request with backoff; without this probe an offline
    machine would wait through all of those retries before failing.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        return f"cannot resolve {host} ({exc.__class__.__name__})"
    return None


def _classify(exc: BaseException) -> str:
    """'auth' | 'missing' | 'transient' | 'other' for a hub load failure (walks the cause chain)."""
    try:
        from huggingface_hub import errors as hub_errors
    except ImportError:  # pragma: no cover
        hub_errors = None
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if hub_errors is not None:
            if isinstance(e, hub_errors.GatedRepoError):
                return "auth"
            if isinstance(
                e, (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError, hub_errors.EntryNotFoundError)
            ):
                return "missing"
            if isinstance(e, hub_errors.HfHubHTTPError):
                status = getattr(getattr(e, "response", None), "status_code", None)
                if status in (401, 403):
                    return "auth"
                if status == 404:
                    return "missing"
                if status == 429 or (status is not None and status >= 500):
                    return "transient"
        name = type(e).__name__
        if name in (
            "ConnectionError",
            "Timeout",
            "ConnectTimeout",
            "ReadTimeout",
            "ProxyError",
            "SSLError",
            "ChunkedEncodingError",
            "TimeoutError",
            "ConnectionResetError",
        ):
            return "transient"
        msg = str(e).lower()
        if "gated repo" in msg or "401" in msg or "403" in msg or "unauthorized" in msg:
            return "auth"
        if "not a valid model identifier" in msg or "repository not found" in msg:
            return "missing"
        if "couldn't connect" in msg or "connection" in msg or "timed out" in msg or "temporarily" in msg:
            return "transient"
        e = e.__cause__ or e.__context__
    return "other"


def _load_hub(spec: Encoder):
    hub_id = spec.hub_id
    revision = spec.revision
    where = f"hub model {hub_id!r} at revision {revision or 'main (unpinned)'}"
    fix = (
        "download it once on a machine with access (it then loads from the Hugging Face cache), "
        "or use source: package or source: local with a folder holding the model"
    )
    try:
        return _load_pretrained(hub_id, revision=revision, local_files_only=True)
    except (OSError, ValueError) as exc:
        cached_error = exc
    if _offline():
        raise EncoderLoadError(
            f"{where} is not in the local cache and the Hub is switched off "
            f"(HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE); {fix}"
        ) from None
    unreachable = _hub_unreachable()
    if unreachable:
        raise EncoderLoadError(
            f"{where} is not in the local cache and the Hub is unreachable ({unreachable}); {fix}"
        ) from None
    wait = HUB_BACKOFF_SECONDS
    last: BaseException = cached_error
    for attempt in range(1, HUB_ATTEMPTS + 1):
        try:
            return _load_pretrained(hub_id, revision=revision)
        except Exception as exc:
            last = exc
            kind = _classify(exc)
            if kind == "auth":
                raise EncoderLoadError(
                    f"{where}: access denied (gated or private repository, or a missing/invalid token); "
                    f"accept the model's terms and log in with `huggingface-cli login`, or {fix}"
                ) from None
            if kind == "missing":
                raise EncoderLoadError(
                    f"{where}: no such repository or revision on the Hub; check hub_id and "
                    f"revision in the encoders catalogue, or {fix}"
                ) from None
            if kind != "transient" or attempt == HUB_ATTEMPTS:
                break
            log.warning(
                "loading %s failed (attempt %d/%d, %s); retrying in %.0f s",
                where,
                attempt,
                HUB_ATTEMPTS,
                type(exc).__name__,
                wait,
            )
            time.sleep(wait)
            wait *= 2
    raise EncoderLoadError(
        f"{where} could not be loaded (not cached, Hub unreachable: "
        f"{type(last).__name__}: {_redact(last)[:300]}); {fix}"
    ) from None


def load_encoder(spec: Encoder):
    """Return ``(encoder, tokenizer)`` for a resolved backbone spec; never downloads for package/local/tiny."""
    source = spec.source
    try:
        if source == "package":
            model, tokenizer = _load_pretrained(str(package_model_dir(spec.package)))
        elif source == "local":
            path = Path(spec.path).expanduser()
            if not path.is_dir():
                raise EncoderLoadError(
                    f"local encoder folder {str(path)!r} does not exist; point "
                    f"encoders.<name>.path at a folder written by save_pretrained()"
                )
            if not (path / "config.json").is_file():
                raise EncoderLoadError(
                    f"local encoder folder {str(path)!r} has no config.json; point "
                    f"encoders.<name>.path at a folder written by save_pretrained()"
                )
            model, tokenizer = _load_pretrained(str(path), local_files_only=True)
        elif source == "hub":
            model, tokenizer = _load_hub(spec)
        elif source == "tiny":
            model, tokenizer = _build_tiny(spec)
        else:
            raise EncoderLoadError(f"unknown encoder source {source!r}; choose one of package, local, hub, tiny")
    except EncoderLoadError:
        raise
    except (OSError, ValueError) as exc:
        raise EncoderLoadError(f"could not load encoder {dict(spec)!r}: {_redact(exc)[:500]}") from None
    if spec.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise EncoderLoadError(
                f"{type(model).__name__} does not support gradient checkpointing; "
                f"set gradient_checkpointing: false for this encoder"
            )
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer
