"""Synthetic drawings of a shoe, made in code: what a browser canvas sends and what a phone camera
sends. The sketch benchmark (`bench sketch`) times the clean-up on them and tests check it on them;
the same seed always gives the same picture, and no file is needed.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# A side-view shoe in unit coordinates (x to the right, y down): sole, toe and vamp, collar and heel,
# midsole line, laces, a stripe.
SHOE_PROFILE: list[list[tuple[float, float]]] = [
    [(0.02, 0.80), (0.10, 0.86), (0.60, 0.88), (0.95, 0.86), (0.99, 0.78), (0.97, 0.70)],
    [(0.02, 0.80), (0.03, 0.68), (0.12, 0.60), (0.35, 0.52), (0.48, 0.30), (0.55, 0.12)],
    [(0.55, 0.12), (0.72, 0.10), (0.85, 0.14), (0.92, 0.35), (0.97, 0.70)],
    [(0.05, 0.74), (0.60, 0.78), (0.97, 0.76)],
    [(0.40, 0.48), (0.50, 0.50)],
    [(0.45, 0.38), (0.55, 0.40)],
    [(0.50, 0.26), (0.59, 0.28)],
    [(0.70, 0.30), (0.75, 0.60), (0.85, 0.66)],
]
SHOE_ASPECT = 1.5  # width over height of the box the profile is drawn into


def draw_profile(width: int, height: int, *, stroke: float, box: tuple[float, float, float, float],
                 ink: int = 0, seed: int = 0, supersample: int = 1) -> Image.Image:
    """The shoe profile as grey `ink` strokes `stroke` px wide on white (mode "L"), inside `box`
    (left, top, right, bottom as fractions of the picture). The seed moves every point a little, as
    a hand would; `supersample` > 1 draws bigger and reduces, for antialiased strokes."""
    rng = np.random.default_rng(seed)
    s = max(1, supersample)
    canvas = Image.new("L", (width * s, height * s), 255)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = box
    radius = stroke * s / 2
    for line in SHOE_PROFILE:
        wobble = rng.normal(0.0, 0.005, size=(len(line), 2))
        points = [((left + (x + dx) * (right - left)) * width * s, (top + (y + dy) * (bottom - top)) * height * s)
                  for (x, y), (dx, dy) in zip(line, wobble)]
        draw.line(points, fill=ink, width=max(1, round(stroke * s)), joint="curve")
        for x, y in (points[0], points[-1]):  # round caps, like a brush
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
    return canvas.resize((width, height), Image.Resampling.BOX) if s > 1 else canvas


def centred_box(width: int, height: int, fill: float) -> tuple[float, float, float, float]:
    """The box (fractions of a `width` x `height` picture) of a shoe `fill` of the picture wide (or
    as wide as fits), SHOE_ASPECT times as wide as tall, centred: the same drawing in any frame."""
    box_width = min(fill * width, fill * height * SHOE_ASPECT)
    w, h = box_width / width, box_width / SHOE_ASPECT / height
    return (0.5 - w / 2, 0.5 - h / 2, 0.5 + w / 2, 0.5 + h / 2)


def canvas_drawing(size: int = 512, *, stroke: float = 3.0, seed: int = 0) -> Image.Image:
    """A shoe drawn on a browser canvas, as the web app receives it: antialiased black strokes
    `stroke` px wide on white, RGB, `size` x `size`, the shoe across most of the width."""
    gray = draw_profile(size, size, stroke=stroke, box=centred_box(size, size, 0.84), seed=seed, supersample=4)
    return gray.convert("RGB")


def photo_of_drawing(width: int = 4000, height: int = 3000, *, seed: int = 0, quality: int = 85) -> bytes:
    """JPEG bytes of a phone photo of a pencil drawing on paper: grey graphite strokes slightly out
    of focus, light falling off across the page with a soft shadow on one side, sensor noise, a warm
    tint, JPEG compression. 4000 x 3000 is a 12-megapixel phone camera."""
    rng = np.random.default_rng(seed)
    stroke = max(1.0, 0.0025 * width)
    drawing = draw_profile(width, height, stroke=stroke, box=centred_box(width, height, 0.76), ink=70, seed=seed)
    drawing = drawing.filter(ImageFilter.GaussianBlur(max(0.5, stroke / 6)))
    darkness = 1.0 - np.asarray(drawing, dtype=np.float32) / 255.0
    y = np.arange(height, dtype=np.float32)[:, None] / max(width, height)
    x = np.arange(width, dtype=np.float32)[None, :] / max(width, height)
    light = (0.93 - 0.35 * (0.6 * x + 0.4 * y)) * (1.0 - 0.3 / (1.0 + np.exp(-(x - 0.8) * 20.0)))
    gray = light * (1.0 - darkness) + 0.03 * rng.standard_normal((height, width), dtype=np.float32)
    g = Image.fromarray(np.clip(gray * 255.0, 0, 255).astype(np.uint8), "L")
    photo = Image.merge("RGB", [g, g.point(lambda v: v * 0.96), g.point(lambda v: v * 0.88)])
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
