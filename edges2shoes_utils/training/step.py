"""One pix2pix training step (Isola et al. 2017, arXiv 1611.07004), shared with the benchmark.

D learns to tell (edges, photo) from (edges, G(edges)), then G learns to fool the updated D while
staying close to the photo in L1. The step returns its four losses as one tensor, in the order of
`LOSS_NAMES`, and never waits for the host, so the loop decides when to look at them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from ..nets.losses import DEFAULT_LAMBDA_L1, discriminator_loss, generator_loss
from .device import Precision

LOSS_NAMES = ("g_adversarial", "g_l1", "d_real", "d_fake")  # the order train_step returns them in
LOSS_TITLES = {"g_adversarial": "G adversarial", "g_l1": "G L1", "d_real": "D real", "d_fake": "D fake"}


@dataclass
class StepParts:
    """What one step needs. `discriminator` may be wrapped in DDP (it is trained); `discriminator_for_g`
    is the bare network G's loss runs through, so G's backward never triggers D's gradient sync."""

    generator: nn.Module
    discriminator: nn.Module
    discriminator_for_g: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: Precision
    lambda_l1: float = DEFAULT_LAMBDA_L1
    gan_mode: str = "bce"
    d_loss_halve: bool = False
    g_params: list = field(default_factory=list)


def train_step(parts: StepParts, edges: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """One pix2pix step; returns the detached losses [G adversarial, G L1, D real, D fake].

    G runs forward once. D sees (edges, photo) and (edges, fake.detach()) and steps; then the
    updated D judges the same `fake` for G's loss, whose backward computes gradients for G's
    parameters only (`inputs=`), so no work is spent on D's weight gradients. No host sync.
    """
    with parts.precision.autocast():
        fake = parts.generator(edges)
        real_logits = parts.discriminator(edges, photo)
        fake_logits = parts.discriminator(edges, fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits, mode=parts.gan_mode, halve=parts.d_loss_halve)
    parts.opt_d.zero_grad(set_to_none=True)
    parts.scaler.scale(d_loss.total).backward()
    parts.scaler.step(parts.opt_d)

    with parts.precision.autocast():
        judged = parts.discriminator_for_g(edges, fake)
    g_loss = generator_loss(judged, fake, photo, lambda_l1=parts.lambda_l1, mode=parts.gan_mode)
    parts.opt_g.zero_grad(set_to_none=True)
    g_params = parts.g_params or [p for p in parts.generator.parameters() if p.requires_grad]
    parts.scaler.scale(g_loss.total).backward(inputs=g_params)
    parts.scaler.step(parts.opt_g)
    parts.scaler.update()
    return torch.stack([g_loss.adversarial, g_loss.l1, d_loss.real, d_loss.fake]).detach().float()


def set_learning_rate(optimizers: Iterable[torch.optim.Optimizer], lr: float) -> None:
    """Set every parameter group of every optimiser to `lr`."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """Learning-rate multiplier for `epoch` (from 0): 1, then linear towards 0 over the last
    `decay_epochs` epochs, as the official code's `linear` policy (never exactly 0)."""
    if decay_epochs <= 0:
        return 1.0
    first_decayed = epochs - decay_epochs
    if epoch < first_decayed:
        return 1.0
    return (epochs - epoch) / (decay_epochs + 1)


__all__ = ["LOSS_NAMES", "LOSS_TITLES", "StepParts", "train_step", "lr_factor", "set_learning_rate"]
