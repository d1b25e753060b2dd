"""Hand-drawn sketches into edge maps that look like the edges2shoes dataset's.

pix2pix (Isola et al. 2017, arXiv 1611.07004) learns edges2shoes from HED edge maps of product
photos: thin (about 1-2 px at 256x256) black lines on white, the shoe spanning nearly the whole
width and centred. A person's drawing differs in every one of those respects: thick marker or faint
pencil, a phone photo of paper with shadows and uneven light, white chalk on black, a small drawing
in a corner of a big page. Fed as is, the generator sees something it never saw in training and the
result is poor. `prepare_sketch` closes that gap with a few plain image-processing steps, each one
switchable so that its effect can be seen and a step that hurts a particular drawing can be dropped:

  load        path, bytes, PIL image or array (`image_input.py`); EXIF orientation, transparency on
              white, GIF frame 0; large images are reduced early (JPEG decoding itself is scaled
              down), tiny ones enlarged
  grayscale   luminance only (colour is kept only when no later step redraws the lines)
  polarity    light lines on a dark ground are inverted, detected from the sign of the fine detail
  paper       divide by a background estimate (morphological closing + blur), which flattens light
              gradients and shadows, then threshold relative to the paper's noise: dark lines on white
  crop        to the drawing's bounding box, padded to a square with the dataset's margin
  resize      to the model size, antialiased
  thin        skeletonize and redraw every stroke at the dataset's width (a thick marker becomes
              thin; a fine pencil line stays, at the same width): `thinning.py`

Finding the drawing (polarity detection, the flattened-paper ink map) always runs, because the
blank-page check and the crop need it; a switch decides whether its step changes the pixels. Since
thinning redraws the lines from that ink map, paper shading never survives it: `clean_paper=False`
shows only with `thin_strokes=False`.

The result is black lines on white in three identical channels. The preview returned beside the
tensor is exactly the image the model sees (the tensor is made from the preview's 8-bit pixels).

Speed: the web app redraws while a person draws, so the clean-up must cost less than the network
(`bench sketch` measures it). The filters come from OpenCV (`filters.py`; scipy where OpenCV is
missing, same pictures), one channel is resized instead of three, the paper's statistics of a big
image come from a quarter of its pixels and one sort, and thinning touches only the pixels near the
drawing (`thinning.py`). Those that give the same pictures as their plain alternative earn their
place by a paired timing against it (`tools/ab_mechanisms.py`). The working resolution stays at 1024 px and the reduction stays
Lanczos: at 512 px, or with a cheaper filter, a faint pencil line on a large page fades below the
ink threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..util.errors import SketchError
from .filters import box_blur, closing, drop_small_components, enlarge, gaussian
from .image_input import ImageInput, describe_image_source, load_image, rescale
from .thinning import centre_lines, redraw

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "sketches"

# The dataset's framing: the shoe spans nearly the full width (its longer side fills
# 1 - 2 * margin of the square), centred both ways.
DEFAULT_MARGIN = 0.04
# Width of the redrawn strokes in output pixels (edges2shoes' HED lines are about 1-2 px at 256).
DEFAULT_STROKE_WIDTH = 1.5
# Longest side the clean-up works at: big photos are reduced to this first (fast, and still about
# four times the output's resolution, so a fine pencil line survives), tiny images enlarged to
# twice the output size so that the thinning has pixels to work with.
DEFAULT_WORKING_SIZE = 1024
_FULL_STATISTICS_LIMIT = 256 * 256  # pixels; a bigger image's paper statistics come from a quarter of them


def sample_sketches() -> list[Path]:
    """The sample sketches shipped with the package (drawn by tools/draw_sample_sketches.py)."""
    suffixes = {".png", ".jpg", ".jpeg", ".webp"}
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in suffixes)


def prepare_sketch(
    image: ImageInput,
    size: int = 256,
    *,
    grayscale: bool = True,
    fix_polarity: bool = True,
    clean_paper: bool = True,
    crop: bool = True,
    thin_strokes: bool = True,
    margin: float = DEFAULT_MARGIN,
    stroke_width: float = DEFAULT_STROKE_WIDTH,
    working_size: int = DEFAULT_WORKING_SIZE,
    name: str | None = None,
) -> tuple[torch.Tensor, Image.Image]:
    """Turn a drawing into the model's input: a (1, 3, size, size) float tensor in [-1, 1] and the
    RGB preview it was made from (identical pixels).

    `image` is a path, the file's bytes, a PIL image or an array (HxW, HxWx3 or HxWx4; uint8, or
    float in [0, 1]). `name` labels bytes and arrays in error messages (a path names itself).
    Each step can be switched off (see the module docstring); `margin` is the gap around the
    drawing as a fraction of the side, `stroke_width` the redrawn line width in output pixels.
    The preview's `info["sketch"]` records what was done (inverted, crop box, ...).

    Raises SketchError for an unreadable file or a page with no drawing on it.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    label = name or describe_image_source(image)
    colour = not (grayscale or clean_paper or thin_strokes)  # only then can colour reach the output
    loaded = load_image(image, label, max_side=working_size, gray=not colour)
    pixels = np.asarray(rescale(loaded, max_side=working_size, min_side=2 * size))
    gray = _luminance(pixels)
    info: dict[str, Any] = {"source": label, "working_shape": gray.shape}

    # Steps that find the drawing always run (on dark-on-light pixels): the blank-page check and
    # the crop need them. The switches decide which steps change the pixels the model sees.
    light_lines = _lines_are_light(gray)
    if light_lines:
        gray = 1.0 - gray
    darkness = _flatten_paper(gray)
    info["inverted"] = bool(light_lines and fix_polarity)
    ink = _find_ink(darkness)
    if ink.sum() < max(12, 2e-5 * ink.size) or min(_extent(ink)) < 0.01 * max(ink.shape):
        raise SketchError(
            f"{label}: found no drawing; the page looks blank. Draw the shoe with dark lines on "
            "light paper (or light on dark), filling a good part of the picture."
        )

    box = _square_box(ink, margin) if crop else _square_box_of_image(ink.shape)
    if thin_strokes:
        reframe = (lambda inset: _square_box(ink, margin, inset=inset)) if crop else None
        box, skeleton = centre_lines(ink, box, size, reframe)
        out = 1.0 - redraw(skeleton, size, stroke_width)
    elif clean_paper:
        out = 1.0 - _resample(ink.astype(np.float32), box, size, fill=0.0)
    elif grayscale:
        out = _resample(gray, box, size, fill=_paper_level(gray))
    else:
        rgb = pixels.astype(np.float32) / 255.0
        rgb = 1.0 - rgb if light_lines else rgb
        out = np.stack([_resample(rgb[..., c], box, size, fill=_paper_level(rgb[..., c])) for c in range(3)], -1)
    if light_lines and not fix_polarity:
        out = 1.0 - out  # back to the picture's own polarity

    info["crop_box"] = tuple(round(float(v), 1) for v in box)
    pixels = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    preview = Image.fromarray(pixels, "RGB")
    preview.info["sketch"] = info
    values = pixels.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(values)), preview


