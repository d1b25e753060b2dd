"""Shapes of the synthetic shoes, in shoe units (toe at x=0, heel at x=1, ground at y=0, y up):
smooth curves through a few points (Catmull-Rom), strips along them, and two drawing records, the
`Shoe` (an ordered list of painting operations) and its `Sole` (the side profile uppers stand on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .palettes import MATERIALS, RGB, shade

Points = Sequence[tuple[float, float]]

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


def arc_points(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` units along a polyline (for eyelets, stitches and tread)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    if dist[-1] <= 0:
        return points[:1]
    at = np.arange(spacing / 2, dist[-1], spacing)
    return np.stack([np.interp(at, dist, points[:, 0]), np.interp(at, dist, points[:, 1])], axis=1)


def offset(points: np.ndarray, distance: float) -> np.ndarray:
    """The polyline moved sideways by `distance` (positive = to the left of its direction)."""
    d = np.gradient(points, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    return points + distance * n


def band(spine: np.ndarray, width: float) -> np.ndarray:
    """A strip of the given full width around a polyline (straps, stripes, collars)."""
    return np.concatenate([offset(spine, width / 2), offset(spine, -width / 2)[::-1]])


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
        marks = arc_points(pts, length * 2)
        if len(marks) < 2:
            return
        d = np.gradient(marks, axis=0)
        d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
        for point, step in zip(marks, d):
            self.line([point - step * length / 2, point + step * length / 2], width, colour, clip=clip)

    def points(self) -> np.ndarray:
        return np.concatenate([op[1] for op in self.ops])

    @property
    def gloss(self) -> float:
        """The specular strength of the shoe's material."""
        return MATERIALS[self.material][1]


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
                       (0.99, 0.0), (hx + 0.015, 0.0)], heel_colour or shade(colour, 0.8), gloss=gloss)
        xs = np.linspace(0.02, 0.995, 40)
        top = np.stack([xs, self.top(xs)], axis=1)
        bottom = np.stack([xs, self.bottom(xs)], axis=1)[::-1]
        bottom[bottom[:, 0] > self.heel_front, 1] = self.heel  # the sole ends on top of the heel block
        toe = smooth([(0.02, float(self.bottom(0.02))), (0.0, float(self.bottom(0.0)) + self.thickness * 0.5),
                      (0.02, float(self.top(0.02)))], closed=False, samples=4)[1:-1]
        back = [(1.002, float(self.top(1.0)) - self.thickness * 0.3)]
        shoe.poly(np.concatenate([top, back, bottom, toe]), colour, gloss=gloss)
        return top
