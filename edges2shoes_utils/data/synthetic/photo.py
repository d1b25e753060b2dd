"""The product photo of a synthetic shoe: paint at twice the size, shade as a rounded volume lit
from the upper left, add the material's texture and gloss, composite on white."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .palettes import MATERIALS, TEXTURE_CODES
from .shapes import Shoe

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
