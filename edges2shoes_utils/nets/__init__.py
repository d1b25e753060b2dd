"""The pix2pix networks and losses (Isola et al. 2017, arXiv 1611.07004).

`unet` (the U-Net generator; `pytorch_gan_unet` builds its PyTorch-GAN layout's blocks), `patchgan`
(the 70x70 PatchGAN discriminator), `layers` (norms, init, parameter count) and `losses` (the GAN
and L1 objectives).
"""

from .layers import Norm, SingleValueBatchNorm2d, count_parameters, init_weights, make_norm
from .losses import (
    DEFAULT_LAMBDA_L1,
    DiscriminatorLoss,
    GeneratorLoss,
    adversarial_loss,
    discriminator_loss,
    generator_loss,
)
from .patchgan import DiscriminatorConfig, PatchGANDiscriminator, receptive_field
from .unet import GeneratorConfig, Layout, UNetGenerator, level_channels, pad_to_multiple

__all__ = [
    "GeneratorConfig",
    "UNetGenerator",
    "pad_to_multiple",
    "level_channels",
    "Layout",
    "DiscriminatorConfig",
    "PatchGANDiscriminator",
    "receptive_field",
    "Norm",
    "make_norm",
    "SingleValueBatchNorm2d",
    "init_weights",
    "count_parameters",
    "generator_loss",
    "discriminator_loss",
    "adversarial_loss",
    "GeneratorLoss",
    "DiscriminatorLoss",
    "DEFAULT_LAMBDA_L1",
]
