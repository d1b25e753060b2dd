"""Every kind of picture a person hands in, read as an RGB image on white paper.

Paths, file bytes (an upload), PIL images and arrays are accepted; a GIF or animated WebP gives its
first frame, EXIF orientation is applied and transparency composited on white. Anything that cannot
be read, or whose header claims more pixels than a sketch plausibly has (`MAX_SKETCH_PIXELS`),
raises a SketchError that names the file and says what was expected.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..util.errors import SketchError

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

SUPPORTED_FORMATS = "JPEG, PNG, WebP, BMP or GIF"
# Larger headers are refused before decoding: a few-kilobyte GIF or PNG can claim 65535 x 1200
# pixels and cost gigabytes and seconds to decode. A 24-megapixel photo fits; a bigger JPEG is
# decoded at a reduced scale (draft mode) to fit.
MAX_SKETCH_PIXELS = 6000 * 4000


def describe_image_source(image: Any) -> str:
    """How error messages name an input: its path, the file a PIL image was opened from, or
    "the sketch" for bytes, arrays and tensors."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    filename = getattr(image, "filename", "")
    return str(filename) if filename else "the sketch"


def load_image(image: ImageInput, label: str | None = None, *, max_side: int | None = None,
               gray: bool = False) -> Image.Image:
    """Any supported input as an RGB PIL image: first frame, EXIF orientation applied, transparency
    composited on white. Errors are SketchErrors naming `label` (the file). No clean-up.

    `gray` gives luminance ("L") instead, for callers that keep nothing else (the sketch clean-up):
    a colour JPEG then decodes its luminance only, and a gray file is never widened to RGB and back.
    """
    label = label or describe_image_source(image)
    if isinstance(image, np.ndarray):
        pil = _array_to_pil(image, label)
    elif isinstance(image, Image.Image):
        pil = image
    else:
        pil = _open(image, label, max_side, "L" if gray else "RGB")
    try:
        pil.seek(0)  # first frame of a GIF / animated WebP
    except (AttributeError, EOFError, ValueError):
        pass
    try:
        pil = ImageOps.exif_transpose(pil) or pil
        return _on_white(pil, "L" if gray else "RGB")
    except (OSError, ValueError, SyntaxError) as error:
        raise SketchError(f"{label}: cannot read the image ({error}).") from error


def _open(source: Any, label: str, max_side: int | None, mode: str) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise SketchError(f"{label}: the file is empty.")
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise SketchError(f"{path}: no such file.")
        stream = path
    else:
        raise SketchError(f"{label}: expected a path, bytes, a PIL image or an array, got {type(source).__name__}.")
    try:
        pil = Image.open(stream)
        if pil.format == "JPEG":
            _draft_jpeg(pil, max_side, mode)
        width, height = pil.size  # what the header claims: nothing is decoded yet
        if width * height > MAX_SKETCH_PIXELS:
            pil.close()
            raise SketchError(f"{label}: {width}x{height} pixels is more than a sketch needs (limit "
                              f"{MAX_SKETCH_PIXELS:,} pixels); scale it down, or save it as a JPEG.")
        pil.load()
    except UnidentifiedImageError:
        raise SketchError(f"{label}: not an image file ({SUPPORTED_FORMATS} expected).") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise SketchError(f"{label}: cannot read it as an image ({SUPPORTED_FORMATS} expected): {error}") from error
    return pil


def _draft_jpeg(pil: Image.Image, max_side: int | None, mode: str) -> None:
    """Let a big JPEG decode at 1/2, 1/4 or 1/8 scale: down towards `max_side`, and always far
    enough to fit MAX_SKETCH_PIXELS (a 100-megapixel photo is then read at 1/2 or 1/4). For mode
    "L" a colour JPEG decodes its luminance channel only."""
    width, height = pil.size
    reduce = 1
    while reduce < 8 and -(-width // reduce) * -(-height // reduce) > MAX_SKETCH_PIXELS:  # decoded sides round up
        reduce *= 2
    wanted = (max(1, width // reduce), max(1, height // reduce))  # draft keeps at least this size
    if max_side and max(width, height) > max_side:  # down to the longest side max_side, no further
        fit = max_side / max(width, height)
        wanted = (min(wanted[0], max(1, math.ceil(width * fit))), min(wanted[1], max(1, math.ceil(height * fit))))
    if wanted != (width, height) or mode == "L":
        pil.draft(mode, wanted)  # once only: PIL ignores a second call


def _array_to_pil(array: np.ndarray, label: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or min(a.shape[:2]) < 1:
        raise SketchError(f"{label}: an array sketch must be HxW, HxWx3 or HxWx4, got shape {a.shape}.")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise SketchError(f"{label}: the array holds NaN or infinite values.")
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        a = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        top = 65535 if a.max(initial=0) > 255 else 255
        a = (np.clip(a, 0, top).astype(np.float64) * (255.0 / top)).round().astype(np.uint8)
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(a), mode)


def _on_white(pil: Image.Image, mode: str = "RGB") -> Image.Image:
    """`mode` ("RGB" or "L"), with any transparency composited on white paper."""
    has_alpha = pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info)
    if has_alpha or pil.mode in ("La", "RGBa"):
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert(mode)
    if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        return Image.fromarray((np.clip(a / top, 0, 1) * 255).round().astype(np.uint8), "L").convert(mode)
    if pil.mode == "F":
        a = np.asarray(pil, dtype=np.float64)
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a
        return Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L").convert(mode)
    if pil.mode not in ("L", "RGB"):
        pil = pil.convert("RGB")  # CMYK, YCbCr, palettes...: PIL's own route to RGB, as before
    return pil if pil.mode == mode else pil.convert(mode)


def rescale(pil: Image.Image, *, max_side: int, min_side: int) -> Image.Image:
    """The image with its longest side brought into [min_side, max_side]: reduced with an
    antialiasing filter, or enlarged with a bicubic one; unchanged when already in range."""
    longest = max(pil.size)
    target = min(max(longest, min_side), max(max_side, min_side))
    if target == longest:
        return pil
    scale = target / longest
    new_size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    if scale < 1:
        factor = int(1 / scale)
        if factor >= 2:  # cheap integer box reduction first, then a precise antialiased resize
            pil = pil.reduce(factor)
        return pil.resize(new_size, Image.Resampling.LANCZOS) if pil.size != new_size else pil
    return pil.resize(new_size, Image.Resampling.BICUBIC)
