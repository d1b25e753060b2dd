"""Edge maps found in a photo, the way edges2shoes found them: an edge detector, then clean-up.

The real set's edge maps came from HED run on the product photos and were cleaned up into thin dark
lines on white; this is a fast classical stand-in with the same habits (outlines and strong seams
survive, faint detail drops out), computed from the pixels, never from the drawing's geometry."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage



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
