"""The image filters of the sketch clean-up (`sketch.py`), from OpenCV when it is installed and from
scipy otherwise.

OpenCV (`opencv-python-headless`, a declared dependency) runs them several times faster, which is
what makes the clean-up fast enough to redraw while a person draws. scipy serves where nothing can
be installed (the GPU machine's bare Python has scipy but no OpenCV): slower, same results. OpenCV
is asked for scipy.ndimage's conventions (a 4-sigma Gaussian, mirrored or repeated edges, a zero
border for binary morphology), so both give the same pictures; tests compare them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

try:
    import cv2
except ImportError:  # the scipy versions below serve
    cv2 = None


def backend() -> str:
    """Which library runs the filters: "opencv" or "scipy"."""
    return "scipy" if cv2 is None else "opencv"


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur with scipy.ndimage's defaults: a kernel reaching 4 sigma, mirrored edges."""
    if cv2 is None:
        return ndimage.gaussian_filter(image, sigma)
    side = 2 * int(4.0 * sigma + 0.5) + 1
    return cv2.GaussianBlur(image, (side, side), sigma, borderType=cv2.BORDER_REFLECT)


def box_blur(image: np.ndarray, width: int) -> np.ndarray:
    """Two passes of a `width`-wide box filter (a tent), edges repeated."""
    width = max(1, int(width))
    if cv2 is None:
        once = ndimage.uniform_filter(image, size=width, mode="nearest")
        return ndimage.uniform_filter(once, size=width, mode="nearest")
    once = cv2.blur(image, (width, width), borderType=cv2.BORDER_REPLICATE)
    return cv2.blur(once, (width, width), borderType=cv2.BORDER_REPLICATE)


def closing(image: np.ndarray, width: int) -> np.ndarray:
    """Grey-level closing (a maximum then a minimum filter) over a `width` x `width` square."""
    if cv2 is None:
        return ndimage.grey_closing(image, size=(width, width))
    return cv2.morphologyEx(image, cv2.MORPH_CLOSE, np.ones((width, width), np.uint8))


def enlarge(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float32 image enlarged to `shape` (rows, columns) by bilinear interpolation: a new,
    writable array."""
    if cv2 is None:
        big = Image.fromarray(image.astype(np.float32), "F").resize(shape[::-1], Image.Resampling.BILINEAR)
        return np.array(big, dtype=np.float32)
    return cv2.resize(image, shape[::-1], interpolation=cv2.INTER_LINEAR)


def drop_small_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    """The mask without its 8-connected components of fewer than `min_area` pixels."""
    if cv2 is None:
        labels = ndimage.label(mask, structure=np.ones((3, 3)))[0]
    else:
        labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[1]
    inked = labels[mask]  # only the ink's pixels: a drawing is mostly paper
    keep = np.bincount(inked) >= min_area  # by component; the background (0) has no inked pixels
    if keep[1:].all():
        return mask
    kept = mask.copy()
    kept[mask] = keep[inked]
    return kept


def opening(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary opening of a boolean mask by a boolean structuring element (outside counts as empty)."""
    if cv2 is None:
        return ndimage.binary_opening(mask, structure=structure)
    element = structure.view(np.uint8)
    return cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, element,
                            borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)


def dilation(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary dilation of a boolean mask by a symmetric boolean structuring element."""
    if cv2 is None:
        return ndimage.binary_dilation(mask, structure=structure)
    return cv2.dilate(mask.view(np.uint8), structure.view(np.uint8)).view(bool)
