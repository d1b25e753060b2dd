"""Shared by the web app's tests: tiny weights, drawn shoes, the bad files people upload (listed in
`bench.app_traffic`, which the app soak sends too)."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from edges2shoes_utils.bench.app_traffic import bad_uploads as traffic_bad_uploads
from edges2shoes_utils.weights import export_generator
from edges2shoes_utils.nets import UNetGenerator

TINY_SIZE = 64  # the tiny generator's side (6 levels): Sketch2Shoe works at the generator's size

# A shoe from the side, toe to the left as in edges2shoes, as fractions of the canvas: the outline,
# then the sole line as a second stroke (what the undo tests take back).
SHOE_OUTLINE = [(0.06, 0.62), (0.10, 0.52), (0.35, 0.45), (0.55, 0.30), (0.62, 0.22), (0.88, 0.22),
                (0.92, 0.35), (0.94, 0.62), (0.94, 0.70), (0.06, 0.70), (0.06, 0.62)]
SOLE_LINE = [(0.06, 0.64), (0.50, 0.66), (0.94, 0.64)]


def tiny_weights(folder: Path) -> Path:
    """A tiny UNetGenerator (ngf 8, 64x64) exported with export_generator, seeded."""
    torch.manual_seed(0)
    return export_generator(UNetGenerator(ngf=8, levels=6), folder / "tiny_generator.safetensors",
                            metadata={"source": "tests"})


def shoe_strokes(size: int = 512, variant: int | None = None) -> list[list[tuple[float, float]]]:
    """The outline and sole strokes in pixels; `variant` shifts, scales and wobbles them, so that
    each variant is a different drawing of a shoe."""
    rng = random.Random(variant)
    scale = 1.0 if variant is None else rng.uniform(0.7, 1.0)
    dx = 0.0 if variant is None else rng.uniform(-0.1, 0.1) * (1 - scale) * 5
    dy = 0.0 if variant is None else rng.uniform(-0.1, 0.1)
    wobble = 0.0 if variant is None else 0.02

    def place(points):
        return [((0.5 + (x - 0.5) * scale + dx + rng.uniform(-wobble, wobble)) * size,
                 (0.5 + (y - 0.5) * scale + dy + rng.uniform(-wobble, wobble)) * size) for x, y in points]

    return [place(SHOE_OUTLINE), place(SOLE_LINE)]


def drawn_shoe(size: int = 512, variant: int | None = None, width: int = 4) -> Image.Image:
    """A canvas with a shoe drawn on it: black strokes `width` px wide on white."""
    canvas = Image.new("RGB", (size, size), "white")
    pen = ImageDraw.Draw(canvas)
    for stroke in shoe_strokes(size, variant):
        pen.line(stroke, fill="black", width=width, joint="curve")
    return canvas


def bad_uploads(folder: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """case -> (file, words the error must contain) for the bad uploads the app must refuse in words.
    (The file over the byte limit is made where it is needed: it is 21 MB.)"""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for case, (name, data, words) in traffic_bad_uploads().items():
        path = folder / name
        path.write_bytes(data)
        out[case] = (path, words)
    return out
