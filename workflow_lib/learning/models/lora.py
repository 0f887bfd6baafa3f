"""LoRA adapters on a transformer encoder (PEFT), as an alternative to full fine-tuning.

``apply_lora`` injects LoRA layers into the encoder *in place* (``peft.inject_adapter_in_model``)
and returns the same module, so ``encoder(input_ids=..., attention_mask=..., return_dict=True,
output_hidden_states=...)``, ``encoder.config`` and the module paths used by ``freeze_bottom``
keep working. Every base weight of the encoder is frozen; only the adapter matrices train.
LoRA's B matrices start at zero, so right after ``apply_lora`` the encoder computes exactly what
the base encoder computes.

In the state dict a wrapped layer ``...query`` becomes ``...query.base_layer.{weight,bias}``
(the frozen base) plus ``...query.lora_A.default.weight`` and ``...query.lora_B.default.weight``
(the adapter); ``lora_param_names`` lists the adapter keys, ``base_state_keys`` the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

from workflow_lib.config.keys import tensors_sha256
from workflow_lib.config.sections import Training

ADAPTER = "default"  # PEFT adapter name; appears in the state-dict keys (lora_A.default.weight)
_BASE_LAYER = ".base_layer."


def _linear_types() -> tuple[type, ...]:
    types: list[type] = [nn.Linear]
    try:  # GPT-2 style encoders keep their projections in transformers' Conv1D
        from transformers.pytorch_utils import Conv1D

        types.append(Conv1D)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def linear_layer_names(module: nn.Module) -> dict[str, list[str]]:
    """``{short name: [full module names]}`` of the linear layers LoRA can wrap (e.g. query, key, value, dense)."""
    out: dict[str, list[str]] = {}
    linear = _linear_types()
    for name, mod in module.named_modules():
        if name and isinstance(mod, linear):
            out.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return out


def has_lora(module: nn.Module) -> bool:
    """True when ``module`` (or anything inside it) carries LoRA layers."""
    from peft.tuners.lora import LoraLayer

    return any(isinstance(m, LoraLayer) for m in module.modules())


def lora_settings(module: nn.Module) -> dict[str, Any] | None:
    """``{"r", "alpha", "dropout", "target_modules"}`` of the LoRA adapter in ``module``, or None if it has none."""
    configs = getattr(module, "peft_config", None)
    if not configs or ADAPTER not in configs:
        for child in module.modules():  # the adapter may sit on the encoder inside a classifier
            configs = getattr(child, "peft_config", None)
            if configs and ADAPTER in configs:
                break
        else:
            return None
    cfg = configs[ADAPTER]
    targets = cfg.target_modules
    return {
        "r": int(cfg.r),
        "alpha": float(cfg.lora_alpha),
        "dropout": float(cfg.lora_dropout),
        "target_modules": sorted([targets] if isinstance(targets, str) else targets),
    }


def _normalise_targets(target_modules: str | Iterable[str]) -> list[str]:
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    targets = [str(t) for t in target_modules]
    if not targets or any(not t.strip() for t in targets):
        raise ValueError(f"LoRA target_modules must be a non-empty list of layer names, got {targets!r}")
    return sorted(set(targets))


def apply_lora(
    encoder: nn.Module, *, r: int, alpha: float, dropout: float, target_modules: str | Iterable[str]
) -> nn.Module:
    """Inject LoRA adapters (rank ``r``, scaling ``alpha / r``) into ``encoder`` in place and return it.

    ``target_modules`` names linear layers by their last name component (``query``) or by a
    longer dotted suffix (``attention.self.query``); each must match at least one linear layer,
    else ValueError listing the encoder's linear-layer names. All base weights are frozen, the
    adapter weights are trainable. Calling it again with the same settings returns the encoder
    unchanged (so callers may apply it before or inside ``assemble``); different settings on an
    encoder that already has an adapter are refused.
    """
    from peft import LoraConfig, inject_adapter_in_model

    r = int(r)
    if r < 1:
        raise ValueError(f"LoRA rank r must be >= 1, got {r}")
    if float(alpha) <= 0:
        raise ValueError(f"LoRA alpha must be > 0, got {alpha}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
    targets = _normalise_targets(target_modules)
    wanted = {"r": r, "alpha": float(alpha), "dropout": float(dropout), "target_modules": targets}
    if has_lora(encoder):
        current = lora_settings(encoder)
        if current == wanted:
            return encoder
        raise ValueError(
            f"{type(encoder).__name__} already has a LoRA adapter ({current}); "
            f"refusing to add a second one ({wanted}) - load a fresh encoder"
        )
    available = linear_layer_names(encoder)
    full_names = [n for names in available.values() for n in names]
    unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in full_names)]
    if unknown:
        hint = ", ".join(sorted(available)) or "none"
        raise ValueError(
            f"LoRA target_modules {unknown} match no linear layer of {type(encoder).__name__}; "
            f"its linear layers are named: {hint} (set training.lora_target_modules to some of "
            f"these, e.g. {sorted(available)[:2] if available else []})"
        )
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=float(dropout), target_modules=targets, bias="none")
    encoder = inject_adapter_in_model(config, encoder, adapter_name=ADAPTER)
    for name, p in encoder.named_parameters():  # inject_adapter_in_model freezes the base; make sure
        p.requires_grad_(is_lora_key(name))
    return encoder


def is_lora_key(name: str) -> bool:
    """True for a parameter / state-dict name inside a LoRA adapter (a ``lora_*`` path component)."""
    return any(part.startswith("lora_") for part in name.split("."))


def lora_param_names(model: nn.Module) -> set[str]:
    """The keys of ``model.state_dict()`` that are LoRA adapter weights (lora_A / lora_B ...)."""
    return {k for k in model.state_dict() if is_lora_key(k)}


def base_state_keys(encoder: nn.Module) -> set[str]:
    """The keys of ``encoder.state_dict()`` that are base (non-adapter) weights and buffers."""
    return {k for k in encoder.state_dict() if not is_lora_key(k)}


def base_weights_digest(encoder: nn.Module) -> str:
    """sha256 over the encoder's base weights (names without PEFT's ``base_layer`` step, dtypes, shapes, bytes).

    The same for the encoder before and after ``apply_lora``: an adapter checkpoint records it so
    that loading can tell whether the re-loaded base encoder is the one the adapter was trained on.
    """
    sd = encoder.state_dict()
    names = sorted(base_state_keys(encoder), key=lambda k: k.replace(_BASE_LAYER, "."))
    return tensors_sha256((k.replace(_BASE_LAYER, "."), sd[k]) for k in names)


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (shared parameters counted once)."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def lora_kwargs(train_cfg: Training) -> dict[str, Any]:
    """``apply_lora`` keyword arguments from the resolved training section's ``lora_*`` settings."""
    return {
        "r": train_cfg.lora_r,
        "alpha": train_cfg.lora_alpha,
        "dropout": train_cfg.lora_dropout,
        "target_modules": train_cfg.lora_target_modules,
    }
