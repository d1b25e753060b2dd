"""Image files in a folder and the dataset-root test: what `PairsDataset` reads (ROOT/train and
ROOT/val of A|B images), shared by discovery, the official download and the dataset itself."""

from __future__ import annotations

import os
import re
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


# --------------------------------------------------------------------------------------------------
# Image files in a folder.


def numeric_key(name: str) -> tuple:
    """Sort key that orders `2_AB.jpg` before `10_AB.jpg` (runs of digits compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p) + ((2, 0, name),)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder` (hidden files skipped), in numeric-aware order."""
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if _is_image_name(e.name) and e.is_file()]
    return [folder / name for name in sorted(names, key=numeric_key)]


def _has_images(folder: Path) -> bool:
    """True if `folder` holds at least one image file (stops at the first: folders can be huge)."""
    try:
        with os.scandir(folder) as entries:
            return any(_is_image_name(e.name) for e in entries)
    except OSError:
        return False


def is_dataset_root(folder: Path, need_both: bool = True) -> bool:
    """A folder with `train/` and `val/` of images (or either one when `need_both` is False)."""
    found = [_has_images(folder / split) for split in ("train", "val")]
    return all(found) if need_both else any(found)


__all__ = ["IMAGE_SUFFIXES", "numeric_key", "list_images", "is_dataset_root"]
