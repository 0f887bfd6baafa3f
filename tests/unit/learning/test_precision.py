"""training.precision: resolution per device, autocast, the fp16 GradScaler step, bf16/fp16 training of a tiny BERT."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.helpers.training import CFG, SCORED, TINY, toy_data
from workflow_lib.config import Training
from workflow_lib.config.schema import ConfigError
from workflow_lib.learning.precision import Precision, _can_autocast, cpu_has_native_bf16, enable_tf32, resolve
from workflow_lib.learning.training import train

CPU = torch.device("cpu")
FP16_ON_CPU = _can_autocast(CPU, torch.float16)
needs_fp16 = pytest.mark.skipif(not FP16_ON_CPU, reason=f"torch {torch.__version__} has no float16 CPU autocast")


def test_resolve_per_mode():
    assert resolve("fp32", CPU) is None
    assert resolve("bf16", CPU) is torch.bfloat16  # runs everywhere on CPU (emulated without AMX/AVX512-BF16)
    assert resolve("auto", CPU) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert resolve("auto", "meta") is None  # no native bf16 (nor autocast) there: fp32
    if FP16_ON_CPU:
        assert resolve("fp16", CPU) is torch.float16


@pytest.mark.parametrize("mode", ["fp16", "bf16"])
def test_a_precision_the_device_cannot_run_is_an_error_naming_the_key(mode):
    with pytest.raises(
        ConfigError,
        match=rf"training.precision: '{mode}' cannot run on this meta device.*"
        r"set training.precision to auto .* or fp32",
    ):
        resolve(mode, "meta")
    with pytest.raises(ConfigError, match="training.precision: unknown value 'fp8'"):
        resolve("fp8", CPU)
    with pytest.raises(ConfigError, match="precision"):
        Training.resolve({"precision": "fp8"})
    assert Training.resolve({}).precision == "auto" and Training.resolve({}).group_by_length is True


def test_autocast_dtype_and_scaler_only_for_fp16_training():
    lin = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    for mode, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)) + (
        (("fp16", torch.float16),) if FP16_ON_CPU else ()
    ):
        p = Precision.for_device(mode, CPU)
        with p.autocast():
            assert lin(x).dtype == dtype
        assert p.name == mode and (p.scaler is not None) == (mode == "fp16")
        assert p.state_dict() is None or p.state_dict()["scale"] == 65536.0
        assert Precision.for_device(mode, CPU, training=False).scaler is None
    assert lin.weight.dtype == torch.float32


def _regression(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x, y = torch.randn(32, 6), torch.randn(32, 1)
    return model, x, y


def test_fp32_step_is_the_plain_step():
    a, x, y = _regression()
    b, _, _ = _regression()
    oa, ob = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    assert Precision.for_device("fp32", CPU).step(torch.nn.functional.mse_loss(a(x), y), oa) is True
    torch.nn.functional.mse_loss(b(x), y).backward()
    ob.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@needs_fp16
def test_fp16_step_unscales_before_clipping_and_skips_non_finite_gradients():
    model, x, y = _regression()
    ref, _, _ = _regression()
    torch.nn.functional.mse_loss(ref(x), y).backward()  # float32 gradients
    p = Precision.for_device("fp16", CPU)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def clip():
        seen.append([q.grad.clone() for q in model.parameters()])

    assert p.step(torch.nn.functional.mse_loss(model(x), y), opt, clip=clip) is True
    for g, q in zip(seen[0], ref.parameters()):  # the clip saw true gradients, not ones scaled by 65536
        torch.testing.assert_close(g, q.grad)
    assert p.scaler.get_scale() == 65536.0
    before = [q.detach().clone() for q in model.parameters()]
    opt.zero_grad()
    assert p.step(model(x).sum() * float("inf"), opt) is False  # inf gradients: no step, the scale backs off
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert p.scaler.get_scale() == 32768.0
    # the scale is state: a new scaler continues from it; None (a state without a scaler) leaves it alone
    q = Precision.for_device("fp16", CPU)
    q.load_state_dict(p.state_dict())
    assert q.scaler.get_scale() == 32768.0
    q.load_state_dict(None)
    assert q.scaler.get_scale() == 32768.0


def test_tf32_is_switched_on_for_cuda_only():
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        enable_tf32(CPU)
        assert torch.backends.cuda.matmul.allow_tf32 is False
        enable_tf32(torch.device("cuda"))  # sets the flags; needs no GPU
        assert torch.backends.cuda.matmul.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags[:2]
        torch.set_float32_matmul_precision(flags[2])


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.fixture(scope="module")
def fp32_run(data):
    tr, va = data
    return train(TINY, CFG.replace(epochs=6, precision="fp32"), tr, va, **SCORED)


@pytest.mark.parametrize("mode", ["bf16", pytest.param("fp16", marks=needs_fp16)])
def test_mixed_precision_training_learns_with_float32_weights(data, fp32_run, mode, caplog):
    tr, va = data
    with caplog.at_level(logging.INFO, logger="workflow_lib.learning.training"):
        r = train(TINY, CFG.replace(epochs=6, precision=mode), tr, va, **SCORED)
    assert f"{mode} arithmetic (training.precision: {mode})" in caplog.text
    losses = [h["train_loss"] for h in r.history]
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses
    assert losses != [h["train_loss"] for h in fp32_run.history]  # autocast was in force
    assert all(p.dtype == torch.float32 for p in r.model.parameters())
    assert np.isfinite(r.val_probs).all() and r.val_probs.dtype == np.float32
    assert r.best_score >= 0.8 and abs(r.best_score - fp32_run.best_score) < 0.1, (r.best_score, fp32_run.best_score)
