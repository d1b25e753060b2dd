"""Inference: hand-drawn sketches and edge maps into shoe photos with a trained generator.

    image_input    every kind of picture handed in (path, bytes, PIL, array) read as RGB on white
    sketch         prepare_sketch: a drawing cleaned up to look like the dataset's edge maps
    layers         the fast path's convolutions, with weights packed once for oneDNN
    fastpath       runners: the generator's forward over those layers, plain or fast
    sketch2shoe    Sketch2Shoe: load once, generate many, in "train" or "eval" test-time mode;
                   Translation, one input on its way to a shoe
    command_line   `edges2shoes generate`
"""

from __future__ import annotations

from .command_line import OUTPUT_SUFFIXES, generate_files
from .fastpath import MODES, Mode, PrecisionName, Runner, build_runner, choose_runner, compute_dtype
from .image_input import SUPPORTED_FORMATS, ImageInput, describe_image_source, load_image
from .sketch import DEFAULT_MARGIN, DEFAULT_STROKE_WIDTH, SAMPLES_DIR, prepare_sketch, sample_sketches
from .sketch2shoe import DEFAULT_MODE, ImageLike, Sketch2Shoe, Translation

__all__ = [
    "Sketch2Shoe",
    "Translation",
    "DEFAULT_MODE",
    "ImageLike",
    "prepare_sketch",
    "sample_sketches",
    "SAMPLES_DIR",
    "DEFAULT_MARGIN",
    "DEFAULT_STROKE_WIDTH",
    "load_image",
    "describe_image_source",
    "ImageInput",
    "SUPPORTED_FORMATS",
    "build_runner",
    "choose_runner",
    "compute_dtype",
    "Runner",
    "MODES",
    "Mode",
    "PrecisionName",
    "generate_files",
    "OUTPUT_SUFFIXES",
]
