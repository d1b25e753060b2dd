"""The pix2pix discriminator: a conditional PatchGAN.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017
(arXiv 1611.07004). The default settings reproduce the official PyTorch implementation's `basic`
70x70 PatchGAN with n_layers 3 exactly (2,768,705 parameters), so its pretrained weights load by a
key mapping alone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from .hub import HubMixin
from .layers import Norm, init_weights, make_norm


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The discriminator's shape, saved inside every training checkpoint."""

    in_channels: int = 6  # concat(edges, photo): the discriminator is conditional
    ndf: int = 64
    n_layers: int = 3  # 3 gives the 70x70 PatchGAN
    norm: Norm = "batch"
    first_bias: bool = True  # the TF tutorial's first conv has no bias (no "conv0.bias" key then)
    leaky_slope: float = 0.2  # the TF tutorial uses the Keras default 0.3


class PatchGANDiscriminator(nn.Module, HubMixin):
    """Conditional PatchGAN: classifies each overlapping patch of concat(edges, photo) as real or
    fake. With n_layers=3 every output logit sees a 70x70 window, and a 256x256 pair gives 30x30
    logits. The last block returns raw logits: the loss applies the sigmoid.
    `from_pretrained` / `save_pretrained` / `push_to_hub` follow the Hugging Face Hub's conventions (`hub`).
    """

    config_class: ClassVar[type] = DiscriminatorConfig
    hub_pipeline_tag: ClassVar[str | None] = None
    hub_summary: ClassVar[tuple[str, str]] = (
        "pix2pix PatchGAN discriminator",
        "Scores each patch of an (edge map, shoe photo) pair as real or fake: the adversary a pix2pix generator trains against.",
    )

    def __init__(self, config: DiscriminatorConfig | None = None, **overrides) -> None:
        super().__init__()
        config = DiscriminatorConfig(**{**asdict(config or DiscriminatorConfig()), **overrides})
        make_norm(config.norm, 1)
        self.config = config
        bias = config.norm != "batch"
        ndf, n = config.ndf, config.n_layers
        layers: dict[str, nn.Module] = {
            "conv0": nn.Conv2d(config.in_channels, ndf, 4, 2, 1, bias=config.first_bias),
            "act0": nn.LeakyReLU(config.leaky_slope, inplace=True),
        }
        channels = ndf
        for i in range(1, n + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n else 1  # the last hidden layer keeps the resolution
            layers[f"conv{i}"] = nn.Conv2d(channels, out, 4, stride, 1, bias=bias)
            layers[f"norm{i}"] = make_norm(config.norm, out)
            layers[f"act{i}"] = nn.LeakyReLU(config.leaky_slope, inplace=True)
            channels = out
        layers["head"] = nn.Conv2d(channels, 1, 4, 1, 1)
        self.model = nn.Sequential(OrderedDict(layers))
        init_weights(self)

    def forward(self, edges: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat([edges, photo], dim=1))


def receptive_field(n_layers: int = 3) -> int:
    """Side of the input window one PatchGAN logit sees (70 for n_layers=3), from the layer stack."""
    strides = [2] * n_layers + [1, 1]
    field = 1
    for stride in reversed(strides):
        field = field * stride + (4 - stride)
    return field
