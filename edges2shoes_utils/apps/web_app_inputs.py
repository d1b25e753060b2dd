"""What the web app accepts: uploads checked before they are decoded, and the drawing canvas.

A web server meets files a notebook user never hands in: empty ones, text renamed to .jpg, a PNG
cut off mid-transfer, a 20,000 x 20,000 picture that would take 1.2 GB to decode, a 1x1 pixel. Each
is refused with a `SketchError` that names the file and the problem, here or where the picture is
read (`inference.load_image`); sizes come from the image header, so a huge picture is refused
before a single pixel is decoded. Nothing here imports gradio: the checks are plain functions,
tested directly.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..inference import SUPPORTED_FORMATS
from ..util.errors import SketchError


@dataclass(frozen=True)
class UploadLimits:
    """The largest and smallest uploads the app takes.

    20 MB admits the JPEG of any phone photo of a drawing and of a 600 dpi A4 scan. The shortest
    side of 16 pixels is where a drawing stops holding a recognisable shoe. Pixel counts are
    limited where every picture is read (`inference.image_input.MAX_SKETCH_PIXELS`, from the
    header, before decoding), so the app and the command line refuse the same pictures."""

    max_bytes: int = 20 * 1024 * 1024
    min_side: int = 16

    @property
    def gradio_max_file_size(self) -> str:
        """The same byte limit in gradio's `launch(max_file_size=...)` spelling."""
        return f"{self.max_bytes // 1024}kb"


DEFAULT_LIMITS = UploadLimits()


def check_upload(path: str | os.PathLike, name: str | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Path:
    """The upload at `path`, after checking its size on disk and its header: returns the path, or
    raises a SketchError naming `name` (the file's name as the person knows it) and the problem.
    Problems past the header (a truncated file, too many pixels) are found when it is read, by
    `inference.load_image`, and are SketchErrors too."""
    path = Path(path)
    label = name or path.name
    if not path.is_file():
        raise SketchError(f"{label}: the upload did not arrive (no file).")
    size = path.stat().st_size
    if size == 0:
        raise SketchError(f"{label}: the file is empty.")
    if size > limits.max_bytes:
        raise SketchError(f"{label}: the file is {size / 2**20:.1f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB.")
    width, height = _header_size(path, label)
    if min(width, height) < limits.min_side:
        raise SketchError(f"{label}: the image is only {width} x {height} pixels; a drawing needs at least "
                          f"{limits.min_side} pixels on each side.")
    return path


def _header_size(path: Path, label: str) -> tuple[int, int]:
    """(width, height) from the image header; `Image.open` reads no pixel data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # load_image's limit decides
            with Image.open(path) as image:
                return image.size
    except Image.DecompressionBombError:
        raise SketchError(f"{label}: the image is too large to open (its header claims more than "
                          f"{2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels); scale it down.") from None
    except UnidentifiedImageError:
        raise SketchError(f"{label}: not an image file ({SUPPORTED_FORMATS} expected).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise SketchError(f"{label}: cannot read it as an image ({SUPPORTED_FORMATS} expected): {error}") from None


# --------------------------------------------------------------------------------------------------
# The canvas.


def drawing_from_canvas(value: Mapping[str, Any] | np.ndarray | None) -> np.ndarray | None:
    """The picture on the canvas (HxWx3 uint8, strokes over any background), or None when nothing
    is on it. `value` is what gradio's ImageEditor hands over (a dict with background, layers and
    the composite of both) or a plain array."""
    if value is None:
        return None
    composite = value.get("composite") if isinstance(value, Mapping) else value
    if composite is None:
        return None
    array = np.asarray(composite)
    if array.ndim == 3 and array.shape[2] == 4:  # transparent canvas: composite on white paper
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3] * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    if array.size == 0 or int(array.min()) == int(array.max()):
        return None  # one colour everywhere: a blank canvas
    return array


def fit_on_canvas(image: Image.Image, size: int) -> Image.Image:
    """`image` scaled (up or down) to fit a white `size` x `size` canvas, centred: an upload shown
    on the canvas so that the person can draw over it or erase parts of it."""
    fitted = ImageOps.contain(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (size, size), "white")
    canvas.paste(fitted, ((size - fitted.width) // 2, (size - fitted.height) // 2))
    return canvas