# --------------------------------------------------------------------------------------------------
# Loading at the working size, polarity and paper: where is the ink?


def _luminance(pixels: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] (float32) of 8-bit gray or RGB pixels."""
    if pixels.ndim == 3:
        return (pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32) / 255.0).astype(np.float32)
    return pixels.astype(np.float32) / np.float32(255.0)


def _lines_are_light(gray: np.ndarray) -> bool:
    """True for light lines on a dark ground (chalk, an inverted edge map).

    Lines are the image's fine detail; the sign of the strong fine detail tells their colour,
    whatever the overall brightness (a dim photo of white paper is still dark lines on light).
    """
    small = np.ascontiguousarray(gray[::2, ::2]) if min(gray.shape) >= 256 else gray
    detail = small - box_blur(small, max(small.shape) // 24)
    floor = 4 * _level_and_spread(detail)[1] + 0.03
    lighter = np.clip(detail - floor, 0, None).sum()
    darker = np.clip(-detail - floor, 0, None).sum()
    if lighter == darker == 0:  # no fine detail at all: fall back on the overall brightness
        return _median(_sample(gray)) < 0.5
    return bool(lighter > darker)


def _paper_background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness without the lines: a morphological closing (a maximum then a minimum
    filter, wider than any stroke) removes dark lines but keeps gradients and shadow edges; a blur
    smooths its blocks. Worked out at half resolution, which is plenty for lighting."""
    step = 2 if min(gray.shape) >= 256 else 1
    small = np.ascontiguousarray(gray[::step, ::step])
    width = max(9, int(round(0.05 * max(small.shape)))) | 1
    closed = box_blur(closing(gaussian(small, 1.0), width), width // 2)
    return closed if step == 1 else enlarge(closed, gray.shape)


def _flatten_paper(gray: np.ndarray) -> np.ndarray:
    """Darkness relative to the local paper: 0 on paper whatever the lighting, up to 1 on ink."""
    smooth = gaussian(gray, 0.7)  # tames sensor noise, keeps 1-px lines
    ratio = smooth / np.maximum(_paper_background(smooth), np.float32(1e-3))
    ratio /= np.float32(max(_median(_sample(ratio)), 1e-3))  # the paper itself sits at 1
    return np.clip(np.float32(1.0) - ratio, 0.0, 1.0)


def _find_ink(darkness: np.ndarray) -> np.ndarray:
    """Pixels clearly darker than the paper, without isolated specks of dust or noise.

    The threshold sits above the paper's own noise (robustly measured) but low enough that a
    faint pencil line, a few tenths darker than the paper, is kept.
    """
    level, noise = _level_and_spread(darkness)
    ink = darkness > level + max(6.0 * noise, 0.12)
    return drop_small_components(ink, min_area=max(3, int(12 * (max(ink.shape) / 1024) ** 2)))


def _level_and_spread(values: np.ndarray) -> tuple[float, float]:
    """The median and a robust standard deviation (1.4826 x the median absolute deviation).

    One sort gives both: below the median the sorted values' distances to it fall, above it they
    rise, so the median distance is a middle rank of two sorted runs, found by bisection.
    """
    ordered = np.sort(_sample(values), axis=None)
    level = _middle(ordered)
    centre = np.float32(level)
    split = int(np.searchsorted(ordered, centre))
    below = centre - ordered[:split][::-1]  # the distances of the values below the median, rising
    above = ordered[split:] - centre
    ranks = ((ordered.size - 1) // 2, ordered.size // 2)
    deviation = (_rank_of_two(below, above, ranks[0]) + _rank_of_two(below, above, ranks[1])) / np.float32(2)
    return level, 1.4826 * float(deviation)


def _rank_of_two(a: np.ndarray, b: np.ndarray, rank: int) -> np.float32:
    """The value of 0-based `rank` among two ascending arrays taken together.

    Bisects on how many of the `rank + 1` smallest come from `a`: O(log n) lookups, no merge."""
    taken = rank + 1
    low, high = max(0, taken - b.size), min(a.size, taken)
    while low < high:  # the fewest from `a` such that b's last taken is no larger than a's next
        i = (low + high) // 2
        if b[taken - i - 1] > a[i]:
            low = i + 1
        else:
            high = i
    last = [a[low - 1]] if low > 0 else []
    last += [b[taken - low - 1]] if taken - low > 0 else []
    return max(last)


def _sample(values: np.ndarray) -> np.ndarray:
    """Every other row and column of a big image: a quarter of the cost for the statistics of the
    paper (its level, its noise), with a sampling error far below anything they decide."""
    return values[::2, ::2] if values.size > _FULL_STATISTICS_LIMIT else values


def _median(values: np.ndarray) -> float:
    """np.median's value, read off a full sort: numpy's vectorised sort (AVX2 / AVX-512) is several
    times faster than its selection on these arrays (docs/benchmarks.md), most of all on arrays full
    of ties (paper clipped to exactly 0)."""
    return _middle(np.sort(values, axis=None))


def _middle(ordered: np.ndarray) -> float:
    """The median of values sorted ascending."""
    return float((ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / np.float32(2))


def _paper_level(channel: np.ndarray) -> float:
    return float(np.percentile(channel, 90))


def _extent(mask: np.ndarray) -> tuple[int, int]:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return 0, 0
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return int(r[-1] - r[0] + 1), int(c[-1] - c[0] + 1)


# --------------------------------------------------------------------------------------------------
# Framing: the drawing centred in a square with the dataset's margin.


def _square_box(ink: np.ndarray, margin: float, inset: float = 0.0) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the square, in working pixels, that frames the drawing's
    bounding box (shrunk by `inset` on every side)."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    extent = max(bottom - top, right - left)
    extent = max(extent - 2 * inset, 0.5 * extent)
    side = extent / (1.0 - 2.0 * margin)
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def _square_box_of_image(shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    h, w = shape[:2]
    side = float(max(h, w))
    return (w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2


def _resample(
    channel: np.ndarray,
    box: tuple[float, float, float, float],
    size: int,
    fill: float,
) -> np.ndarray:
    """The square `box` of `channel` (padded with `fill` where it leaves the image) resized to
    size x size with an antialiasing filter (Lanczos)."""
    h, w = channel.shape
    left, top, right, bottom = box
    pad_l, pad_t = max(0, int(np.ceil(-left))), max(0, int(np.ceil(-top)))
    pad_r, pad_b = max(0, int(np.ceil(right - w))), max(0, int(np.ceil(bottom - h)))
    if pad_l or pad_t or pad_r or pad_b:
        channel = np.pad(channel, ((pad_t, pad_b), (pad_l, pad_r)), constant_values=fill)
    src = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), "F")
    shifted = (left + pad_l, top + pad_t, right + pad_l, bottom + pad_t)
    shifted = (
        max(0.0, shifted[0]),
        max(0.0, shifted[1]),
        min(float(src.width), shifted[2]),
        min(float(src.height), shifted[3]),
    )
    out = src.resize((size, size), Image.Resampling.LANCZOS, box=shifted)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
