"""Draw the sample sketches bundled in edges2shoes_utils/assets/sketches/.

They stand in for what a person uploads: a side-view shoe drawn by hand, with wobbly strokes whose
width follows the pen's pressure, overshooting corners, a pencil's grain and retraced lines, and
one phone photo of a ballpoint drawing on unevenly lit paper. The notebook, the generate CLI and the
demo use them so that everything runs without an upload. Drawn procedurally (seeded, so rerunning
this script reproduces the files) rather than copied from anywhere:

    python tools/draw_sample_sketches.py [OUT_DIR]
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from edges2shoes_utils.util.atomic import atomic_write_bytes  # noqa: E402

OUT_DIR = REPO / "edges2shoes_utils" / "assets" / "sketches"
SUPERSAMPLE = 3

Point = tuple[float, float]


@dataclass(frozen=True)
class Pen:
    """How a drawing tool leaves ink: width in output pixels, darkness (1 = black), how much the
    pressure varies, whether lines are retraced (sketchy) and grainy (graphite)."""

    width: float
    darkness: float = 1.0
    pressure: float = 0.25
    taper: float = 0.15  # fraction of a stroke over which it thins towards each end
    wobble: float = 0.004  # amplitude of the hand's tremor, as a fraction of the drawing's width
    retrace: float = 0.0  # probability that a stroke is drawn a second time, slightly off
    grain: float = 0.0
    color: tuple[int, int, int] = (0, 0, 0)


# --------------------------------------------------------------------------------------------------
# The shoes, side views with the toe to the left (as in edges2shoes), in a 1000-wide frame.

SNEAKER: list[list[Point]] = [
    [(40, 372), (30, 400), (60, 440), (300, 455), (700, 455), (930, 445), (975, 405), (962, 360)],  # outsole
    [(40, 372), (300, 388), (650, 386), (962, 360)],  # midsole top
    [(40, 372), (28, 330), (80, 292), (200, 262), (330, 232), (420, 172), (500, 110), (545, 92), (585, 104)],
    [(585, 104), (605, 152), (700, 172), (800, 152), (880, 122)],  # collar
    [(880, 122), (935, 142), (966, 250), (975, 362)],  # heel
    [(62, 338), (150, 300), (232, 328), (246, 374)],  # toe cap
    [(345, 226), (420, 250), (520, 215), (600, 160)],  # lace panel
    [(365, 238), (402, 204)], [(405, 222), (442, 186)], [(446, 202), (484, 162)], [(488, 178), (526, 138)],
    [(420, 334), (560, 302), (722, 228), (628, 322), (500, 352)],  # side stripe
    [(880, 122), (898, 202), (945, 214)],  # heel tab
    [(120, 430), (130, 452)], [(220, 436), (230, 456)], [(320, 440), (330, 458)], [(420, 441), (430, 458)],
    [(520, 441), (530, 458)], [(620, 441), (630, 458)], [(720, 440), (730, 457)], [(820, 436), (830, 454)],
]

BOOT: list[list[Point]] = [
    [(40, 790), (64, 842), (300, 852), (560, 850)],  # forefoot sole
    [(560, 850), (600, 826), (640, 848)],  # arch
    [(640, 848), (646, 884), (930, 884), (940, 800)],  # heel block
    [(40, 790), (500, 802), (942, 792)],  # welt
    [(40, 790), (52, 720), (150, 652), (330, 604), (430, 522), (470, 352), (482, 100)],  # vamp, shaft front
    [(482, 100), (600, 80), (760, 80), (852, 102)],  # top edge
    [(852, 102), (842, 352), (880, 552), (936, 700), (942, 792)],  # back
    [(818, 104), (826, 40), (870, 46), (862, 108)],  # pull tab
    [(560, 92), (578, 352), (640, 424), (702, 352), (722, 86)],  # elastic gusset
    [(120, 682), (200, 702), (232, 790)],  # toe cap seam
    [(800, 320), (812, 520), (870, 680)],  # heel counter seam
]

HEEL: list[list[Point]] = [
    [(20, 560), (80, 592), (250, 602), (400, 582), (520, 500), (660, 370), (800, 306), (880, 300)],  # sole line
    [(20, 560), (62, 510), (200, 462), (332, 432)],  # toe
    [(332, 432), (420, 446), (550, 404), (700, 312), (820, 244), (882, 232)],  # top line
    [(882, 232), (918, 262), (904, 304)],  # back of the counter
    [(904, 304), (902, 452), (888, 684)],  # back of the heel
    [(818, 332), (852, 500), (864, 682)],  # front of the heel
    [(858, 684), (892, 686)],  # heel tip
    [(362, 442), (600, 378), (800, 272), (872, 240)],  # lining edge
    [(30, 574), (300, 590)],  # sole edge
    [(150, 500), (185, 470), (215, 500), (185, 520), (150, 500)],  # a bow on the toe
    [(215, 500), (250, 470), (285, 500), (250, 520), (215, 500)],
]

LOAFER: list[list[Point]] = [
    [(30, 370), (60, 410), (500, 422), (950, 410), (975, 370)],  # sole
    [(36, 360), (500, 364), (962, 356)],  # sole top
    [(36, 360), (40, 310), (120, 262), (300, 222), (420, 200), (480, 162), (522, 152)],  # toe, vamp
    [(522, 152), (600, 176), (750, 170), (880, 140), (940, 160), (965, 260), (965, 355)],  # collar, heel
    [(160, 266), (204, 302), (430, 292), (472, 202)],  # moc-toe apron
    [(430, 232), (620, 242)], [(440, 264), (612, 272)],  # penny strap
    [(500, 248), (560, 251)],  # its slot
    [(780, 362), (782, 412)],  # heel block
]


# --------------------------------------------------------------------------------------------------
# A hand's stroke: a smooth curve through the points, with tremor, pressure and overshoot.


def _catmull_rom(points: np.ndarray, samples_per_segment: int = 24) -> np.ndarray:
    padded = np.vstack([points[0], points, points[-1]])
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        t = np.linspace(0, 1, samples_per_segment, endpoint=False)[:, None]
        out.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out.append(points[-1:])
    return np.vstack(out)


def _resample_path(path: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    n = max(2, int(s[-1] / step) + 1)
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, path[:, 0]), np.interp(t, s, path[:, 1])], 1)


def _hand_path(points: list[Point], scale: float, rng: np.random.Generator, pen: Pen, frame: float) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64) * scale
    p = p + rng.normal(0, 0.002 * frame, p.shape)  # the hand never hits the planned points
    if len(p) > 2 and np.allclose(p[0], p[-1], atol=1e-6 * frame + 1):
        p[-1] = p[0] + rng.normal(0, 0.004 * frame, 2)  # closed loops rarely close exactly
    path = _catmull_rom(p) if len(p) > 2 else p
    path = _resample_path(path, step=0.5)
    # Overshoot: strokes run on a little past where they were meant to end.
    for end, sign in ((0, -1), (-1, 1)):
        a, b = (path[0], path[min(5, len(path) - 1)]) if end == 0 else (path[-1], path[max(-6, -len(path))])
        direction = (a - b) / (np.linalg.norm(a - b) + 1e-9)
        extra = rng.uniform(0, 0.012 * frame)
        tail = a + direction * np.linspace(0, extra, max(2, int(extra / 0.5)))[1:, None]
        path = np.vstack([tail[::-1], path]) if end == 0 else np.vstack([path, tail])
    # Tremor: a slow sideways drift, a few cycles per stroke.
    tangent = np.gradient(path, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    s = np.linspace(0, 1, len(path))
    drift = sum(
        rng.normal(0, 1) / k * np.sin(2 * np.pi * (k * rng.uniform(0.6, 1.4)) * s + rng.uniform(0, 2 * np.pi))
        for k in (1, 2, 3, 5)
    )
    length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    amplitude = pen.wobble * frame * min(1.0, length / (0.3 * frame))  # short strokes stay steady
    return path + normal * (amplitude * drift)[:, None]


def _pressure(n: int, rng: np.random.Generator, pen: Pen) -> np.ndarray:
    s = np.linspace(0, 1, n)
    vary = 1 + pen.pressure * sum(rng.normal(0, 0.6) * np.sin(2 * np.pi * k * s + rng.uniform(0, 6.3)) for k in (1, 2, 4))
    if pen.taper > 0:
        ends = np.minimum(s, 1 - s) / pen.taper
        vary *= 0.35 + 0.65 * np.clip(ends, 0, 1) ** 0.6
    return np.clip(vary, 0.25, 1.8)


def draw(
    strokes: list[list[Point]],
    pen: Pen,
    *,
    canvas: tuple[int, int],
    placement: tuple[float, float, float],
    seed: int,
    paper: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Render `strokes` (in a 1000-wide frame) with `pen`: `placement` = (left, top, width) of the
    drawing on the canvas, in pixels."""
    rng = np.random.default_rng(seed)
    w, h = canvas
    left, top, width = placement
    ss = SUPERSAMPLE
    mask = Image.new("L", (w * ss, h * ss), 0)
    painter = ImageDraw.Draw(mask)
    scale = width / 1000 * ss
    frame = width * ss
    for points in strokes:
        passes = 2 if rng.random() < pen.retrace else 1
        for k in range(passes):
            path = _hand_path(points, scale, rng, pen, frame)
            if k == 1:  # a retrace covers part of the stroke, a little off the first line
                a, b = sorted(rng.uniform(0, 1, 2))
                a, b = min(a, 0.3), max(b, 0.7)
                path = path[int(a * len(path)) : int(b * len(path))] + rng.normal(0, 0.003 * frame, 2)
            radius = pen.width * ss / 2 * _pressure(len(path), rng, pen)
            strength = int(255 * (0.75 if k == 1 else 1.0))
            for (x, y), r in zip(path[::2] + (left * ss, top * ss), radius[::2]):
                painter.ellipse((x - r, y - r, x + r, y + r), fill=strength)
    ink = np.asarray(mask.resize((w, h), Image.Resampling.BOX), dtype=np.float32) / 255.0
    if pen.grain:
        grain = ndimage.gaussian_filter(rng.uniform(0, 1, (h, w)), 0.7)
        grain = (grain - grain.min()) / (np.ptp(grain) + 1e-9)
        ink *= 1 - pen.grain * grain
    ink *= pen.darkness
    paper_rgb = np.asarray(paper, np.float32) / 255.0
    color = np.asarray(pen.color, np.float32) / 255.0
    rgb = paper_rgb * (1 - ink[..., None]) + color * ink[..., None]
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), "RGB")


