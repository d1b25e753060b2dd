"""One pix2pix training step (Isola et al. 2017, arXiv 1611.07004), shared with the benchmark.

D learns to tell (edges, photo) from (edges, G(edges)), then G learns to fool the updated D while
staying close to the photo in L1. The step returns its four losses as one tensor, in the order of
`LOSS_NAMES`, and never waits for the host, so the loop decides when to look at them.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..nets.losses import DEFAULT_LAMBDA_L1, GanMode, discriminator_loss, generator_loss
from .networks import Networks

LOSS_NAMES = ("g_adversarial", "g_l1", "d_real", "d_fake")  # the order train_step returns them in
LOSS_TITLES = {"g_adversarial": "G adversarial", "g_l1": "G L1", "d_real": "D real", "d_fake": "D fake"}


def train_step(
    nets: Networks, edges: torch.Tensor, photo: torch.Tensor, *,
    lambda_l1: float = DEFAULT_LAMBDA_L1, gan_mode: GanMode = "bce", d_loss_halve: bool = False,
) -> torch.Tensor:
    """One pix2pix step; returns the detached losses [G adversarial, G L1, D real, D fake].

    G runs forward once. D sees (edges, photo) and (edges, fake.detach()) and steps; then the
    updated D judges the same `fake` for G's loss, whose backward computes gradients for G's
    parameters only (`inputs=`), so no work is spent on D's weight gradients. No host sync.
    The objective's settings (`lambda_l1`, `gan_mode`, `d_loss_halve`) are TrainConfig's fields.
    """
    with nets.precision.autocast():
        fake = nets.step_generator(edges)
        real_logits = nets.step_discriminator(edges, photo)
        fake_logits = nets.step_discriminator(edges, fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits, mode=gan_mode, halve=d_loss_halve)
    nets.opt_d.zero_grad(set_to_none=True)
    nets.scaler.scale(d_loss.total).backward()
    nets.scaler.step(nets.opt_d)

    with nets.precision.autocast():
        judged = nets.discriminator_for_g(edges, fake)
    g_loss = generator_loss(judged, fake, photo, lambda_l1=lambda_l1, mode=gan_mode)
    nets.opt_g.zero_grad(set_to_none=True)
    nets.scaler.scale(g_loss.total).backward(inputs=nets.g_params)
    nets.scaler.step(nets.opt_g)
    nets.scaler.update()
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


__all__ = ["LOSS_NAMES", "LOSS_TITLES", "train_step", "lr_factor", "set_learning_rate"]
