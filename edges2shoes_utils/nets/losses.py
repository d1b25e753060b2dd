"""The pix2pix objective (Isola et al. 2017, eq. 4): a conditional GAN loss plus lambda x L1.

Defaults follow the original edges2shoes notebook: BCE with logits against all-ones (real) and
all-zeros (fake) targets shaped like the PatchGAN output, lambda = 10 (the paper uses 100; the
original lowered it because its discriminator learned poorly), and a discriminator loss that
sums the real and fake terms (the official implementation halves the sum to slow D down).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from ..util.errors import ConfigError

GanMode = Literal["bce", "lsgan"]

PAPER_LAMBDA_L1 = 100.0
DEFAULT_LAMBDA_L1 = 10.0


class GeneratorLoss(NamedTuple):
    total: torch.Tensor  # adversarial + lambda_l1 * l1: what the optimiser minimises
    adversarial: torch.Tensor
    l1: torch.Tensor  # unweighted mean absolute error


class DiscriminatorLoss(NamedTuple):
    total: torch.Tensor  # (real + fake), times 0.5 when halved
    real: torch.Tensor
    fake: torch.Tensor


def adversarial_loss(logits: torch.Tensor, target_is_real: bool, mode: GanMode = "bce") -> torch.Tensor:
    """Loss of `logits` against a constant all-ones (real) or all-zeros (fake) target map.

    `bce`: binary cross-entropy on the raw logits (numerically safe sigmoid inside).
    `lsgan`: mean squared error of the raw outputs (Mao et al. 2017), as in the official option.
    """
    logits = logits.float()  # keep the loss in fp32 under autocast
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    raise ConfigError(f"gan mode must be 'bce' or 'lsgan', not {mode!r}")


def generator_loss(
    fake_logits: torch.Tensor,
    fake: torch.Tensor,
    target: torch.Tensor,
    lambda_l1: float = DEFAULT_LAMBDA_L1,
    mode: GanMode = "bce",
) -> GeneratorLoss:
    """G wants D to call its output real, and its output close to the target photo in L1."""
    adversarial = adversarial_loss(fake_logits, True, mode)
    l1 = F.l1_loss(fake.float(), target.float())
    return GeneratorLoss(adversarial + lambda_l1 * l1, adversarial, l1)


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    mode: GanMode = "bce",
    halve: bool = False,
) -> DiscriminatorLoss:
    """D wants real pairs called real and generated pairs called fake.

    `halve=False` sums the two terms like the original notebook; `halve=True` is the official
    implementation's 0.5 x (real + fake).
    """
    real = adversarial_loss(real_logits, True, mode)
    fake = adversarial_loss(fake_logits, False, mode)
    total = real + fake
    return DiscriminatorLoss(0.5 * total if halve else total, real, fake)
