"""The PyTorch-GAN pix2pix generator's blocks, as a layout of our U-Net (`layout="pytorch-gan"`).

Erik Linder-Norén's PyTorch-GAN implements pix2pix (Isola et al. 2017, arXiv 1611.07004) with its
own `GeneratorUNet`; the Hugging Face community sprint trained `huggan/pix2pix-edge2shoes` with it
(`huggingface/community-events`, `huggan/pytorch/pix2pix/`). It differs from the official layout:

- post-activation blocks (conv -> norm -> LeakyReLU 0.2, like the TF tutorial), no conv biases;
- instance norm without affine parameters, on every down block but the first and the innermost;
- dropout 0.5 in the encoder too: on every down block `8 * ngf` wide (levels 3 and deeper), and on
  every up block whose output is that wide;
- `[upsampled, skip]` concatenation;
- an output head of nearest 2x upsampling, a zero pad of one row and column at the top and left,
  and a 4x4 convolution (stride 1, padding 1, with bias) before tanh, in place of a transposed conv.

The original is fixed at 8 levels and ngf 64 (54,404,099 parameters); `levels` and `ngf` vary here
by the rules above, so tests can build narrow copies at the real depth.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import make_norm

DROPOUT = 0.5
WIDE_LEVEL = 3  # level_channels reaches 8 * ngf here: dropout from this depth on


def down_block(in_ch: int, out_ch: int, *, level: int, levels: int, norm: str, leaky_slope: float,
               dropout: bool) -> nn.Sequential:
    """Encoder level `level`: conv (no bias) -> norm (not the first level nor the innermost) ->
    LeakyReLU -> dropout (levels 3 and deeper)."""
    layers: dict[str, nn.Module] = {"conv": nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False)}
    if 0 < level < levels - 1:
        layers["norm"] = make_norm(norm, out_ch)
    layers["act"] = nn.LeakyReLU(leaky_slope)
    if dropout and level >= WIDE_LEVEL:
        layers["dropout"] = nn.Dropout(DROPOUT)
    return nn.Sequential(OrderedDict(layers))


def up_block(in_ch: int, out_ch: int, *, level: int, norm: str, dropout: bool) -> nn.Sequential:
    """Decoder level `level` >= 1: transposed conv (no bias) -> norm -> ReLU -> dropout (where the
    output is 8 * ngf wide, i.e. it feeds level 3 or deeper)."""
    layers: dict[str, nn.Module] = {
        "conv": nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False),
        "norm": make_norm(norm, out_ch),
        "act": nn.ReLU(inplace=True),
    }
    if dropout and level - 1 >= WIDE_LEVEL:
        layers["dropout"] = nn.Dropout(DROPOUT)
    return nn.Sequential(OrderedDict(layers))


def output_head(in_ch: int, out_ch: int) -> nn.Sequential:
    """Decoder level 0: upsample x2 (nearest), pad top and left by one, 4x4 conv with bias, tanh.
    A 4x4 kernel over the padded (2H + 1) map with padding 1 gives exactly 2H rows."""
    return nn.Sequential(OrderedDict(
        upsample=nn.Upsample(scale_factor=2),
        pad=nn.ZeroPad2d((1, 0, 1, 0)),
        conv=nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=1, padding=1, bias=True),
        tanh=nn.Tanh(),
    ))


__all__ = ["down_block", "up_block", "output_head", "DROPOUT", "WIDE_LEVEL"]
