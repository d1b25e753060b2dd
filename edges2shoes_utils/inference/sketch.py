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
              thin; a fine pencil line stays, at the same width)

Finding the drawing (polarity detection, the flattened-paper ink map) always runs, because the
blank-page check and the crop need it; a switch decides whether its step changes the pixels. Since
thinning redraws the lines from that ink map, paper shading never survives it: `clean_paper=False`
shows only with `thin_strokes=False`.

The result is black lines on white in three identical channels. The preview returned beside the
tensor is exactly the image the model sees (the tensor is made from the preview's 8-bit pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from skimage.morphology import skeletonize

from ..util.errors import SketchError
from .image_input import ImageInput, describe_image_source, load_rgb_array

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
_SUPERSAMPLE = 2  # thinning and redrawing happen at this multiple of the output size


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
    rgb = load_rgb_array(image, label, max_side=working_size, min_side=2 * size)
    gray = _luminance(rgb)
    info: dict[str, Any] = {"source": label, "working_shape": gray.shape}

    # Steps that find the drawing always run (on dark-on-light pixels): the blank-page check and
    # the crop need them. The switches decide which steps change the pixels the model sees.
    light_lines = _lines_are_light(gray)
    if light_lines:
        gray, rgb = 1.0 - gray, 1.0 - rgb
    info["inverted"] = bool(light_lines and fix_polarity)
    ink = _find_ink(_flatten_paper(gray))
    if ink.sum() < max(12, 2e-5 * ink.size) or min(_extent(ink)) < 0.01 * max(ink.shape):
        raise SketchError(
            f"{label}: found no drawing; the page looks blank. Draw the shoe with dark lines on "
            "light paper (or light on dark), filling a good part of the picture."
        )

    box = _square_box(ink, margin) if crop else _square_box_of_image(ink.shape)
    if thin_strokes:
        skeleton, half_width = _centre_lines(ink.astype(np.float32), box, size)
        if crop and half_width > 1.5:
            # The outline of a thick stroke reaches half its width beyond the centre line that is
            # redrawn: frame the centre lines, not the outline.
            inset = half_width * (box[2] - box[0]) / (_SUPERSAMPLE * size)
            box = _square_box(ink, margin, inset=inset)
            skeleton, _ = _centre_lines(ink.astype(np.float32), box, size)
        out = 1.0 - _redraw(skeleton, size, stroke_width)
    elif clean_paper:
        out = 1.0 - _resample(ink.astype(np.float32), box, size, fill=0.0)
    elif grayscale:
        out = _resample(gray, box, size, fill=_paper_level(gray))
    else:
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
# Polarity and paper: where is the ink?


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def _lines_are_light(gray: np.ndarray) -> bool:
    """True for light lines on a dark ground (chalk, an inverted edge map).

    Lines are the image's fine detail; the sign of the strong fine detail tells their colour,
    whatever the overall brightness (a dim photo of white paper is still dark lines on light).
    """
    small = gray[::2, ::2] if min(gray.shape) >= 256 else gray
    detail = small - _box_blur(small, max(small.shape) // 24)
    spread = 1.4826 * np.median(np.abs(detail - np.median(detail)))
    floor = 4 * spread + 0.03
    lighter = np.clip(detail - floor, 0, None).sum()
    darker = np.clip(-detail - floor, 0, None).sum()
    if lighter == darker == 0:  # no fine detail at all: fall back on the overall brightness
        return float(np.median(gray)) < 0.5
    return lighter > darker


def _paper_background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness without the lines: a morphological closing (a maximum then a minimum
    filter, wider than any stroke) removes dark lines but keeps gradients and shadow edges; a blur
    smooths its blocks. Worked out at half resolution, which is plenty for lighting."""
    step = 2 if min(gray.shape) >= 256 else 1
    small = gray[::step, ::step]
    width = max(9, int(round(0.05 * max(small.shape)))) | 1
    closed = ndimage.grey_closing(ndimage.gaussian_filter(small, 1.0), size=(width, width))
    closed = _box_blur(closed, width // 2)
    if step == 1:
        return closed
    up = Image.fromarray(closed.astype(np.float32), "F").resize(gray.shape[::-1], Image.Resampling.BILINEAR)
    return np.asarray(up, dtype=np.float32)


def _box_blur(image: np.ndarray, width: int) -> np.ndarray:
    """Two passes of a box filter (a tent): smooth like a Gaussian, at a cost independent of width."""
    width = max(1, int(width))
    once = ndimage.uniform_filter(image, size=width, mode="nearest")
    return ndimage.uniform_filter(once, size=width, mode="nearest")


def _flatten_paper(gray: np.ndarray) -> np.ndarray:
    """Darkness relative to the local paper: 0 on paper whatever the lighting, up to 1 on ink."""
    smooth = ndimage.gaussian_filter(gray, sigma=0.7)  # tames sensor noise, keeps 1-px lines
    ratio = smooth / np.maximum(_paper_background(smooth), 1e-3)
    ratio = ratio / max(float(np.median(ratio)), 1e-3)  # the paper itself sits at 1
    return np.clip(1.0 - ratio, 0.0, 1.0).astype(np.float32)


def _find_ink(darkness: np.ndarray) -> np.ndarray:
    """Pixels clearly darker than the paper, without isolated specks of dust or noise.

    The threshold sits above the paper's own noise (robustly measured) but low enough that a
    faint pencil line, a few tenths darker than the paper, is kept.
    """
    level = float(np.median(darkness))
    noise = 1.4826 * float(np.median(np.abs(darkness - level)))
    threshold = level + max(6.0 * noise, 0.12)
    ink = darkness > threshold
    labels, count = ndimage.label(ink, structure=np.ones((3, 3)))
    if count:
        min_area = max(3, int(12 * (max(ink.shape) / 1024) ** 2))
        areas = np.bincount(labels.ravel(), minlength=count + 1)
        keep = areas >= min_area
        keep[0] = False
        ink = keep[labels]
    return ink


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
    resample: Image.Resampling = Image.Resampling.LANCZOS,
) -> np.ndarray:
    """The square `box` of `channel` (padded with `fill` where it leaves the image) resized to
    size x size with an antialiasing filter."""
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
    out = src.resize((size, size), resample, box=shifted)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Thinning: every stroke redrawn at the dataset's width.


def _centre_lines(ink: np.ndarray, box: tuple[float, float, float, float], size: int) -> tuple[np.ndarray, float]:
    """The strokes' one-pixel centre lines on a canvas of `_SUPERSAMPLE * size` pixels, and the
    strokes' mean half-width in canvas pixels.

    Skeletonizing brings a 20-px marker and a 1-px pencil to the same centre line; working at
    twice the output size lets the redrawn lines come out antialiased.
    """
    canvas = _resample(ink, box, _SUPERSAMPLE * size, fill=0.0, resample=Image.Resampling.BILINEAR)
    mask = canvas > 0.3  # low: a faint pencil line thinned out by the resize keeps its pixels
    if not mask.any():
        return mask, 0.0
    skeleton = skeletonize(mask)
    half_width = float(mask.sum()) / max(1, int(skeleton.sum())) / 2  # area over length: the width
    if half_width > 2.5:
        # Thick strokes with ragged edges grow spurs when thinned; smoothing the outline first
        # (blur, re-threshold) keeps the centre line clean.
        smooth = ndimage.gaussian_filter(mask.astype(np.float32), sigma=half_width / 2) > 0.5
        skeleton = skeletonize(smooth | _skeleton_safe(mask, smooth))
        skeleton = _prune_spurs(skeleton, int(round(1.5 * half_width)))
    return skeleton, half_width


def _redraw(skeleton: np.ndarray, size: int, width: float) -> np.ndarray:
    """Ink in [0, 1] at size x size: the centre lines drawn `width` output pixels wide."""
    distance = ndimage.distance_transform_edt(~skeleton)
    radius = width * _SUPERSAMPLE / 2.0
    lines = np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.float32)
    small = Image.fromarray(lines, "F").resize((size, size), Image.Resampling.BOX)
    return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)


def _skeleton_safe(mask: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """Fine lines that the smoothing erased (a pencil line beside marker strokes), without the
    ragged rims of the thick strokes, which would grow spurs."""
    disk = _disk(3)
    thick = ndimage.binary_opening(mask, structure=disk)
    near_thick = ndimage.binary_dilation(thick, structure=disk)
    return mask & ~smooth & ~near_thick


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


_RING = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]  # clockwise


def _branch_count(skel: np.ndarray) -> np.ndarray:
    """For every pixel of a padded skeleton, how many separate branches leave it (the crossing
    number: runs of skeleton pixels around its 8-neighbour ring). 1 = an end, 2 = along a line
    (even on a staircase), 3 or more = a junction."""
    h, w = skel.shape
    ring = [np.pad(skel, 1)[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _RING]
    runs = sum((~ring[i - 1]) & ring[i] for i in range(8)).astype(np.int8)
    single = sum(r.astype(np.int8) for r in ring) == 8  # a full ring has no 0->1 transition
    return np.where(skel, np.where(single, 1, runs), 0)


def _prune_spurs(skeleton: np.ndarray, length: int) -> np.ndarray:
    """Remove dead-end branches of at most `length` pixels that stick out of a junction (the
    medial axis of a thick stroke reaches into every corner of its outline).

    Each end is followed along its branch; if a junction comes within `length` steps, the branch
    is a spur and goes. Strokes without a junction (a short dash) are kept whole.
    """
    if length < 1 or not skeleton.any():
        return skeleton
    skel = np.pad(skeleton, 1)
    branches = _branch_count(skel)
    pruned = skel.copy()
    for y, x in zip(*np.nonzero(branches == 1)):
        branch, seen = [(y, x)], {(y, x)}
        while True:
            cy, cx = branch[-1]
            around = [(cy + dy, cx + dx) for dy, dx in _RING]
            following = [p for p in around if skel[p] and p not in seen]
            if not following:
                break  # the far end of a short stroke: not a spur
            if any(branches[p] >= 3 for p in following):
                for py, px in branch:  # a junction next: this was a spur
                    pruned[py, px] = False
                break
            if len(branch) >= length:
                break  # a branch longer than a spur
            seen.update(following)  # a staircase offers two pixels of the same line
            branch.append(following[-1])
    return pruned[1:-1, 1:-1]
