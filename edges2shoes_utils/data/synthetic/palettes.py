"""Colours and materials of the synthetic shoes: each kind has the colours and materials its real
counterparts tend to have, and every shoe's shades are varied a little so that no two are alike."""

from __future__ import annotations

from typing import Sequence

import numpy as np

RGB = tuple[int, int, int]

WHITE_SOLE: RGB = (238, 236, 230)
GUM: RGB = (176, 124, 68)
BLACK: RGB = (34, 33, 35)

PALETTES: dict[str, dict[str, list[RGB]]] = {
    "sneaker": {
        "upper": [(236, 236, 234), (36, 36, 40), (146, 148, 152), (32, 46, 92), (188, 36, 42),
                  (44, 84, 176), (42, 118, 72), (226, 150, 170), (228, 118, 44), (212, 198, 168)],
        "sole": [WHITE_SOLE, WHITE_SOLE, (250, 248, 240), BLACK, GUM],
    },
    "boot": {
        "upper": [(168, 108, 58), (138, 74, 36), (78, 50, 32), (36, 32, 32), (92, 90, 56),
                  (122, 116, 110), (190, 158, 116), (98, 32, 36)],
        "sole": [BLACK, (60, 40, 28), GUM, (206, 180, 130)],
    },
    "heel": {
        "upper": [(24, 24, 26), (178, 22, 34), (222, 182, 150), (26, 32, 64), (238, 236, 232),
                  (192, 192, 198), (202, 166, 92), (222, 120, 150), (90, 30, 60)],
        "sole": [(30, 28, 28), (120, 84, 56), (210, 190, 170)],
    },
    "loafer": {
        "upper": [(140, 76, 36), (82, 50, 30), (30, 28, 28), (92, 26, 32), (176, 118, 66),
                  (40, 46, 78), (112, 96, 70)],
        "sole": [(118, 78, 48), (40, 34, 30), (150, 104, 64)],
    },
    "sandal": {
        "upper": [(176, 116, 62), (96, 58, 34), (30, 30, 30), (236, 232, 224), (206, 170, 96),
                  (186, 60, 50), (64, 90, 130)],
        "sole": [(192, 152, 104), (36, 34, 34), (176, 124, 78), (226, 214, 190)],
    },
}

# material -> (texture, gloss strength 0..1, shininess)
MATERIALS: dict[str, tuple[str, float, float]] = {
    "mesh": ("mesh", 0.15, 8.0),
    "canvas": ("canvas", 0.05, 6.0),
    "knit": ("knit", 0.08, 6.0),
    "leather": ("smooth", 0.45, 18.0),
    "suede": ("suede", 0.0, 1.0),
    "patent": ("smooth", 0.95, 40.0),
    "satin": ("smooth", 0.6, 10.0),
}

KIND_MATERIALS: dict[str, list[str]] = {
    "sneaker": ["mesh", "mesh", "canvas", "knit", "leather"],
    "boot": ["leather", "leather", "suede"],
    "heel": ["patent", "leather", "suede", "satin"],
    "loafer": ["leather", "leather", "suede", "patent"],
    "sandal": ["leather", "leather", "suede"],
}

TEXTURE_CODES = {"smooth": 0, "mesh": 1, "canvas": 2, "knit": 3, "suede": 4}


def vary(rng: np.random.Generator, colour: RGB, amount: int = 14) -> RGB:
    """A colour near `colour`: no two shoes share exactly the same shade."""
    shifted = np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return tuple(int(v) for v in shifted)  # type: ignore[return-value]


def pick(rng: np.random.Generator, options: Sequence):
    """One of `options`, drawn from `rng`."""
    return options[int(rng.integers(len(options)))]


def shade(colour: RGB, factor: float) -> RGB:
    """Darker (<1) or lighter (>1) version of a colour, e.g. for trims and stitching."""
    if factor <= 1:
        return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def contrast(colour: RGB) -> RGB:
    """A thread or lace colour that stands out from `colour`."""
    return (232, 228, 220) if sum(colour) < 360 else (50, 46, 44)
