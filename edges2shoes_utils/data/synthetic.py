"""A synthetic mini edges2shoes set: procedurally drawn shoes and edge maps extracted from them.

The real edges2shoes set (Isola et al. 2017, arXiv 1611.07004; photos from UT Zappos50K) pairs a
product photo of a shoe, seen from the side on a white background, with an edge map that an edge
detector (HED) found in that photo, cleaned up into thin dark lines on white. This module makes the
same kind of pairs offline, in the same layout, so that training, evaluation, the notebooks' smoke
mode, the demo and the tests run without a download:

* the photo is a side view of a shoe of one of several kinds (sneaker, boot, heel, loafer, sandal),
  each with its own shapes, details, palette and material (mesh, canvas, leather, suede, patent),
  shaded as a rounded volume with highlights, on white;
* the edge map is computed FROM the rendered photo (smoothing, colour gradient, non-maximum
  suppression, hysteresis, removal of short fragments), never drawn from the geometry, so it has
  the real set's habits: outlines and strong seams survive, faint detail drops out.

Output: `OUT/train/{i}_AB.jpg` and `OUT/val/{i}_AB.jpg`, each 2S x S with the edge map on the LEFT
and the photo on the RIGHT, numbered from 1. Every pair depends only on (seed, split, index), so a
run is reproducible and a larger set extends a smaller one with the same seed.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from scipy import ndimage
from tqdm.auto import tqdm

from ..util.atomic import atomic_write_text
from ..util.errors import ConfigError, DataError

KINDS: tuple[str, ...] = ("sneaker", "boot", "heel", "loafer", "sandal")
MARKER = "SYNTHETIC.json"  # written beside train/ and val/; only such folders are ever replaced
JPEG_QUALITY = 92

RGB = tuple[int, int, int]
Points = Sequence[tuple[float, float]]

# --------------------------------------------------------------------------------------------------
# Palettes: each kind has the colours and materials its real counterparts tend to have.

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


def _jitter(rng: np.random.Generator, colour: RGB, amount: int = 14) -> RGB:
    """A colour near `colour`: no two shoes share exactly the same shade."""
    shifted = np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return tuple(int(v) for v in shifted)  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _shade(colour: RGB, factor: float) -> RGB:
    """Darker (<1) or lighter (>1) version of a colour, e.g. for trims and stitching."""
    if factor <= 1:
        return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def _contrast(colour: RGB) -> RGB:
    """A thread or lace colour that stands out from `colour`."""
    return (232, 228, 220) if sum(colour) < 360 else (50, 46, 44)


# --------------------------------------------------------------------------------------------------
# Geometry: shapes in shoe units (toe at x=0, heel at x=1, ground at y=0, y up), smoothed by a
# Catmull-Rom spline, then placed on the canvas.


def smooth(points: Points, closed: bool = True, samples: int = 6) -> np.ndarray:
    """A smooth curve through `points` (Catmull-Rom), as an (N, 2) array."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return p
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
        n_seg = len(p)
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        n_seg = len(p) - 1
    t = np.linspace(0, 1, samples, endpoint=False)[None, :, None]
    p0, p1, p2, p3 = (ext[i:i + n_seg, None, :] for i in range(4))
    curve = 0.5 * ((2 * p1) + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                   + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)
    curve = curve.reshape(-1, 2)
    return curve if closed else np.concatenate([curve, p[-1:]])


