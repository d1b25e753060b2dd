"""Thinning: every stroke of a drawing redrawn at the edges2shoes dataset's line width.

`sketch.prepare_sketch` finds the ink; this module turns it into one-pixel centre lines on a canvas
at twice the output size (skeletonize, after smoothing thick strokes and pruning the spurs their
ragged outlines grow) and draws them back, antialiased, at the width the dataset's HED edges have.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image
from skimage.morphology import skeletonize

from .filters import dilation, gaussian, opening

Box = tuple[float, float, float, float]  # left, top, right, bottom in working pixels
_SUPERSAMPLE = 2  # thinning and redrawing happen at this multiple of the output size
_THICK = 2.5  # half-width (canvas pixels) above which strokes are smoothed before thinning


def centre_lines(ink: np.ndarray, box: Box, size: int,
                 reframe: Callable[[float], Box] | None) -> tuple[Box, np.ndarray]:
    """The framing box and the strokes' one-pixel centre lines on a canvas of `_SUPERSAMPLE * size`
    pixels.

    Skeletonizing brings a 20-px marker and a 1-px pencil to the same centre line; working at
    twice the output size lets the redrawn lines come out antialiased. With `reframe` (the crop
    step: the framing box of the ink shrunk by an inset in working pixels), thick strokes are
    framed by their centre lines: the outline of a thick stroke reaches half its width beyond the
    centre line that is redrawn.
    """
    mask = _canvas_mask(ink, box, size)
    skeleton = _skeletonize(mask)
    half_width = _half_width(mask, skeleton)
    if reframe is not None and half_width > 1.5:
        framed = reframe(half_width * (box[2] - box[0]) / (_SUPERSAMPLE * size))
        mask = _canvas_mask(ink, framed, size)
        # The tighter frame enlarges the strokes by the ratio of the sides. Strokes clearly thick
        # before stay so: they are thinned from the smoothed mask below, and a plain thinning of
        # this mask only to measure them again would be wasted.
        half_width *= (box[2] - box[0]) / (framed[2] - framed[0])
        box = framed
        if half_width < 1.1 * _THICK:
            skeleton = _skeletonize(mask)
            half_width = _half_width(mask, skeleton)
    if half_width > _THICK:
        # Thick strokes with ragged edges grow spurs when thinned; smoothing the outline first
        # (blur, re-threshold) keeps the centre line clean.
        smooth = gaussian(mask.astype(np.float32), half_width / 2) > 0.5
        skeleton = _skeletonize(smooth | _skeleton_safe(mask, smooth))
        skeleton = _prune_spurs(skeleton, int(round(1.5 * half_width)))
    return box, skeleton


def _canvas_mask(ink: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The ink inside `box` (zero beyond the picture) on the thinning canvas, resized with PIL's
    bilinear filter (antialiased when reducing), worked out only for the canvas pixels whose filter reaches the ink (a drawing is
    mostly paper). The threshold is low: a faint pencil line thinned out by the resize keeps its
    pixels."""
    n = _SUPERSAMPLE * size
    mask = np.zeros((n, n), bool)
    inked = _bounding_slice(ink)
    if inked is None:
        return mask
    left, top, right, _ = box
    scale = (right - left) / n
    reach = max(1.0, scale) + 1.0  # the filter's half-width in working pixels, and one to spare
    (y0, y1), (x0, x1) = (_reached(span, start, scale, reach, n) for span, start in zip(inked, (top, left)))
    if y0 >= y1 or x0 >= x1:
        return mask
    # The working pixels those canvas pixels read (zero beyond the picture), and their box in it.
    sy, sx = int(np.floor(top + y0 * scale - reach)), int(np.floor(left + x0 * scale - reach))
    region = _crop(ink, sy, int(np.ceil(top + y1 * scale + reach)), sx, int(np.ceil(left + x1 * scale + reach)))
    inside = (left + x0 * scale - sx, top + y0 * scale - sy, left + x1 * scale - sx, top + y1 * scale - sy)
    values = Image.fromarray(region, "F").resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=inside)
    mask[y0:y1, x0:x1] = np.asarray(values, dtype=np.float32) > 0.3
    return mask


