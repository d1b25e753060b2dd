"""edges2shoes pairs: reading A|B images and the paper's jitter.

The edges2shoes set (Isola et al. 2017, arXiv 1611.07004) stores each training pair as one JPEG of
two squares side by side, the edge map on the LEFT and the photo on the RIGHT (`ROOT/train/1_AB.jpg`
... 49,825 files, `ROOT/val/` 200 files, 512x256 each). Direction AtoB (edges -> photo) is the task;
BtoA is available.

Training uses the paper's random jitter, applied identically to both halves: resize to 286, random
crop to 256, random horizontal flip (286/256 scale with the image size). The resize is bilinear,
as in the paper's Torch code. Evaluation only resizes to the model size.

A bad file (unreadable, truncated, not 2:1, or implausibly large) raises a DataError naming the
file and the reason; in a batched fetch it comes back as a `Skipped` record, which the loader
(`loader.py`) skips or stops on. Images in other modes (grayscale, CMYK, palette, RGBA, 16-bit) are
converted to RGB.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..util.errors import DataError, Skipped
from .discovery import list_images

LOAD_SIZE_RATIO = 286 / 256  # the paper's jitter: resize to 286, crop 256
MAX_PAIR_PIXELS = 8192 * 4096  # larger headers are treated as decompression bombs, never decoded

# --------------------------------------------------------------------------------------------------
# Reading one A|B image: every failure becomes a DataError naming the file and the reason.


def jitter_load_size(image_size: int) -> int:
    """The resize target before the random crop: 286 for 256, scaled for other sizes."""
    return int(round(image_size * LOAD_SIZE_RATIO))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: transparency over white (the dataset's background), 16- and
    32-bit values scaled down rather than clipped, CMYK and palettes converted."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(path: Path, target: int | None) -> Image.Image:
    """The decoding itself; `load_pair_image` turns its exceptions into DataErrors."""
    image: Image.Image | None = None
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
        width, height = image.size
        if width * height > MAX_PAIR_PIXELS:
            raise DataError(f"{path}: {width}x{height} pixels is implausibly large for an A|B pair "
                            f"(limit {MAX_PAIR_PIXELS:,}); refusing to decode a possible decompression bomb")
        if width != 2 * height:
            raise DataError(f"{path}: {width}x{height} is not an A|B pair (expected width = 2 x height)")
        if target is not None and image.format == "JPEG" and image.mode in ("RGB", "L", "CMYK"):
            image.draft(image.mode, (2 * target, target))
        image.load()  # reads everything and closes the file
        return to_rgb(image)
    except BaseException:
        if image is not None:
            image.close()
        raise


def load_pair_image(path: Path, target: int | None = None) -> Image.Image:
    """Open and decode one A|B file as RGB, checking it is a 2:1 pair of sane size.

    `target` is the side the halves will be resized to; for JPEGs the decoder may then skip
    detail (draft mode: DCT scaling by 1/2, 1/4 or 1/8), which is much faster for small models.
    Raises DataError("path: reason") for any file that cannot be used.
    """
    try:
        return _decode(path, target)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{path}: refusing to decode a possible decompression bomb ({error})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image (unrecognised file format)") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file disappeared while reading") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
        raise DataError(f"{path}: corrupt or truncated image ({error})") from None


# --------------------------------------------------------------------------------------------------
# The dataset.


class PairsDataset(Dataset):
    """edges2shoes A|B pairs from `root/split/`, as (input, target) float tensors (3, S, S) in [-1, 1].

    With direction "AtoB" (the default) input = edges (LEFT half), target = photo (RIGHT half);
    "BtoA" swaps them. `jitter` (default: on for train, off otherwise) applies the paper's random
    resize-crop-flip identically to both halves; without it the halves are just resized to
    `image_size`. Random numbers come from torch's global generator, which DataLoader seeds per
    worker, so runs are reproducible under `torch.manual_seed`.

    `dataset[i]` raises DataError for a bad file; the loader from `make_dataloader` skips it
    instead (unless `strict`). A missing or empty split raises DataError at once.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        image_size: int = 256,
        jitter: bool | None = None,
        direction: str = "AtoB",
        strict: bool = False,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}")
        if image_size < 8:
            raise DataError(f"image_size must be at least 8 pixels, got {image_size}")
        self.root = Path(root)
        self.split = split
        self.folder = self.root / split
        self.image_size = int(image_size)
        self.jitter = (split == "train") if jitter is None else bool(jitter)
        self.load_size = jitter_load_size(self.image_size) if self.jitter else self.image_size
        self.direction = direction
        self.strict = strict
        if not self.folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
            hint = f" (it has: {', '.join(found)})" if found else ""
            raise DataError(f"no {split!r} split: {self.folder} is not a folder{hint}")
        self.files = list_images(self.folder)
        if not self.files:
            raise DataError(f"the {split!r} split is empty: no image files in {self.folder}")

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return (f"PairsDataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, "
                f"image_size={self.image_size}, jitter={self.jitter}, direction={self.direction!r})")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[index]
        image = load_pair_image(path, self.load_size)
        left, right = self._halves(image)
        return (left, right) if self.direction == "AtoB" else (right, left)

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """The DataLoader's batched fetch: bad files come back as `Skipped` markers, not exceptions,
        so one unreadable JPEG costs one sample, not the epoch (the loader decides what to do)."""
        items: list[Any] = []
        for index in indices:
            try:
                items.append(self[index])
            except DataError as error:
                items.append(Skipped(str(self.files[index]), str(error)))
        return items

    def _halves(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """Split, resize (with the jitter: random crop window and flip shared by both halves) and
        convert to tensors in [-1, 1]."""
        width = image.width
        side = min(image.height, width // 2)  # draft decoding may round an odd width up by one
        size, load = self.image_size, self.load_size
        boxes = [(0, 0, side, side), (width - side, 0, width, side)]
        flip = False
        if self.jitter:
            # resizing side -> load and cropping size x size at (x, y) is the same as resizing only
            # the source window that maps onto the crop: one resize per half, no wasted pixels
            x, y = (int(v) for v in torch.randint(0, load - size + 1, (2,)))
            flip = bool(torch.rand(()) < 0.5)
            scale = side / load
            window = (x * scale, y * scale, (x + size) * scale, (y + size) * scale)
            halves = [image.crop(box).resize((size, size), Image.Resampling.BILINEAR, box=window)
                      for box in boxes]
        elif side == size:
            halves = [image.crop(box) for box in boxes]
        else:
            halves = [image.crop(box).resize((size, size), Image.Resampling.BILINEAR) for box in boxes]
        pixels = np.stack([np.asarray(h) for h in halves])  # (2, S, S, 3) uint8
        tensor = torch.from_numpy(pixels).permute(0, 3, 1, 2)
        if flip:
            tensor = tensor.flip(3)
        tensor = tensor.float().div_(127.5).sub_(1.0)
        return tensor[0], tensor[1]


__all__ = ["PairsDataset", "load_pair_image", "to_rgb", "jitter_load_size", "LOAD_SIZE_RATIO", "MAX_PAIR_PIXELS"]