def _arc_points(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` units along a polyline (for eyelets, stitches and tread)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] <= 0:
        return points[:1]
    at = np.arange(spacing / 2, dist[-1], spacing)
    return np.stack([np.interp(at, dist, points[:, 0]), np.interp(at, dist, points[:, 1])], axis=1)


def _offset(points: np.ndarray, distance: float) -> np.ndarray:
    """The polyline moved sideways by `distance` (positive = to the left of its direction)."""
    d = np.gradient(points, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    return points + distance * n


def _band(spine: np.ndarray, width: float) -> np.ndarray:
    """A strip of the given full width around a polyline (straps, stripes, collars)."""
    return np.concatenate([_offset(spine, width / 2), _offset(spine, -width / 2)[::-1]])


@dataclass
class Shoe:
    """A shoe as an ordered list of drawing operations (back to front), in shoe units.

    Each operation paints albedo colour and three auxiliary values: coverage (the silhouette),
    texture (where the upper's material pattern shows) and gloss (specular strength). The
    operation marked `base` (the upper) is remembered as a clip mask; operations marked `clip`
    (overlays such as toe caps and stripes) are only painted where the base is.
    """

    kind: str
    material: str
    ops: list[tuple] = field(default_factory=list)

    def poly(self, pts: Points, colour: RGB, texture: bool = False, gloss: float = 0.0, clip: bool = False,
             base: bool = False) -> None:
        self.ops.append(("poly", np.asarray(pts, dtype=np.float64), colour, texture, gloss, 0.0, clip, base))

    def line(self, pts: Points, width: float, colour: RGB, gloss: float = 0.0, clip: bool = False) -> None:
        self.ops.append(("line", np.asarray(pts, dtype=np.float64), colour, False, gloss, width, clip, False))

    def dots(self, pts: Points, radius: float, colour: RGB, gloss: float = 0.0, clip: bool = False) -> None:
        self.ops.append(("dots", np.asarray(pts, dtype=np.float64).reshape(-1, 2), colour, False, gloss, radius,
                         clip, False))

    def stitches(self, pts: np.ndarray, colour: RGB, length: float = 0.016, width: float = 0.0045,
                 clip: bool = True) -> None:
        """A dashed seam along a polyline."""
        marks = _arc_points(pts, length * 2)
        if len(marks) < 2:
            return
        d = np.gradient(marks, axis=0)
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
        for point, step in zip(marks, d):
            self.line([point - step * length / 2, point + step * length / 2], width, colour, clip=clip)

    def points(self) -> np.ndarray:
        return np.concatenate([op[1] for op in self.ops])


@dataclass(frozen=True)
class Sole:
    """The sole's side profile: forefoot on the ground with a little toe spring, the waist rising to
    a heel block of height `heel`; `thickness` is the sole's own depth above that line."""

    thickness: float
    heel: float = 0.0
    spring: float = 0.03
    heel_front: float = 0.76

    def bottom(self, x):
        x = np.asarray(x, dtype=np.float64)
        toe = self.spring * np.clip(1 - x / 0.14, 0, 1) ** 2
        t = np.clip((x - (self.heel_front - 0.3)) / 0.3, 0, 1)
        return toe + self.heel * t * t * (3 - 2 * t)

    def top(self, x):
        return self.bottom(x) + self.thickness

    def at(self, x: float, above: float) -> tuple[float, float]:
        """The point `above` units over the sole's top at x: how uppers are laid out."""
        return (x, float(self.top(x)) + above)

    def draw(self, shoe: Shoe, colour: RGB, heel_colour: RGB | None = None, gloss: float = 0.1) -> np.ndarray:
        """Paint the heel block (if any) and the sole; returns the sole's top line, toe to heel."""
        if self.heel > 0.005:
            hx = self.heel_front
            shoe.poly([(hx, self.heel + self.thickness * 0.5), (0.995, self.heel + self.thickness * 0.5),
                       (0.99, 0.0), (hx + 0.015, 0.0)], heel_colour or _shade(colour, 0.8), gloss=gloss)
        xs = np.linspace(0.02, 0.995, 40)
        top = np.stack([xs, self.top(xs)], axis=1)
        bottom = np.stack([xs, self.bottom(xs)], axis=1)[::-1]
        bottom[bottom[:, 0] > self.heel_front, 1] = self.heel  # the sole ends on top of the heel block
        toe = smooth([(0.02, float(self.bottom(0.02))), (0.0, float(self.bottom(0.0)) + self.thickness * 0.5),
                      (0.02, float(self.top(0.02)))], closed=False, samples=4)[1:-1]
        back = [(1.002, float(self.top(1.0)) - self.thickness * 0.3)]
        shoe.poly(np.concatenate([top, back, bottom, toe]), colour, gloss=gloss)
        return top


# --------------------------------------------------------------------------------------------------
# The kinds. Each builds a Shoe from random parameters drawn from `rng`.


def _sneaker(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe = Shoe("sneaker", _pick(rng, KIND_MATERIALS["sneaker"]))
    pal = PALETTES["sneaker"]
    upper = _jitter(rng, _pick(rng, pal["upper"]))
    accent = _jitter(rng, _pick(rng, pal["upper"]))
    sole_colour = _jitter(rng, _pick(rng, pal["sole"]), 6)
    lace = _contrast(upper) if rng.random() < 0.6 else _jitter(rng, upper, 8)
    gloss = MATERIALS[shoe.material][1]
    sole = Sole(u(0.06, 0.1), heel=u(0.0, 0.02), spring=u(0.02, 0.05))
    high = rng.random() < 0.25
    tx = u(0.42, 0.48)  # the throat: where the lacing ends and the tongue comes out
    front_h = u(0.42, 0.5) if high else u(0.26, 0.3)  # collar height at the front, above the sole
    tab_h = front_h + u(-0.01, 0.02) if high else u(0.21, 0.25)  # at the heel tab
    dip_h = min(front_h, tab_h) - (u(0.0, 0.02) if high else u(0.04, 0.07))
    at = sole.at
    front = at(tx + 0.05, front_h)
    # tongue, behind the upper
    shoe.poly(smooth([at(tx - 0.08, 0.2), at(tx - 0.01, front_h + 0.05), at(tx + 0.07, front_h + 0.05),
                      at(tx + 0.09, front_h - 0.06)]), _shade(upper, 0.92), texture=True, gloss=gloss)
    collar = [front, at(0.72, dip_h), at(0.93, tab_h)]
    outline = [at(0.004, 0.008), at(0.03, 0.05), at(0.09, 0.09), at(0.2, 0.13), at(0.3, 0.175),
               at(tx, 0.25 if not high else 0.3), *collar, at(1.0, tab_h * 0.6), at(1.01, 0.05),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.05, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    # padded collar band along the opening
    spine = smooth(collar, closed=False)
    shoe.poly(_band(spine - [0, 0.018], 0.036), _shade(upper, 0.85), gloss=gloss, clip=True)
    if rng.random() < 0.4:  # heel pull tab
        shoe.line([at(0.955, tab_h - 0.03), at(0.975, tab_h + 0.035)], 0.022, _jitter(rng, accent, 6))
    if rng.random() < 0.7:  # toe cap
        cap = _jitter(rng, _pick(rng, [upper, accent, (240, 240, 238)]), 6)
        edge = smooth([at(0.16, 0.16), at(0.185, 0.08), at(0.17, -0.02)], closed=False)
        shoe.poly(np.concatenate([edge, [(-0.05, 0.0), (-0.05, 0.4)]]), cap, gloss=gloss, clip=True)
        shoe.stitches(edge - [0.015, 0], _shade(cap, 0.55))
    if rng.random() < 0.8:  # heel counter
        edge = smooth([at(0.8, -0.02), at(0.82, tab_h * 0.45), at(0.95, tab_h * 0.7), at(1.05, tab_h * 0.75)],
                      closed=False)
        counter = _jitter(rng, _pick(rng, [accent, _shade(upper, 0.8)]), 6)
        shoe.poly(np.concatenate([edge, [(1.05, -0.1), (0.8, -0.1)]]), counter, gloss=gloss, clip=True)
        shoe.stitches(edge + [0.012, 0], _shade(counter, 0.55))
    if rng.random() < 0.75:  # side stripe
        a, b = u(0.28, 0.4), u(0.7, 0.82)
        spine = smooth([at(a, 0.02), at((a + b) / 2, 0.06 + u(0, 0.04)), at(b, 0.1 + u(0, 0.06))], closed=False)
        shoe.poly(_band(spine, u(0.03, 0.06)), accent, gloss=gloss, clip=True)
    # eyestay, eyelets and laces
    lacing = smooth([at(tx + 0.005, 0.235 if not high else front_h - 0.04), at(tx - 0.1, 0.19), at(0.24, 0.135)],
                    closed=False)
    stay = _jitter(rng, _pick(rng, [accent, _shade(upper, 0.8), upper]), 6)
    shoe.poly(_band(_offset(lacing, -0.012), 0.05), stay, gloss=gloss, clip=True)
    eyelets = _arc_points(lacing, u(0.035, 0.045))
    shoe.dots(_offset(eyelets, -0.018), 0.007, (70, 70, 72), gloss=0.5)
    for p, q in zip(eyelets[:-1], eyelets[1:]):
        shoe.line([p + [0.004, 0.012], q - [0.004, 0.004]], 0.012, _shade(lace, 0.8))
        shoe.line([p - [0.006, 0.004], q + [0.006, 0.014]], 0.012, lace)
    # midsole, outsole strip, stitching
    top = sole.draw(shoe, sole_colour)
    if rng.random() < 0.7:
        strip = _jitter(rng, _pick(rng, [GUM, BLACK, _shade(sole_colour, 0.75)]), 6)
        xs = np.linspace(0.03, 0.99, 20)
        low = np.stack([xs, sole.bottom(xs)], axis=1)
        shoe.poly(np.concatenate([low + [0, sole.thickness * 0.3], low[::-1] - [0, 0.002]]), strip)
    if rng.random() < 0.6:
        shoe.stitches(_offset(top, -0.014)[2:-2], _shade(sole_colour, 0.55), clip=False)
    return shoe


def _boot(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe = Shoe("boot", _pick(rng, KIND_MATERIALS["boot"]))
    pal = PALETTES["boot"]
    upper = _jitter(rng, _pick(rng, pal["upper"]))
    sole_colour = _jitter(rng, _pick(rng, pal["sole"]), 6)
    gloss = MATERIALS[shoe.material][1]
    style = _pick(rng, ["work", "work", "chelsea", "heeled"])
    heeled = style == "heeled"
    sole = Sole(u(0.03, 0.045) if heeled else u(0.05, 0.08), heel=u(0.1, 0.2) if heeled else u(0.03, 0.06),
                spring=u(0.02, 0.04), heel_front=u(0.8, 0.84) if heeled else 0.76)
    at = sole.at
    height = u(0.48, 0.68)
    fx = u(0.34, 0.4)
    back = u(0.88, 0.93)
    outline = [at(0.004, 0.01), at(0.04, 0.07), at(0.12, 0.115), at(0.24, 0.165), at(fx, 0.25),
               at(fx + 0.04, 0.42), (fx + 0.06, height), (0.65, height + u(-0.015, 0.015)), (back, height),
               (back - 0.02, (height + sole.top(1.0)) / 2 + 0.05), at(0.985, 0.12), at(1.005, 0.03),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.04, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    rim = smooth([(fx + 0.02, height), (0.65, height), (back + 0.03, height)], closed=False)
    shoe.poly(_band(rim - [0, 0.02], 0.04), _shade(upper, 1.15 if sum(upper) < 200 else 0.85), gloss=gloss, clip=True)
    if style == "work":
        edge = smooth([at(0.14, 0.2), at(0.19, 0.1), at(0.18, -0.02)], closed=False)
        shoe.poly(np.concatenate([edge, [(-0.05, 0.0), (-0.05, 0.4)]]), _shade(upper, 0.88), gloss=gloss, clip=True)
        shoe.stitches(edge - [0.014, 0], _contrast(upper))
        lacing = smooth([(fx + 0.07, height - 0.05), at(fx + 0.03, 0.33), at(fx - 0.06, 0.22)], closed=False)
        shoe.poly(_band(lacing, 0.06), _shade(upper, 0.8), gloss=gloss, clip=True)
        hooks = _arc_points(lacing, u(0.045, 0.06))
        shoe.dots(_offset(hooks, 0.012), 0.009, (190, 170, 110), gloss=0.8)
        lace = _pick(rng, [(150, 40, 30), (206, 186, 146), (40, 36, 34)])
        for p, q in zip(hooks[:-1], hooks[1:]):
            shoe.line([p + [0.012, 0.0], q + [-0.008, 0.01]], 0.011, lace)
        shoe.stitches(_offset(smooth([at(fx - 0.12, 0.19), at(0.6, 0.12), at(0.9, 0.16)], closed=False), 0),
                      _contrast(upper))
    elif style == "chelsea":
        gore = _jitter(rng, (44, 42, 42), 6)
        gx = u(0.55, 0.66)
        shoe.poly([(gx - 0.09, height + 0.01), (gx + 0.09, height + 0.01), at(gx + 0.015, 0.2), at(gx - 0.015, 0.2)],
                  gore, gloss=0.05, clip=True)
        for k in np.linspace(-0.06, 0.06, 5):
            shoe.line([(gx + k, height - 0.01), at(gx + k * 0.2, 0.21)], 0.004, _shade(gore, 1.4), clip=True)
        shoe.line([(back - 0.01, height - 0.03), (back, height + 0.06)], 0.03, _jitter(rng, (60, 56, 52), 8))
    else:  # heeled boot with a zip at the back
        zip_line = smooth([(back - 0.01, height - 0.01), (back - 0.03, (height + sole.top(1.0)) / 2 + 0.04),
                           at(0.97, 0.1)], closed=False)
        shoe.line(zip_line, 0.012, (150, 150, 155), gloss=0.9, clip=True)
        shoe.dots([(back - 0.012, height - 0.03)], 0.015, (180, 180, 186), gloss=0.9)
    sole.draw(shoe, sole_colour, _shade(sole_colour, 0.8) if not heeled else _shade(upper, 0.85))
    return shoe


def _heel(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe = Shoe("heel", _pick(rng, KIND_MATERIALS["heel"]))
    pal = PALETTES["heel"]
    upper = _jitter(rng, _pick(rng, pal["upper"]))
    sole_colour = _jitter(rng, _pick(rng, pal["sole"]), 6)
    gloss = MATERIALS[shoe.material][1]
    hh = u(0.24, 0.42)  # heel height
    block = rng.random() < 0.3
    pointed = rng.random() < 0.6
    ts = 0.02  # sole thickness
    seat = u(0.8, 0.84)
    # the sole: toe and ball on the ground, the arch rising to the heel seat
    sole_line = smooth([(0.0, 0.025 if pointed else 0.035), (0.1, 0.0), (0.3, 0.0), (0.5, hh * 0.35),
                        (0.7, hh * 0.85), (0.99, hh)], closed=False)
    counter = u(0.1, 0.14)
    vamp = u(0.3, 0.38)  # where the opening starts
    top_line = smooth([(0.995, hh + counter), (0.85, hh + counter * 0.8), (0.62, hh * 0.62 + 0.06),
                       (vamp, 0.11 + u(0.0, 0.03)), (vamp - 0.08, 0.13), (0.08, 0.095 if pointed else 0.11),
                       (0.0, 0.025 if pointed else 0.04)], closed=False)
    # the insole and far side seen through the opening, behind the near side
    opening = top_line[(top_line[:, 0] > vamp - 0.02) & (top_line[:, 0] < 0.97)]
    if len(opening) > 2:
        lift = 0.035 * np.sin(np.linspace(0, np.pi, len(opening)))[:, None] * [0, 1]
        shoe.poly(np.concatenate([opening - [0, 0.02], (opening + lift + [0, 0.012])[::-1]]),
                  _jitter(rng, (214, 190, 160), 8))
    shoe.poly(np.concatenate([sole_line + [0, ts * 0.5], top_line]), upper, texture=True, gloss=gloss, base=True)
    if rng.random() < 0.3:  # ankle strap with a buckle
        strap_y = hh + counter + u(0.04, 0.08)
        shoe.poly(_band(smooth([(0.99, hh + counter - 0.02), (0.995, strap_y)], closed=False), 0.03), upper,
                  gloss=gloss)
        shoe.poly(_band(smooth([(0.66, strap_y - 0.03), (0.82, strap_y + 0.005), (1.0, strap_y)], closed=False),
                        0.026), upper, gloss=gloss)
        shoe.dots([(0.8, strap_y + 0.004)], 0.014, (200, 175, 110), gloss=0.9)
    elif rng.random() < 0.3:  # bow on the vamp
        shoe.dots([(vamp - 0.1, 0.125), (vamp - 0.06, 0.125)], 0.024, _shade(upper, 0.8), gloss=gloss)
    # heel column
    if block:
        shoe.poly([(seat, hh + 0.005), (0.99, hh + 0.005), (0.975, 0.0), (seat + 0.05, 0.0)],
                  _shade(upper, 0.88), gloss=gloss)
    else:
        tip = u(0.88, 0.92)
        shoe.poly(smooth([(seat, hh + 0.005), (0.99, hh + 0.005), (0.96, hh * 0.55), (tip + 0.012, 0.03),
                          (tip + 0.012, 0.0), (tip - 0.008, 0.0), (tip - 0.008, 0.03), (0.9, hh * 0.55)]),
                  _shade(upper, 0.88), gloss=gloss)
    shoe.line(sole_line + [0, ts * 0.5], ts, sole_colour)
    return shoe


def _loafer(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe = Shoe("loafer", _pick(rng, KIND_MATERIALS["loafer"]))
    pal = PALETTES["loafer"]
    upper = _jitter(rng, _pick(rng, pal["upper"]))
    sole_colour = _jitter(rng, _pick(rng, pal["sole"]), 6)
    gloss = MATERIALS[shoe.material][1]
    sole = Sole(u(0.03, 0.045), heel=u(0.03, 0.05), spring=u(0.015, 0.03), heel_front=0.78)
    at = sole.at
    top_h = u(0.17, 0.21)
    tx = u(0.46, 0.53)
    collar = [at(tx, top_h + 0.02), at(0.72, top_h - u(0.02, 0.04)), at(0.95, top_h)]
    # lining inside the opening
    spine = smooth(collar, closed=False)
    shoe.poly(np.concatenate([spine - [0, 0.03], (spine + [0, 0.018])[::-1]]), _jitter(rng, (190, 150, 110), 8))
    outline = [at(0.004, 0.01), at(0.04, 0.075), at(0.13, 0.125), at(0.3, 0.17), *collar, at(1.01, top_h * 0.6),
               at(1.0, -sole.thickness * 0.5), at(0.5, -sole.thickness * 0.5), at(0.04, -sole.thickness * 0.4)]
    shoe.poly(smooth(outline), upper, texture=True, gloss=gloss, base=True)
    # moccasin apron: a raised seam around the top of the toe
    apron = smooth([at(0.02, 0.03), at(0.07, 0.085), at(0.16, 0.115), at(0.28, 0.135), at(tx - 0.04, 0.16)],
                   closed=False)
    shoe.line(apron, 0.008, _shade(upper, 0.6), clip=True)
    shoe.stitches(_offset(apron, -0.016), _shade(upper, 0.65 if sum(upper) > 250 else 1.7))
    trim = _pick(rng, ["penny", "horsebit", "tassel", "plain"])
    if trim == "penny":
        band = _band(smooth([at(tx - 0.19, 0.115), at(tx - 0.1, 0.14), at(tx - 0.01, 0.165)], closed=False), 0.045)
        shoe.poly(band, _shade(upper, 0.9), gloss=gloss, clip=True)
        shoe.poly(_band(smooth([at(tx - 0.13, 0.132), at(tx - 0.07, 0.148)], closed=False), 0.012),
                  _shade(upper, 0.3), clip=True)
    elif trim == "horsebit":
        shoe.line([at(tx - 0.17, 0.12), at(tx - 0.05, 0.15)], 0.012, (205, 175, 100), gloss=0.9)
        shoe.dots([at(tx - 0.17, 0.12), at(tx - 0.05, 0.15)], 0.014, (205, 175, 100), gloss=0.9)
    elif trim == "tassel":
        for k in (0.0, 0.022):
            shoe.line([at(tx - 0.08 + k, 0.155), at(tx - 0.1 + k, 0.08)], 0.01, _shade(upper, 0.8))
            shoe.dots([at(tx - 0.1 + k, 0.075)], 0.013, _shade(upper, 0.75))
    sole.draw(shoe, sole_colour, _shade(sole_colour, 0.7), gloss=0.2)
    for k in (1, 2):  # stacked leather heel
        y = sole.heel * k / 3
        shoe.line([(sole.heel_front + 0.02, y), (0.99, y)], 0.003, _shade(sole_colour, 0.5))
    return shoe


def _sandal(rng: np.random.Generator) -> Shoe:
    u = rng.uniform
    shoe = Shoe("sandal", _pick(rng, KIND_MATERIALS["sandal"]))
    pal = PALETTES["sandal"]
    strap = _jitter(rng, _pick(rng, pal["upper"]))
    bed = _jitter(rng, _pick(rng, pal["sole"]), 8)
    gloss = MATERIALS[shoe.material][1]
    wedge = rng.random() < 0.35
    sole = Sole(u(0.04, 0.09), heel=u(0.08, 0.18) if wedge else u(0.0, 0.02), spring=0.02,
                heel_front=0.7 if wedge else 0.76)
    at = sole.at
    w = u(0.022, 0.035)  # strap width

    def foot(x: float) -> float:  # height of the (absent) foot's top above the footbed
        return 0.06 + 0.18 * min(x / 0.6, 1.0) ** 0.8

    inner = _shade(strap, 0.7)
    n_straps = int(rng.integers(2, 4))
    span = u(0.14, 0.2)
    for k in range(n_straps):  # arches over the forefoot: far half (darker) then near half
        x0 = 0.08 + k * (0.42 - span / 2) / max(n_straps - 1, 1)
        top = foot(x0 + span / 2)
        arch = smooth([at(x0, 0.0), at(x0 + span * 0.2, top * 0.75), at(x0 + span / 2, top),
                       at(x0 + span * 0.8, top * 0.75), at(x0 + span, 0.0)], closed=False)
        shoe.poly(_band(arch[len(arch) // 2:], w), inner, texture=True, gloss=gloss)
        shoe.poly(_band(arch[: len(arch) // 2 + 2], w), strap, texture=True, gloss=gloss)
    ankle = at(0.82, u(0.22, 0.3))
    ring = smooth([(0.64, ankle[1] - 0.03), (0.8, ankle[1] + 0.006), (0.99, ankle[1])], closed=False)
    shoe.poly(_band(ring, w * 1.6), strap, texture=True, gloss=gloss)
    back = smooth([(0.99, ankle[1]), at(1.0, (ankle[1] - sole.top(1.0)) * 0.5), at(0.985, 0.0)], closed=False)
    shoe.poly(_band(back, w * 2), strap, texture=True, gloss=gloss)
    bx, by = 0.8, ankle[1] + 0.008
    shoe.poly([(bx - 0.025, by + 0.03), (bx + 0.025, by + 0.03), (bx + 0.025, by - 0.03), (bx - 0.025, by - 0.03)],
              (202, 178, 112), gloss=0.9)
    shoe.poly([(bx - 0.012, by + 0.018), (bx + 0.012, by + 0.018), (bx + 0.012, by - 0.018), (bx - 0.012, by - 0.018)],
              _shade(strap, 0.8))
    top = sole.draw(shoe, _jitter(rng, _pick(rng, pal["sole"]), 8), gloss=0.1)
    shoe.poly(np.concatenate([top + [0, 0.004], (top - [0, 0.016])[::-1]]), bed)  # footbed layer
    return shoe


BUILDERS: dict[str, Callable[[np.random.Generator], Shoe]] = {
    "sneaker": _sneaker,
    "boot": _boot,
    "heel": _heel,
    "loafer": _loafer,
    "sandal": _sandal,
}

# --------------------------------------------------------------------------------------------------
# Rendering: paint at 2x, shade as a rounded volume lit from the upper left, composite on white.

def _unit(v: Sequence[float]) -> tuple[float, float, float]:
    """A unit vector as plain floats (numpy float64 scalars would promote float32 images)."""
    a = np.asarray(v, dtype=np.float64)
    return tuple(float(x) for x in a / np.linalg.norm(a))  # type: ignore[return-value]


LIGHT = _unit([-0.35, -0.6, 0.72])  # image axes: x right, y down, z toward the viewer
HALFWAY = _unit([LIGHT[0], LIGHT[1], LIGHT[2] + 1.0])
SUPERSAMPLE = 2


@lru_cache(maxsize=8)
def _textures(size: int) -> dict[int, np.ndarray]:
    """Material patterns, twice the canvas size so a random window can be cut from them (cached:
    made once per size from a fixed seed, so they cost nothing per sample)."""
    n = 2 * size
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    period = max(2.0, size / 85)
    noise = np.random.default_rng(12345).standard_normal((n, n)).astype(np.float32)
    grain = np.asarray(Image.fromarray(((noise * 30) + 128).clip(0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(size / 256)), dtype=np.float32) / 128 - 1
    return {
        TEXTURE_CODES["mesh"]: 0.07 * np.sin(x * 2 * np.pi / period) * np.sin(y * 2 * np.pi / period),
        TEXTURE_CODES["canvas"]: 0.04 * np.sin(x * np.pi / period) * np.sign(np.sin(y * np.pi / period)),
        TEXTURE_CODES["knit"]: 0.07 * np.sin((x + y) * 2 * np.pi / (period * 1.5)),
        TEXTURE_CODES["suede"]: 0.14 * grain,
    }


def _placement(shoe: Shoe, rng: np.random.Generator, size: int) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """A random similarity transform from shoe units to supersampled canvas pixels: size, position,
    a small tilt, sometimes mirrored (toe to the right), keeping the whole shoe inside the frame."""
    pts = shoe.points()
    mirror = rng.random() < 0.12
    angle = math.radians(rng.uniform(-4, 4))
    c, s = math.cos(angle), math.sin(angle)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    w, h = hi - lo
    scale = min(rng.uniform(0.76, 0.92) * size / w, 0.86 * size / h)
    span_x, span_y = (size - w * scale) / 2, (size - h * scale) / 2
    cx = size / 2 + rng.uniform(-0.6, 0.6) * max(span_x - 0.04 * size, 0)
    cy = size / 2 + rng.uniform(-0.6, 0.6) * max(span_y - 0.04 * size, 0)
    k = SUPERSAMPLE

    def transform(p: np.ndarray) -> np.ndarray:
        x = (p[:, 0] - centre[0]) * scale
        y = -(p[:, 1] - centre[1]) * scale
        if mirror:
            x = -x
        return np.stack([(cx + c * x - s * y) * k, (cy + s * x + c * y) * k], axis=1)

    return transform, scale * k


def _rasterize(shoe: Shoe, rng: np.random.Generator, size: int) -> tuple[Image.Image, Image.Image]:
    """Albedo (RGB) and aux (RGB: coverage, texture, gloss) at SUPERSAMPLE x the canvas size."""
    to_px, px_per_unit = _placement(shoe, rng, size)
    n = size * SUPERSAMPLE
    albedo = Image.new("RGB", (n, n), (255, 255, 255))
    aux = Image.new("RGB", (n, n), (0, 0, 0))
    direct = (ImageDraw.Draw(albedo), ImageDraw.Draw(aux), None)
    clip_mask: Image.Image | None = None
    layer: list[Image.Image] = []  # albedo, aux and mask of the clipped operations pending
    layer_draw: tuple = ()

    def flush() -> None:
        if layer:
            mask = ImageChops.multiply(layer[2], clip_mask) if clip_mask is not None else layer[2]
            albedo.paste(layer[0], mask=mask)
            aux.paste(layer[1], mask=mask)
            layer.clear()

    for kind, pts, colour, texture, gloss, width, clip, base in shoe.ops:
        if clip and not layer:
            layer.extend([albedo.copy(), aux.copy(), Image.new("L", (n, n), 0)])
            layer_draw = tuple(ImageDraw.Draw(image) for image in layer)
        elif not clip:
            flush()
        draws = layer_draw if clip else direct
        fills = [colour, (255, 255 if texture else 0, int(255 * gloss)), 255]
        if base:
            clip_mask = Image.new("L", (n, n), 0)
            draws = (*draws[:2], ImageDraw.Draw(clip_mask))
        xy = [tuple(p) for p in to_px(pts)]
        for draw, fill in zip(draws, fills):
            if draw is None:
                continue
            if kind == "poly":
                draw.polygon(xy, fill=fill)
            elif kind == "line":
                draw.line(xy, fill=fill, width=max(1, int(round(width * px_per_unit))), joint="curve")
            else:
                r = max(1.0, width * px_per_unit)
                for x, y in xy:
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    flush()
    return albedo, aux


def _blurred(mask: Image.Image, size: int, sigma: float) -> np.ndarray:
    """A wide Gaussian blur computed at low resolution and scaled back up with a bicubic filter,
    whose smooth slopes keep the shading free of blocks (the blur is smooth anyway)."""
    factor = max(1, min(8, int(sigma / 2.5)))
    factor = 1 << (factor.bit_length() - 1)  # a power of two, so the box reduction is exact
    small = mask.reduce(factor) if factor > 1 else mask
    small = small.filter(ImageFilter.GaussianBlur(sigma / factor))
    if factor > 1:
        small = small.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(small, dtype=np.float32) * (1 / 255)


def render_photo(shoe: Shoe, rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """The product photo of `shoe`: (S, S, 3) uint8, shaded, on white."""
    albedo_img, aux_img = _rasterize(shoe, rng, size)
    albedo = np.asarray(albedo_img.reduce(SUPERSAMPLE), dtype=np.float32) * (1 / 255)
    aux_small = aux_img.reduce(SUPERSAMPLE)
    aux = np.asarray(aux_small, dtype=np.float32) * (1 / 255)
    coverage, tex_w, gloss = aux[..., 0], aux[..., 1], aux[..., 2]
    cov_img = aux_small.getchannel(0)
    # a height field from the blurred silhouette: the shoe reads as a rounded volume
    rim = _blurred(cov_img, size, size * 0.01)  # about 0.5 on the outline, 1 inside
    height = _blurred(cov_img, size, size * 0.045) * (size * 0.06) + rim * (size * 0.012)
    gy, gx = np.gradient(height)
    norm = 1.0 / np.sqrt(gx * gx + gy * gy + 1.0)
    nx, ny, nz = -gx * norm, -gy * norm, norm
    diffuse = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0, 1)
    material, _, shininess = MATERIALS[shoe.material]
    spec = np.clip(nx * HALFWAY[0] + ny * HALFWAY[1] + nz * HALFWAY[2], 0, 1) ** shininess
    shade = (0.5 + 0.62 * diffuse) * (0.7 + 0.3 * rim)  # surfaces turning away darken at the outline
    if material != "smooth":
        ox, oy = rng.integers(0, size, 2)
        pattern = _textures(size)[TEXTURE_CODES[material]][oy:oy + size, ox:ox + size]
        shade = shade * (1 + pattern * tex_w)
    # a soft contact shadow on the background, then the shoe over it
    background = 1 - coverage
    if rng.random() < 0.6:
        shadow = np.roll(_blurred(cov_img, size, size * 0.02), max(1, size // 80), axis=0)
        background *= 1 - rng.uniform(0.06, 0.14) * shadow
    out = albedo * (shade * coverage)[..., None] + (0.75 * spec * gloss * coverage + background)[..., None]
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Edges: found in the photo, the way edges2shoes found them (an edge detector, then clean-up).


def extract_edges(
    photo: np.ndarray, low: float = 0.04, high: float = 0.1, min_length: int | None = None
) -> np.ndarray:
    """Thin dark lines on white where the photo changes: (S, S, 3) uint8 -> (S, S) uint8.

    Steps: binomial (near-Gaussian) smoothing that suppresses texture, Sobel gradients of the
    three colour channels combined into one colour gradient (Di Zenzo's structure tensor, so hue
    edges count as well as brightness edges), non-maximum suppression (one pixel wide lines),
    hysteresis (weak edges survive only when attached to strong ones, thresholds `low`/`high` on
    a 0..1 scale), removal of fragments shorter than `min_length` pixels (default S/32), then
    light anti-aliasing. A fast stand-in for HED: fast enough to make 50+ pairs/s on one core.
    """
    size = photo.shape[0]
    # binomial smoothing by repeated pairwise sums ([1 4 6 4 1] / 16 each way at S=256, sigma
    # 1 pixel, wider for larger S), on channel-first planes, plus one pixel of border for Sobel
    taps = 4 * max(1, round(size / 256))
    pad = taps // 2 + 1
    p = np.pad(photo.transpose(2, 0, 1).astype(np.float32), ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    for _ in range(taps):
        p = p[:, :, 1:] + p[:, :, :-1]
    for _ in range(taps):
        p = p[:, 1:] + p[:, :-1]
    p *= 1 / (4.0 ** taps * 255)
    dx = p[:, :, 2:] - p[:, :, :-2]
    gx = dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]
    dy = p[:, 2:] - p[:, :-2]
    gy = dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]
    jxx = gx[0] * gx[0] + gx[1] * gx[1] + gx[2] * gx[2]
    jyy = gy[0] * gy[0] + gy[1] * gy[1] + gy[2] * gy[2]
    jxy = gx[0] * gy[0] + gx[1] * gy[1] + gx[2] * gy[2]
    c2, s2 = jxx - jyy, 2 * jxy  # the doubled-angle direction of the strongest change
    mag = np.sqrt(0.5 * (jxx + jyy + np.sqrt(c2 * c2 + s2 * s2))) * 0.25
    # non-maximum suppression across the edge, in four direction bins
    m = np.pad(mag, 1)
    horizontal = c2 >= np.abs(s2)  # gradient along x: compare left and right neighbours
    vertical = -c2 >= np.abs(s2)
    falling = s2 > 0  # gradient along the main diagonal
    n1 = np.where(horizontal, m[1:-1, :-2],
                  np.where(vertical, m[:-2, 1:-1], np.where(falling, m[:-2, :-2], m[:-2, 2:])))
    n2 = np.where(horizontal, m[1:-1, 2:],
                  np.where(vertical, m[2:, 1:-1], np.where(falling, m[2:, 2:], m[2:, :-2])))
    thin = (mag >= n1) & (mag > n2) & (mag > low)
    # hysteresis and fragment removal on 8-connected components
    labels, count = ndimage.label(thin, structure=np.ones((3, 3), dtype=bool))
    if count:
        flat = labels.ravel()
        sizes = np.bincount(flat, minlength=count + 1)
        strong = np.bincount(flat, weights=(mag > high).ravel(), minlength=count + 1)
        keep = (strong > 0) & (sizes >= (min_length if min_length is not None else max(4, size // 32)))
        keep[0] = False
        lines = keep[labels]
    else:
        lines = thin
    # darker where the change is stronger, a touch of blur: soft, slightly uneven lines like HED's
    ink = np.where(lines, np.clip(0.6 + mag * 2.0, 0, 1), 0).astype(np.float32)
    soft = Image.fromarray((ink * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.5 * size / 256))
    ink = np.maximum(np.asarray(soft, dtype=np.float32) * (1.9 / 255), ink * 0.92)
    return (255.5 - np.clip(ink, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Pairs and the data set on disk.


@dataclass(frozen=True)
class Pair:
    edges: Image.Image  # S x S RGB, thin dark lines on white
    photo: Image.Image  # S x S RGB
    kind: str

    def side_by_side(self) -> Image.Image:
        """The dataset's A|B image: edges LEFT, photo RIGHT."""
        s = self.photo.width
        ab = Image.new("RGB", (2 * s, s))
        ab.paste(self.edges, (0, 0))
        ab.paste(self.photo, (s, 0))
        return ab


SPLIT_IDS = {"train": 0, "val": 1, "preview": 2}


def make_pair(seed: int, index: int, size: int = 256, split: str = "train", kind: str | None = None) -> Pair:
    """Pair number `index` of `split` for `seed` (deterministic; independent of every other pair)."""
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])
    chosen = kind if kind is not None else KINDS[int(rng.integers(len(KINDS)))]
    if chosen not in BUILDERS:
        raise ConfigError(f"unknown shoe kind {chosen!r}; choose one of {', '.join(KINDS)}")
    shoe = BUILDERS[chosen](rng)
    photo = render_photo(shoe, rng, size)
    edges = extract_edges(photo)
    return Pair(Image.fromarray(edges).convert("RGB"), Image.fromarray(photo), chosen)


def _check(n: int, n_val: int, size: int) -> None:
    if n < 1:
        raise ConfigError(f"--n must be at least 1 (train pairs), got {n}")
    if n_val < 1:
        raise ConfigError(f"--n-val must be at least 1 (val pairs), got {n_val}")
    if not 32 <= size <= 1024:
        raise ConfigError(f"--size must be between 32 and 1024 pixels, got {size}")


def default_n_val(n: int) -> int:
    """Val pairs when not given: a tenth of the train pairs, at least 1, at most 200 (the real set's 200)."""
    return max(1, min(200, n // 10))


def encode_pair(job: tuple[int, int, int, str]) -> bytes:
    """The JPEG bytes of one A|B file; `job` is (seed, index, size, split). Top-level so that worker
    processes can run it."""
    seed, index, size, split = job
    buffer = io.BytesIO()
    make_pair(seed, index, size, split).side_by_side().save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def make_synthetic(
    out_dir: str | Path,
    n: int = 64,
    size: int = 256,
    seed: int = 0,
    n_val: int | None = None,
    workers: int = 1,
    progress: bool = False,
) -> Path:
    """Write `n` train and `n_val` val pairs (default `default_n_val(n)`) under `out_dir` and return it.

    The files do not depend on `workers` (each pair depends only on seed, split and index). The
    splits are written into a staging folder and moved into place only when complete, so an
    interrupted run never leaves a half-written set. An existing `train/` or `val/` is replaced
    only if `out_dir` was made by this function (it holds `SYNTHETIC.json`), so a real dataset can
    never be overwritten by mistake.
    """
    n_val = default_n_val(n) if n_val is None else n_val
    _check(n, n_val, size)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    marker = out / MARKER
    existing = [out / s for s in ("train", "val") if (out / s).exists()]
    if existing and not marker.exists():
        raise DataError(f"{out} already holds {', '.join(p.name + '/' for p in existing)} not made by "
                        f"make-synthetic; choose an empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, size, split) for split, count in (("train", n), ("val", n_val)) for i in range(1, count + 1)]
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=out))
    pool = None
    try:
        for split in ("train", "val"):
            (staging / split).mkdir()
        if workers > 1:  # spawn, not fork: the parent may hold torch's thread pools
            pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
            results: Iterable[bytes] = pool.imap(encode_pair, jobs, chunksize=8)
        else:
            results = map(encode_pair, jobs)
        bar = tqdm(total=len(jobs), unit="pair", desc="make-synthetic", disable=None if progress else True)
        for (_, index, _, split), jpeg in zip(jobs, results):
            (staging / split / f"{index}_AB.jpg").write_bytes(jpeg)
            bar.update()
        bar.close()
        info = {"generator": "edges2shoes_utils.synthetic", "seed": seed, "size": size, "train": n, "val": n_val,
                "layout": "A|B: edges left, photo right", "kinds": list(KINDS)}
        atomic_write_text(marker, json.dumps(info, indent=2) + "\n")  # claims the folder before the move
        for split in ("train", "val"):
            if (out / split).exists():
                shutil.rmtree(out / split)
            (staging / split).rename(out / split)
    finally:
        if pool is not None:
            pool.terminate()
        shutil.rmtree(staging, ignore_errors=True)
    return out


def preview(size: int = 256, seed: int = 0, kinds: Sequence[str] = KINDS, per_kind: int = 1) -> Image.Image:
    """A contact sheet of pairs (edges | photo), one row per pair, a few of each kind, for the README."""
    pairs = [make_pair(seed, i, size, "preview", kind) for kind in kinds for i in range(per_kind)]
    pad = max(2, size // 64)
    columns = 2 if len(pairs) > 3 else 1
    rows = math.ceil(len(pairs) / columns)
    sheet = Image.new("RGB", (columns * (2 * size + pad) + pad, rows * (size + pad) + pad), (200, 200, 200))
    for k, pair in enumerate(pairs):
        r, c = divmod(k, columns)
        sheet.paste(pair.side_by_side(), (pad + c * (2 * size + pad), pad + r * (size + pad)))
    return sheet


# --------------------------------------------------------------------------------------------------
# Command line: python -m edges2shoes_utils make-synthetic --out DIR --n N --size S --seed K


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="folder to write train/ and val/ into")
    parser.add_argument("--n", type=int, default=64, help="number of train pairs (default 64)")
    parser.add_argument("--n-val", type=int, default=None,
                        help="number of val pairs (default: n/10, at least 1, at most 200)")
    parser.add_argument("--size", type=int, default=256, help="side S of each square; files are 2S x S (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to render with (default 1; the files do not depend on it)")
    parser.add_argument("--preview", type=Path, default=None,
                        help="also write a contact sheet of one pair per shoe kind to this PNG")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    n_val = default_n_val(args.n) if args.n_val is None else args.n_val
    _check(args.n, n_val, args.size)
    start, cpu = time.perf_counter(), time.process_time()
    out = make_synthetic(args.out, n=args.n, size=args.size, seed=args.seed, n_val=n_val, workers=args.workers,
                         progress=args.n + n_val >= 200)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = f"{(args.n + n_val) / max(seconds, 1e-9):.0f} pairs/s"
    if args.workers == 1:  # CPU time shows the one-core speed even when the machine is busy
        rate += f", {(args.n + n_val) / max(cpu, 1e-9):.0f} per CPU-second"
    print(f"wrote {args.n} train + {n_val} val pairs ({2 * args.size}x{args.size}, edges left) to {out} "
          f"in {seconds:.1f} s ({rate})")
    if args.preview is not None:
        from ..util.images import save_image

        save_image(preview(args.size, args.seed), args.preview)
        print(f"preview: {args.preview}")
    return 0