def _reached(span: slice, start: float, scale: float, reach: float, n: int) -> tuple[int, int]:
    """The canvas pixels [first, last) along one axis whose filter, reaching `reach` working pixels
    around their centre, touches the working pixels in `span` (the canvas starts at `start`)."""
    first = int(np.floor((span.start - reach - start) / scale))
    last = int(np.ceil((span.stop + reach - start) / scale))
    return max(0, first), min(n, last)


def _crop(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """image[top:bottom, left:right] as float32, zero where the window leaves the image."""
    out = np.zeros((bottom - top, right - left), np.float32)
    h, w = image.shape
    t, b, l, r = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
    if t < b and l < r:
        out[t - top : b - top, l - left : r - left] = image[t:b, l:r]
    return out


def _half_width(mask: np.ndarray, skeleton: np.ndarray) -> float:
    """The strokes' mean half-width in canvas pixels: area over length, halved."""
    return float(np.count_nonzero(mask)) / max(1, int(np.count_nonzero(skeleton))) / 2


def _skeletonize(mask: np.ndarray) -> np.ndarray:
    """skimage's skeletonize, run only on the mask's bounding box (a drawing is mostly paper)."""
    skeleton = np.zeros_like(mask, dtype=bool)
    inside = _bounding_slice(mask)
    if inside is not None:
        skeleton[inside] = skeletonize(mask[inside])
    return skeleton


def _bounding_slice(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The mask's bounding box, or None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def redraw(skeleton: np.ndarray, size: int, width: float) -> np.ndarray:
    """Ink in [0, 1] at size x size: the centre lines drawn `width` output pixels wide, antialiased.

    A canvas pixel whose centre lies d pixels from the nearest centre-line pixel gets ink
    clip(width_on_canvas / 2 + 0.5 - d, 0, 1). Only a few distances between pixel centres come
    within reach, so a dilation per distance draws it exactly.
    """
    reach = width * _SUPERSAMPLE / 2.0 + 0.5
    lines = np.zeros(skeleton.shape, np.float32)
    for distance, disk in _distance_levels(reach):  # farthest first: nearer (darker) ink overwrites
        lines[dilation(skeleton, disk)] = min(1.0, reach - distance)
    small = Image.fromarray(lines, "F").resize((size, size), Image.Resampling.BOX)
    return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)


def _distance_levels(reach: float) -> list[tuple[float, np.ndarray]]:
    """The distances d < reach between pixel centres, farthest first, each with the disk of pixels
    within d."""
    r = int(np.ceil(reach))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    distances = np.hypot(y, x)
    within = sorted({float(d) for d in distances.ravel() if d < reach})
    return [(d, distances <= d) for d in reversed(within)]


def _skeleton_safe(mask: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """Fine lines that the smoothing erased (a pencil line beside marker strokes), without the
    ragged rims of the thick strokes, which would grow spurs."""
    disk = _disk(3)
    near_thick = dilation(opening(mask, disk), disk)
    return mask & ~smooth & ~near_thick


def _disk(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


_RING = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]  # clockwise


def _crossing_numbers() -> np.ndarray:
    """For each 8-bit ring code (bit i = neighbour _RING[i]), the runs of set bits around the ring;
    a full ring counts 1."""
    codes = np.arange(256)
    bits = [(codes >> i) & 1 for i in range(8)]
    runs = sum((1 - bits[i - 1]) & bits[i] for i in range(8))
    return np.where(codes == 255, 1, runs).astype(np.uint8)


_CROSSINGS = _crossing_numbers()


def _branch_count(skel: np.ndarray) -> np.ndarray:
    """For every pixel of a padded skeleton (nothing on its border), how many separate branches
    leave it (the crossing number: runs of skeleton pixels around its 8-neighbour ring). 1 = an
    end, 2 = along a line (even on a staircase), 3 or more = a junction."""
    code = np.zeros(skel.shape, np.uint8)  # bit i: neighbour _RING[i] is on the skeleton
    for bit, (dy, dx) in enumerate(_RING):
        code |= np.roll(skel, (-dy, -dx), (0, 1)).view(np.uint8) << bit
    return np.where(skel, _CROSSINGS[code], 0).astype(np.uint8)


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
