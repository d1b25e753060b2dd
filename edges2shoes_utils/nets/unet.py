"""The pix2pix generator: a U-Net with a skip connection at every level.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017
(arXiv 1611.07004). The default settings reproduce the official PyTorch implementation's `unet_256`
with batch norm and dropout exactly (54,413,955 parameters), so its pretrained weights load by a key
mapping alone.

A second layout, `layout="tf"`, matches the TensorFlow pix2pix tutorial that the original
edges2shoes notebook followed (post-activation blocks, batch norm on the innermost down block,
dropout on the first three up blocks, `[upsampled, skip]` concatenation). A third,
`layout="pytorch-gan"`, matches PyTorch-GAN's `GeneratorUNet` (the `huggan/pix2pix-*` models; its
blocks are built in `pytorch_gan_unet`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import torch
from torch import nn

from ..util.errors import ConfigError
from . import pytorch_gan_unet
from .hub import HubMixin
from .layers import Norm, SingleValueBatchNorm2d, init_weights, make_norm

Layout = Literal["official", "tf", "pytorch-gan"]
LAYOUTS: tuple[str, ...] = ("official", "tf", "pytorch-gan")


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator's shape, saved inside every checkpoint and export."""

    in_channels: int = 3  # edge map channels (RGB, as in the dataset)
    out_channels: int = 3  # photo channels
    ngf: int = 64  # filters of the outermost level; doubles per level up to 8 * ngf
    levels: int = 8  # down-sampling steps: 8 for 256x256, 7 for 128x128, 6 for 64x64
    norm: Norm = "batch"
    dropout: bool = True  # dropout 0.5 in the decoder's inner blocks (the paper's only noise source)
    layout: Layout = "official"
    leaky_slope: float = 0.2  # encoder LeakyReLU slope; the Keras default used by the TF layout is 0.3

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (one halving per level)."""
        return 2**self.levels


def level_channels(ngf: int, level: int) -> int:
    """Channels produced by encoder level `level` (0 = outermost): ngf, 2ngf, 4ngf, 8ngf, 8ngf, ..."""
    return ngf * min(2**level, 8)


class UNetGenerator(nn.Module, HubMixin):
    """U-Net: `levels` stride-2 convolutions down, as many transposed convolutions up, with a skip
    connection from every encoder level to the decoder level of the same resolution.

    `encoder[i]` produces the level-i features (resolution / 2**(i+1)); `decoder[i]` produces the
    output at the resolution encoder[i] received, so `decoder[0]` is the tanh image head.
    `from_pretrained` / `save_pretrained` / `push_to_hub` follow the Hugging Face Hub's conventions (`hub`).
    """

    config_class: ClassVar[type] = GeneratorConfig
    hub_pipeline_tag: ClassVar[str | None] = "image-to-image"
    hub_summary: ClassVar[tuple[str, str]] = (
        "pix2pix edges2shoes generator",
        "Turns a shoe's edge map, or a hand-drawn sketch of a shoe seen from the side (toe to the left), into a "
        "photo of that shoe.",
    )

    def __init__(self, config: GeneratorConfig | None = None, **overrides) -> None:
        super().__init__()
        config = GeneratorConfig(**{**asdict(config or GeneratorConfig()), **overrides})
        if config.levels < 2:
            raise ConfigError(f"a U-Net needs at least 2 levels, got levels={config.levels}")
        if config.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, not {config.layout!r}")
        make_norm(config.norm, 1)  # validate the norm name before building anything
        self.config = config
        self.encoder = nn.ModuleList(self._down_block(i) for i in range(config.levels))
        self.decoder = nn.ModuleList(self._up_block(i) for i in range(config.levels))
        init_weights(self)

    # The official code omits conv biases before batch norm (the norm's shift replaces them).
    @property
    def _conv_bias(self) -> bool:
        return self.config.norm != "batch"

    def _down_block(self, level: int) -> nn.Sequential:
        c = self.config
        in_ch = c.in_channels if level == 0 else level_channels(c.ngf, level - 1)
        out_ch = level_channels(c.ngf, level)
        innermost = level == c.levels - 1
        if c.layout == "pytorch-gan":
            return pytorch_gan_unet.down_block(in_ch, out_ch, level=level, levels=c.levels, norm=c.norm,
                                               leaky_slope=c.leaky_slope, dropout=c.dropout)
        bias = self._conv_bias if c.layout == "official" else False
        conv = nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)
        act = nn.LeakyReLU(c.leaky_slope, inplace=c.layout == "official")
        layers: dict[str, nn.Module] = {}
        if c.layout == "official":
            # Pre-activation: LeakyReLU -> conv -> norm; the first level is a bare conv and the
            # innermost level has no norm (it works on a 1x1 map).
            if level > 0:
                layers["act"] = act
            layers["conv"] = conv
            if 0 < level and not innermost:
                layers["norm"] = make_norm(c.norm, out_ch)
        else:
            # TF tutorial: conv -> norm (all but the first level, innermost included) -> LeakyReLU.
            layers["conv"] = conv
            if level > 0:
                single = innermost and c.norm == "batch"  # a 1x1 map: one value per channel at batch 1
                layers["norm"] = SingleValueBatchNorm2d(out_ch) if single else make_norm(c.norm, out_ch)
            layers["act"] = act
        return nn.Sequential(OrderedDict(layers))

    def _dropout_levels(self) -> set[int]:
        """Decoder levels with dropout. Official: the blocks between the innermost one and the first
        that changes width (`levels - 5` of them: three at 256x256, two at 128, one at 64). The TF
        tutorial: the innermost three."""
        if not self.config.dropout:
            return set()
        if self.config.layout == "official":
            top, count = self.config.levels - 2, min(3, max(0, self.config.levels - 5))
        else:
            top, count = self.config.levels - 1, 3
        return {lvl for lvl in range(top, top - count, -1) if lvl >= 1}

    def _up_block(self, level: int) -> nn.Sequential:
        c = self.config
        innermost = level == c.levels - 1
        in_ch = level_channels(c.ngf, level) * (1 if innermost else 2)
        outermost = level == 0
        out_ch = c.out_channels if outermost else level_channels(c.ngf, level - 1)
        if c.layout == "pytorch-gan":
            if outermost:
                return pytorch_gan_unet.output_head(in_ch, out_ch)
            return pytorch_gan_unet.up_block(in_ch, out_ch, level=level, norm=c.norm, dropout=c.dropout)
        bias = outermost or (self._conv_bias if c.layout == "official" else False)
        layers: dict[str, nn.Module] = {}
        if c.layout == "official":
            layers["act"] = nn.ReLU(inplace=True)
        layers["conv"] = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            layers["tanh"] = nn.Tanh()
            return nn.Sequential(OrderedDict(layers))
        layers["norm"] = make_norm(c.norm, out_ch)
        if level in self._dropout_levels():
            layers["dropout"] = nn.Dropout(0.5)
        if c.layout == "tf":
            layers["act"] = nn.ReLU()
        return nn.Sequential(OrderedDict(layers))

    def check_size(self, height: int, width: int) -> None:
        """Raise a ConfigError naming the size if this U-Net cannot take it."""
        m = self.config.multiple
        if height % m or width % m or height < m or width < m:
            ok_h, ok_w = max(m, round(height / m) * m), max(m, round(width / m) * m)
            raise ConfigError(
                f"image size {height}x{width} does not fit a U-Net with {self.config.levels} levels: "
                f"both sides must be a positive multiple of {m} (for example {ok_h}x{ok_w}); "
                "resize the image or use edges2shoes_utils.nets.pad_to_multiple"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        y = self.decoder[-1](skips[-1])
        for level in range(self.config.levels - 2, -1, -1):
            skip = skips[level]
            y = torch.cat([skip, y] if self.config.layout == "official" else [y, skip], dim=1)
            y = self.decoder[level](y)
        return y


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 1.0):
    """Pad an NCHW batch on the right and bottom to a multiple of `multiple` (white = 1.0 in [-1, 1]
    space by default, the dataset's background). Returns the padded batch and a function that
    crops a result of the same size back to the original height and width."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    padded = nn.functional.pad(x, (0, pw, 0, ph), value=value) if (ph or pw) else x
    return padded, (lambda y: y[..., :h, :w])
