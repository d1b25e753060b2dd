"""Layers and helpers shared by the pix2pix networks: the normalisation each setting uses, a batch
norm that accepts one value per channel (as Keras does), the paper's weight init, and a parameter
count."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..util.errors import ConfigError

Norm = Literal["batch", "instance", "none"]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """The normalisation layer the official code uses for each setting."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be 'batch', 'instance' or 'none', not {kind!r}")


class SingleValueBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that, like Keras, accepts one value per channel in training mode.

    The TF layout normalises its innermost 1x1 block, and the TF tutorial trains at batch size 1,
    where nn.BatchNorm2d raises. Keras returns beta there (each value minus its own mean is 0) and
    moves the running variance towards 0; so does this. Any other input takes the usual path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1):
            return super().forward(x)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(x.detach().reshape(-1).to(self.running_mean.dtype), m)
                self.running_var.mul_(1.0 - m)
        # The ATen op skips the Python-level size check; with one value the batch variance is 0.
        return torch.batch_norm(x, self.weight, self.bias, None, None, True, 0.0, self.eps, False)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's init: conv weights N(0, std), norm scales N(1, std), all biases zero."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm2d, nn.InstanceNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)


def count_parameters(module: nn.Module) -> int:
    """The number of parameters in `module` (54,413,955 for the paper-size generator)."""
    return sum(p.numel() for p in module.parameters())
