"""Multi-label losses: hand-computed values on a 2x2 example, label smoothing, weighting, build_loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from workflow_lib.learning.models.losses import LOSSES, build_loss

NAMES = ["bce", "weighted_bce", "focal", "adaptive_focal", "hybrid"]

# The 2x2 example, elements in row order: (x, y) = (0, 1), (2, 0), (-1, 0), (0.5, 1).
LOGITS = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
TARGETS = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
PW = torch.tensor([3.0, 0.5])  # per label (column) positive weight
PW_ELEM = [3.0, 0.5, 3.0, 0.5]
# BCE of each element, -[y ln s(x) + (1-y) ln(1-s(x))]:
# ln 2, ln(1+e^2), ln(1+e^-1), ln(1+e^-0.5)
CE = [0.6931471805599453, 2.1269280110429714, 0.3132616875182228, 0.47407698418010663]
# 1 - p_t = 1 - [s(x) y + (1-s(x))(1-y)]: 1-s(0), s(2), s(-1), 1-s(0.5)
Q = [0.5, 0.8807970779778823, 0.2689414213699951, 0.3775406687981454]


def mean(v):
    return sum(v) / len(v)


def test_hand_numbers_follow_from_the_formulas():
    s = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert (
        pytest.approx(
            [math.log(2), math.log(1 + math.exp(2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(-0.5))],
            rel=1e-12,
        )
        == CE
    )
    assert pytest.approx([1 - s(0), s(2), s(-1), 1 - s(0.5)], rel=1e-12) == Q


def test_bce_and_weighted_bce_match_hand_computation():
    # bce: mean(CE) = 0.9018534658253119
    assert build_loss("bce")(LOGITS, TARGETS).item() == pytest.approx(0.9018534658253119, rel=1e-6)
    assert mean(CE) == pytest.approx(0.9018534658253119)
    # weighted_bce: positive terms times pos_weight, mean(3 ln2, ln(1+e^2), ln(1+e^-1), 0.5 ln(1+e^-.5))
    want = mean([3.0 * CE[0], CE[1], CE[2], 0.5 * CE[3]])
    assert want == pytest.approx(1.189167433082771)
    assert build_loss("weighted_bce", pos_weight=PW)(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)


def test_focal_matches_hand_computation():
    # focal, gamma 2: mean((1-p_t)^2 * CE) = 0.4783991306468415
    want = mean([q**2 * c for q, c in zip(Q, CE)])
    assert want == pytest.approx(0.4783991306468415)
    assert build_loss("focal", gamma=2.0)(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)
    # gamma 3.5
    want = mean([q**3.5 * c for q, c in zip(Q, CE)])
    assert build_loss("focal", gamma=3.5)(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)
    # with pos_weight: the BCE factor is weighted, mean((1-p_t)^2 * w_y * CE) = 0.5565958419021466
    want = mean([q**2 * (w if y else 1.0) * c for q, c, w, y in zip(Q, CE, PW_ELEM, [1, 0, 0, 1])])
    assert want == pytest.approx(0.5565958419021466)
    assert build_loss("focal", gamma=2.0, pos_weight=PW)(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)


def test_adaptive_focal_matches_hand_computation():
    # gamma_j = gamma + s (1 - min(1, 1/w_j)); gamma 2, s 2, w = (3, 0.5):
    # label 0: 2 + 2 (1 - 1/3) = 10/3; label 1: 1/w = 2 -> clipped to 1 -> gamma_1 = 2
    loss = build_loss("adaptive_focal", pos_weight=PW, gamma=2.0, gamma_scale=2.0)
    assert loss.label_gamma.tolist() == pytest.approx([10 / 3, 2.0])
    g = [10 / 3, 2.0, 10 / 3, 2.0]
    # mean((gamma_j / gamma) (1-p_t)^gamma_j CE) = 0.4597055397850447 (BCE unweighted)
    want = mean([(gj / 2.0) * q**gj * c for gj, q, c in zip(g, Q, CE)])
    assert want == pytest.approx(0.4597055397850447)
    assert loss(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-5)
    # default scale is 2.0; gamma 3, s 6: gamma_0 = 3 + 6 * 2/3 = 7
    loss = build_loss("adaptive_focal", pos_weight=PW, gamma=3.0, gamma_scale=6.0)
    g = [7.0, 3.0, 7.0, 3.0]
    want = mean([(gj / 3.0) * q**gj * c for gj, q, c in zip(g, Q, CE)])
    assert loss(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-5)
    assert build_loss("adaptive_focal", pos_weight=PW).gamma_scale == 2.0


def test_hybrid_matches_hand_computation():
    # alpha 0.3: 0.3 * weighted_bce + 0.7 * focal(gamma 2, unweighted) = 0.6916296213776203
    wbce = mean([w * c if y else c for c, w, y in zip(CE, PW_ELEM, [1, 0, 0, 1])])
    focal = mean([q**2 * c for q, c in zip(Q, CE)])
    want = 0.3 * wbce + 0.7 * focal
    assert want == pytest.approx(0.6916296213776203)
    got = build_loss("hybrid", pos_weight=PW, alpha=0.3, gamma=2.0)(LOGITS, TARGETS).item()
    assert got == pytest.approx(want, rel=1e-6)


def test_label_smoothing_values():
    # ls 0.1: targets 1 -> 0.95, 0 -> 0.05; CE_ls = -[t ln s(x) + (1-t) ln(1-s(x))]
    # = ln2, 0.05 ln(1+e^-2) + 0.95 ln(1+e^2), 0.05 ln(1+e) + 0.95 ln(1+e^-1), 0.95 ln(1+e^-.5) + 0.05 ln(1+e^.5)
    ce_ls = [0.6931471805599453, 2.0269280110429713, 0.36326168751822285, 0.4990769841801066]
    assert ce_ls[1] == pytest.approx(0.05 * math.log(1 + math.exp(-2)) + 0.95 * math.log(1 + math.exp(2)))
    assert build_loss("bce", label_smoothing=0.1)(LOGITS, TARGETS).item() == pytest.approx(mean(ce_ls), rel=1e-6)
    # focal: 1 - p_t with soft targets, p_t = s(x) t + (1-s(x))(1-t)
    q_ls = [0.5, 0.8427173701800941, 0.29204727923299567, 0.3897866019183309]
    want = mean([q**2 * c for q, c in zip(q_ls, ce_ls)])
    assert want == pytest.approx(0.4298912994082925)
    assert build_loss("focal", label_smoothing=0.1)(LOGITS, TARGETS).item() == pytest.approx(want, rel=1e-6)


def _build(name, **kw):
    return build_loss(name, pos_weight=PW if LOSSES[name].needs_class_weights else None, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_label_smoothing_is_applied_to_targets_in_every_loss(name):
    logits = torch.tensor([[4.0, -3.0], [-5.0, 0.3]])
    plain = _build(name)(logits, TARGETS)
    assert torch.equal(_build(name, label_smoothing=0.0)(logits, TARGETS), plain)  # 0 changes nothing
    smoothed = _build(name, label_smoothing=0.2)(logits, TARGETS)
    # exactly the loss of the targets t (1 - 0.2) + 0.5 * 0.2, i.e. 0.9 / 0.1
    assert torch.allclose(smoothed, _build(name)(logits, TARGETS * 0.8 + 0.1), atol=1e-7)
    # confident, correct predictions are penalised once targets are smoothed
    sure = torch.tensor([[8.0, -8.0], [-8.0, 8.0]])
    assert _build(name, label_smoothing=0.1)(sure, TARGETS) > _build(name)(sure, TARGETS) + 1e-4


def test_focal_with_gamma_zero_is_bce_and_weighted_focal_gamma_zero_is_weighted_bce():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(6, 9, generator=g), (torch.rand(6, 9, generator=g) > 0.6).float()
    pw = torch.linspace(0.5, 5, 9)
    assert torch.allclose(
        build_loss("focal", gamma=0.0)(logits, targets), build_loss("bce")(logits, targets), rtol=1e-6, atol=0
    )
    assert torch.allclose(
        build_loss("focal", gamma=0.0, pos_weight=pw)(logits, targets),
        build_loss("weighted_bce", pos_weight=pw)(logits, targets),
        rtol=1e-6,
        atol=0,
    )
    assert torch.allclose(
        build_loss("focal", gamma=0.0, label_smoothing=0.1)(logits, targets),
        build_loss("bce", label_smoothing=0.1)(logits, targets),
        rtol=1e-6,
        atol=0,
    )
    # focusing lowers the loss of every element (1 - p_t < 1)
    assert build_loss("focal", gamma=2.0)(logits, targets) < build_loss("bce")(logits, targets)


def test_hybrid_endpoints_and_adaptive_focal_reductions():
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(6, 9, generator=g), (torch.rand(6, 9, generator=g) > 0.6).float()
    pw = torch.linspace(0.5, 5, 9)
    wbce = build_loss("weighted_bce", pos_weight=pw)(logits, targets)
    focal = build_loss("focal", gamma=2.5)(logits, targets)
    for alpha, want in ((1.0, wbce), (0.0, focal), (0.25, 0.25 * wbce + 0.75 * focal)):
        got = build_loss("hybrid", pos_weight=pw, alpha=alpha, gamma=2.5)(logits, targets)
        assert torch.allclose(got, want, rtol=1e-6), alpha
    # adaptive_focal: scale 0, or only balanced labels (w <= 1), is plain focal
    assert torch.allclose(
        build_loss("adaptive_focal", pos_weight=pw, gamma=2.5, gamma_scale=0.0)(logits, targets), focal, rtol=1e-6
    )
    assert torch.allclose(
        build_loss("adaptive_focal", pos_weight=torch.full((9,), 0.7), gamma=2.5)(logits, targets), focal, rtol=1e-6
    )


@pytest.mark.parametrize("name", ["weighted_bce", "adaptive_focal", "hybrid"])
def test_weighted_variants_use_pos_weight_from_the_training_labels(name):
    labels = np.array([[1, 0], [0, 0], [0, 0], [0, 1], [0, 1], [0, 1]])  # w = (5, 1)
    loss = build_loss(name, train_labels=labels)
    assert loss.pos_weight.tolist() == pytest.approx([5.0, 1.0])
    given = build_loss(name, pos_weight=torch.tensor([5.0, 1.0]))
    assert torch.equal(loss(LOGITS, TARGETS), given(LOGITS, TARGETS))
    # a different weight gives a different loss
    assert not torch.allclose(
        build_loss(name, pos_weight=torch.tensor([1.0, 1.0]))(LOGITS, TARGETS), loss(LOGITS, TARGETS)
    )
    with pytest.raises(ValueError, match="training labels"):
        build_loss(name)


def test_unweighted_losses_need_no_labels():
    assert build_loss("bce").__class__.needs_class_weights is False
    assert build_loss("focal").pos_weight is None  # build_loss never computes it for focal
    assert build_loss("focal", train_labels=np.eye(2)).pos_weight is None


@pytest.mark.parametrize("name", NAMES)
def test_build_loss_passes_gamma_alpha_smoothing_and_ignores_unused_or_none(name):
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    loss = build_loss(name, train_labels=labels, gamma=3.0, alpha=0.7, label_smoothing=0.05, other=1)
    assert loss.label_smoothing == 0.05
    if name in ("focal", "adaptive_focal", "hybrid"):
        assert loss.gamma == 3.0
    if name == "hybrid":
        assert loss.alpha == 0.7
    # None takes the class default
    default = build_loss(name, train_labels=labels, gamma=None, alpha=None, label_smoothing=None)
    assert default.label_smoothing == 0.0 and getattr(default, "gamma", 2.0) == 2.0
    assert getattr(default, "alpha", 0.5) == 0.5
    # gradients are finite and point the right way (raise positive logits, lower negative ones)
    x = LOGITS.clone().requires_grad_(True)
    loss(x, TARGETS).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[TARGETS == 1] < 0).all() and (x.grad[TARGETS == 0] > 0).all()


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="gamma"):
        build_loss("focal", gamma=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        build_loss("hybrid", pos_weight=PW, alpha=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        build_loss("bce", label_smoothing=1.0)
    with pytest.raises(ValueError, match="gamma > 0"):
        build_loss("adaptive_focal", pos_weight=PW, gamma=0.0)


def test_unknown_loss_lists_the_allowed_names():
    assert set(LOSSES) >= set(NAMES)
    with pytest.raises(ValueError) as err:
        build_loss("nope")
    msg = str(err.value)
    assert "unknown loss 'nope'" in msg
    assert all(repr(n) in msg for n in NAMES)


@pytest.mark.parametrize("name", ["focal", "adaptive_focal", "hybrid"])
@pytest.mark.parametrize("gamma", [0.3, 2.0])
def test_focal_losses_stay_finite_on_saturated_logits(name, gamma):
    # 1 - sigmoid(30) is 0 in float32; a naive (1 - p_t)^gamma has an infinite gradient there for gamma < 1
    x = torch.tensor([[30.0, -30.0], [100.0, -0.5]], requires_grad=True)
    loss = _build(name, gamma=gamma)(x, TARGETS)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert x.grad[1, 1] < 0  # the one wrong prediction still gets pushed the right way