def photograph(drawing: Image.Image, seed: int) -> Image.Image:
    """The drawing as a phone sees it: light falling off across the page, the soft shadow of the
    phone over one corner, a warm cast, vignetting and sensor noise."""
    rng = np.random.default_rng(seed)
    a = np.asarray(drawing, dtype=np.float32) / 255.0
    h, w = a.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w, y / h
    light = 1.0 - 0.32 * x - 0.12 * y
    shadow = 1.0 - 0.30 * np.clip(1 - np.hypot((x - 1.05) / 0.55, (y - 1.1) / 0.45), 0, 1) ** 0.6
    vignette = 1.0 - 0.18 * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2
    lit = a * (light * shadow * vignette)[..., None] * np.array([0.97, 0.92, 0.82], np.float32)
    lit += rng.normal(0, 0.018, lit.shape).astype(np.float32)
    lit = ndimage.gaussian_filter(lit, (0.6, 0.6, 0))  # a phone camera's softness
    return Image.fromarray((np.clip(lit, 0, 1) * 255).round().astype(np.uint8), "RGB")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    gray = image.convert("L") if np.ptp(np.asarray(image).astype(int)[..., :3], axis=2).max() == 0 else image
    gray.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def main(out_dir: Path = OUT_DIR) -> list[Path]:
    felt_tip = Pen(width=4.5, pressure=0.2, taper=0.1, wobble=0.003, retrace=0.1)
    marker = Pen(width=14, pressure=0.12, taper=0.04, wobble=0.004)
    pencil = Pen(width=2.2, darkness=0.62, pressure=0.35, taper=0.2, wobble=0.003, retrace=0.5, grain=0.45)
    ballpoint = Pen(width=2.6, darkness=0.9, pressure=0.3, taper=0.15, wobble=0.003, retrace=0.25, color=(20, 35, 110))
    samples = {
        "sneaker_felt_tip.png": _png(draw(SNEAKER, felt_tip, canvas=(1200, 900), placement=(130, 240, 900), seed=1)),
        "boot_marker.png": _png(draw(BOOT, marker, canvas=(900, 1000), placement=(110, 120, 650), seed=2)),
        "heel_pencil.png": _png(draw(HEEL, pencil, canvas=(1200, 900), placement=(180, 160, 820), seed=3)),
        "loafer_paper_photo.jpg": _jpeg(
            photograph(draw(LOAFER, ballpoint, canvas=(1280, 960), placement=(170, 300, 880), seed=4), seed=5)
        ),
    }
    written = []
    for name, data in samples.items():
        path = out_dir / name
        atomic_write_bytes(path, data)
        written.append(path)
        print(f"wrote {path} ({len(data) / 1024:.0f} KiB)")
    return written


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR)
