"""edges2shoes: pix2pix (Isola et al. 2017, arXiv 1611.07004) for turning shoe edge maps and
hand-drawn sketches into shoe photos. See README.md for the tour; `python -m edges2shoes_utils`
for the command line."""

from __future__ import annotations

from .util.version import __version__

from .nets.losses import discriminator_loss, generator_loss  # noqa: E402
from .nets.models import (  # noqa: E402
    DiscriminatorConfig,
    GeneratorConfig,
    PatchGANDiscriminator,
    UNetGenerator,
)

__all__ = [
    "__version__",
    "GeneratorConfig",
    "DiscriminatorConfig",
    "UNetGenerator",
    "PatchGANDiscriminator",
    "generator_loss",
    "discriminator_loss",
]
