"""Mixed precision of training and inference: ``training.precision`` (fp32 | bf16 | fp16 | auto).

``Precision.for_device(mode, device)`` resolves the setting for a device and gives

- ``.autocast()``: torch.autocast with the resolved dtype (a no-op for fp32); it wraps the forward
  pass and the loss (and prediction / the frozen-layer cache), while parameters, gradients and the
  optimizer state stay float32;
- ``.scaler``: a torch.amp.GradScaler for fp16 only (bf16 has float32's range and needs none);
  its state_dict is part of the resumable training state (``.state_dict()`` / ``.load_state_dict()``);
- ``.step(loss, optimizer, clip=...)``: backward (scaled with fp16), gradients unscaled before
  clipping, the optimizer step (skipped by the scaler when a gradient is inf/nan) and the scale update.

``auto`` is bf16 where the device runs it natively (CUDA with bf16 support; a CPU with AMX or
AVX512-BF16) and fp32 elsewhere. On CUDA, TF32 matmuls are switched on when the device is chosen.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from workflow_lib.config.schema import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls in hardware (AMX tiles or AVX512-BF16); else torch emulates them."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            try:
                if fn():
                    return True
            except (RuntimeError, AttributeError):
                pass
    return False


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively (what ``auto`` picks bf16 for)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def _can_autocast(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch.autocast runs ``dtype`` on this device type (torch warns and disables it otherwise)."""
    if not torch.amp.is_autocast_available(device.type):
        return False
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = torch.autocast(device.type, dtype=dtype)
    return bool(getattr(ctx, "_enabled", True))


def resolve(mode: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``training.precision: mode`` on ``device`` (None: float32, no autocast)."""
    device = torch.device(device)
    if mode == "auto":
        return torch.bfloat16 if native_bf16(device) and _can_autocast(device, torch.bfloat16) else None
    if mode not in DTYPES:
        raise ConfigError(f"training.precision: unknown value {mode!r}; choose one of auto, {', '.join(DTYPES)}")
    dtype = DTYPES[mode]
    if dtype is not None and not _can_autocast(device, dtype):
        raise ConfigError(
            f"training.precision: {mode!r} cannot run on this {device.type} device (torch "
            f"{torch.__version__} has no {NAMES[dtype]} autocast for it); set training.precision "
            f"to auto (bf16 where the device runs it natively, else fp32) or fp32"
        )
    return dtype


def enable_tf32(device: torch.device) -> None:
    """TF32 matmuls and convolutions on CUDA (float32 storage, ~10-bit mantissa products); nothing elsewhere."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


@dataclass
class Precision:
    """The resolved precision of one device; see the module docstring."""

    dtype: torch.dtype | None  # autocast dtype; None = float32
    device: torch.device
    scaler: torch.amp.GradScaler | None = None  # fp16 training only

    @classmethod
    def for_device(cls, mode: str, device: torch.device | str, *, training: bool = True) -> Precision:
        """Resolve ``mode`` for ``device`` (TF32 on for CUDA); ``training``: with fp16, a GradScaler."""
        device = torch.device(device)
        enable_tf32(device)
        dtype = resolve(mode, device)
        scaler = torch.amp.GradScaler(device.type) if training and dtype == torch.float16 else None
        return cls(dtype, device, scaler)

    @property
    def name(self) -> str:
        return NAMES[self.dtype]

    def autocast(self) -> AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, *, clip: Callable[[], None] | None = None
    ) -> bool:
        """Backward of ``loss``, ``clip()`` on the true (unscaled) gradients, optimizer step, scale update.

        Returns False when the fp16 scaler skipped the step (inf/nan gradients; the scale backs off).
        """
        if self.scaler is None:
            loss.backward()
            if clip is not None:
                clip()
            optimizer.step()
            return True
        scale = self.scaler.get_scale()
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        if clip is not None:
            clip()
        self.scaler.step(optimizer)
        self.scaler.update()
        return self.scaler.get_scale() >= scale

    def state_dict(self) -> dict | None:
        """The scaler's state (None without one: fp32, bf16, inference)."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: Mapping | None) -> None:
        """Continue from a saved scaler state; None (a state saved without a scaler) leaves the scaler as is."""
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(dict(state))
