"""The pix2pix objective against values computed by hand with the formulas (math.log / math.exp)."""

from __future__ import annotations

import math

import pytest
import torch

from edges2shoes_utils.util.errors import ConfigError
from edges2shoes_utils.nets.losses import (
    DEFAULT_LAMBDA_L1,
    PAPER_LAMBDA_L1,
    DiscriminatorLoss,
    GeneratorLoss,
    adversarial_loss,
    discriminator_loss,
    generator_loss,
)

REAL_LOGITS = [2.0, -1.0, 0.5, 0.0]
FAKE_LOGITS = [-3.0, 1.5, 0.25, -0.5]


def logits(values: list[float]) -> torch.Tensor:
    """A tiny PatchGAN-shaped output (N, 1, 2, 2)."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 2, 2)


def bce_vs_ones(values: list[float]) -> float:
    """mean of -log(sigmoid(x))."""
    return sum(-math.log(1 / (1 + math.exp(-x))) for x in values) / len(values)


def bce_vs_zeros(values: list[float]) -> float:
    """mean of -log(1 - sigmoid(x))."""
    return sum(-math.log(1 - 1 / (1 + math.exp(-x))) for x in values) / len(values)


def test_bce_against_ones_and_zeros_by_hand():
    assert adversarial_loss(logits(REAL_LOGITS), True).item() == pytest.approx(bce_vs_ones(REAL_LOGITS), rel=1e-6)
    assert adversarial_loss(logits(FAKE_LOGITS), False).item() == pytest.approx(bce_vs_zeros(FAKE_LOGITS), rel=1e-6)
    # Zero logits: sigmoid 0.5, so log 2 whichever the target.
    zero = torch.zeros(2, 1, 30, 30)
    assert adversarial_loss(zero, True).item() == pytest.approx(math.log(2), rel=1e-6)
    assert adversarial_loss(zero, False).item() == pytest.approx(math.log(2), rel=1e-6)


def test_bce_is_stable_for_extreme_logits():
    # -log(sigmoid(-80)) = log(1 + e^80), which is 80 to float precision; a naive sigmoid would give inf.
    loss = adversarial_loss(logits([-80.0, -80.0, 80.0, 80.0]), True)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx((2 * math.log1p(math.exp(80.0)) + 2 * math.log1p(math.exp(-80.0))) / 4, rel=1e-6)


def test_bce_gradient_by_hand():
    """d/dx mean(-log sigmoid(x)) = (sigmoid(x) - 1) / N."""
    x = logits(REAL_LOGITS).requires_grad_()
    adversarial_loss(x, True).backward()
    expected = [(1 / (1 + math.exp(-v)) - 1) / 4 for v in REAL_LOGITS]
    assert x.grad.flatten().tolist() == pytest.approx(expected, rel=1e-5)


def test_lsgan_by_hand():
    assert adversarial_loss(logits(REAL_LOGITS), True, "lsgan").item() == pytest.approx(
        sum((v - 1) ** 2 for v in REAL_LOGITS) / 4, rel=1e-6
    )
    assert adversarial_loss(logits(FAKE_LOGITS), False, "lsgan").item() == pytest.approx(
        sum(v**2 for v in FAKE_LOGITS) / 4, rel=1e-6
    )


@pytest.mark.parametrize("mode", ["bce", "lsgan"])
@pytest.mark.parametrize("halve", [False, True])
def test_discriminator_loss_components(mode, halve):
    loss = discriminator_loss(logits(REAL_LOGITS), logits(FAKE_LOGITS), mode=mode, halve=halve)
    assert isinstance(loss, DiscriminatorLoss)
    if mode == "bce":
        real, fake = bce_vs_ones(REAL_LOGITS), bce_vs_zeros(FAKE_LOGITS)
    else:
        real = sum((v - 1) ** 2 for v in REAL_LOGITS) / 4
        fake = sum(v**2 for v in FAKE_LOGITS) / 4
    assert loss.real.item() == pytest.approx(real, rel=1e-6)
    assert loss.fake.item() == pytest.approx(fake, rel=1e-6)
    assert loss.total.item() == pytest.approx((0.5 if halve else 1.0) * (real + fake), rel=1e-6)


def test_discriminator_loss_defaults_to_the_original_sum():
    summed = discriminator_loss(logits(REAL_LOGITS), logits(FAKE_LOGITS))
    assert summed.total.item() == pytest.approx(bce_vs_ones(REAL_LOGITS) + bce_vs_zeros(FAKE_LOGITS), rel=1e-6)


FAKE_IMAGE = [[0.5, -0.25], [1.0, 0.0]]
TARGET_IMAGE = [[0.0, 0.25], [-1.0, 0.5]]
L1_BY_HAND = (0.5 + 0.5 + 2.0 + 0.5) / 4


def images() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(FAKE_IMAGE).reshape(1, 1, 2, 2), torch.tensor(TARGET_IMAGE).reshape(1, 1, 2, 2)


@pytest.mark.parametrize("lambda_l1", [None, 100.0, 0.0, 1.5])
@pytest.mark.parametrize("mode", ["bce", "lsgan"])
def test_generator_loss_by_hand(lambda_l1, mode):
    fake, target = images()
    kwargs = {} if lambda_l1 is None else {"lambda_l1": lambda_l1}
    loss = generator_loss(logits(FAKE_LOGITS), fake, target, mode=mode, **kwargs)
    assert isinstance(loss, GeneratorLoss)
    weight = 10.0 if lambda_l1 is None else lambda_l1  # the original notebook's LAMBDA is the default
    adversarial = bce_vs_ones(FAKE_LOGITS) if mode == "bce" else sum((v - 1) ** 2 for v in FAKE_LOGITS) / 4
    assert loss.adversarial.item() == pytest.approx(adversarial, rel=1e-6)
    assert loss.l1.item() == pytest.approx(L1_BY_HAND, rel=1e-6)
    assert loss.total.item() == pytest.approx(adversarial + weight * L1_BY_HAND, rel=1e-6)


def test_lambda_constants():
    assert DEFAULT_LAMBDA_L1 == 10.0  # the original edges2shoes notebook
    assert PAPER_LAMBDA_L1 == 100.0  # Isola et al. 2017


def test_generator_loss_gradient_reaches_the_image():
    """d total / d fake = lambda * sign(fake - target) / N for the L1 term."""
    fake, target = images()
    fake.requires_grad_()
    generator_loss(logits(FAKE_LOGITS), fake, target, lambda_l1=100.0).total.backward()
    expected = [100.0 * math.copysign(1.0, f - t) / 4 for f, t in zip(sum(FAKE_IMAGE, []), sum(TARGET_IMAGE, []))]
    assert fake.grad.flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_losses_are_fp32_for_low_precision_logits():
    loss = adversarial_loss(logits(REAL_LOGITS).to(torch.bfloat16), True)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(bce_vs_ones(REAL_LOGITS), rel=1e-2)


def test_unknown_gan_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="wgan"):
        adversarial_loss(logits(REAL_LOGITS), True, "wgan")
    with pytest.raises(ConfigError):
        discriminator_loss(logits(REAL_LOGITS), logits(FAKE_LOGITS), mode="hinge")
