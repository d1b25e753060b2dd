"""edges2shoes: pix2pix (Isola et al. 2017, arXiv 1611.07004) for turning shoe edge maps and
hand-drawn sketches into shoe photos.

This module is the small public core that the notebooks, the README and most users need; each
name comes from the stage folder that owns it. Data flows one way through the stages:

    util -> nets -> data -> weights -> training -> inference -> evaluation -> bench -> apps

`python -m edges2shoes_utils` (installed as `edges2shoes`) is the command line.
"""

from __future__ import annotations

from .weights import export_generator, fetch_weights, load_discriminator, load_generator
from .data import PairsDataset, make_dataloader, make_synthetic, resolve_dataset_root
from .evaluation import evaluate, evaluate_many, write_report
from .inference import Sketch2Shoe, prepare_sketch, sample_sketches
from .nets import (
    DiscriminatorConfig,
    GeneratorConfig,
    PatchGANDiscriminator,
    UNetGenerator,
    discriminator_loss,
    generator_loss,
)
from .training import TrainConfig, train
from .util.errors import ConfigError, DataError, Edges2ShoesError, SketchError, WeightsError
from .util.version import __version__

__all__ = [
    "__version__",
    # networks and losses
    "GeneratorConfig",
    "DiscriminatorConfig",
    "UNetGenerator",
    "PatchGANDiscriminator",
    "generator_loss",
    "discriminator_loss",
    # data
    "PairsDataset",
    "make_dataloader",
    "resolve_dataset_root",
    "make_synthetic",
    # weight files
    "export_generator",
    "load_generator",
    "load_discriminator",
    "fetch_weights",
    # training
    "TrainConfig",
    "train",
    # inference
    "Sketch2Shoe",
    "prepare_sketch",
    "sample_sketches",
    # evaluation
    "evaluate",
    "evaluate_many",
    "write_report",
    # errors the user can act on
    "Edges2ShoesError",
    "ConfigError",
    "DataError",
    "WeightsError",
    "SketchError",
]
