"""Finding the edges2shoes data: an explicit path, $EDGES2SHOES_DATA, an attached Kaggle input, then
a kagglehub download.

A dataset root is a folder with `train/` and `val/` of A|B images (the Berkeley tarball's
`edges2shoes/`). Kaggle mounts attached data under /kaggle/input at a name of its choosing, so the
root is searched for, never assumed. The download is pinned to a dataset version because an
unversioned kagglehub handle asks the API for the latest version even when the files are cached,
and so fails offline; kagglehub is imported only when a download is needed.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable

from ..util.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")

KAGGLE_HANDLE = "balraj98/edges2shoes-dataset/versions/1"  # pinned: works offline once cached
KAGGLE_INPUT = Path("/kaggle/input")
ENV_VAR = "EDGES2SHOES_DATA"

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


# --------------------------------------------------------------------------------------------------
# Dataset roots.


def is_dataset_root(folder: Path, need_both: bool = True) -> bool:
    """A folder with `train/` and `val/` of images (or either one when `need_both` is False)."""
    found = [_has_images(folder / split) for split in ("train", "val")]
    return all(found) if need_both else any(found)


def find_dataset_root(search_root: Path, max_depth: int = 4) -> Path | None:
    """The first folder under `search_root` (breadth first, sorted, names with "edges2shoes" or
    "shoe" preferred) that has train/ and val/ of images; None if there is none."""
    if not search_root.is_dir():
        return None
    if is_dataset_root(search_root):
        return search_root
    level = [search_root]
    for _ in range(max_depth):
        children: list[Path] = []
        for folder in level:
            try:
                with os.scandir(folder) as entries:
                    subdirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")
                               and e.name not in SPLITS]
            except OSError:
                continue
            children.extend(sorted(subdirs, key=lambda p: numeric_key(p.name)))
        matches = [c for c in children if is_dataset_root(c)]
        if matches:
            preferred = [m for m in matches if "shoe" in str(m.relative_to(search_root)).lower()]
            return (preferred or matches)[0]
        level = children
    return None


def _kagglehub_download(handle: str) -> str:
    """Download (or reuse the cached copy of) a Kaggle dataset."""
    import kagglehub  # lazy: optional dependency, needed only to download

    return kagglehub.dataset_download(handle)


def _explicit(path: Path, what: str) -> Path:
    """Check a user-given dataset folder; accept its parent or a nested download folder too."""
    path = path.expanduser()
    if not path.is_dir():
        raise DataError(f"{what} {path} is not a folder; it should hold train/ and val/ of A|B images")
    if is_dataset_root(path, need_both=False):
        return path
    nested = find_dataset_root(path, max_depth=3)
    if nested is not None:
        return nested
    raise DataError(f"{what} {path} has no train/ or val/ folder of images (A|B JPEGs, edges left)")


def resolve_dataset_root(
    path: str | os.PathLike | None = None,
    *,
    downloader: Callable[[str], str | os.PathLike] | None = None,
    kaggle_input: str | os.PathLike | None = None,
    handle: str = KAGGLE_HANDLE,
) -> Path:
    """Where the edges2shoes data is, in this order:

    1. `path`, when given;
    2. the environment variable EDGES2SHOES_DATA;
    3. inside Kaggle, an attached input under /kaggle/input (`kaggle_input` for tests) that has
       train/ and val/ of images (searched for, not assumed at a fixed name);
    4. `kagglehub.dataset_download(handle)` (pinned version, cached; `downloader` replaces it).

    Raises one DataError saying what to do when none of these works.
    """
    if path is not None:
        return _explicit(Path(path), "dataset folder")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _explicit(Path(env), f"{ENV_VAR}=")
    search = Path(kaggle_input) if kaggle_input is not None else KAGGLE_INPUT
    found = find_dataset_root(search)
    if found is not None:
        log.info("using the Kaggle input %s", found)
        return found
    download = downloader or _kagglehub_download
    try:
        downloaded = Path(download(handle))
    except (Exception, SystemExit) as error:  # kaggle tools may even call sys.exit without credentials
        reason = f"{type(error).__name__}: {error}"
        raise DataError(_NOT_FOUND.format(handle=handle, env=ENV_VAR, reason=reason)) from None
    found = find_dataset_root(downloaded) if downloaded.is_dir() else None
    if found is None:
        raise DataError(f"the download of {handle} at {downloaded} has no train/ and val/ folders of images")
    return found


_NOT_FOUND = """no edges2shoes data found, and downloading {handle} failed ({reason}).
Do one of these:
  - on Kaggle: Add Data -> search "edges2shoes" (balraj98/edges2shoes-dataset) and attach it;
  - point to a copy on disk: pass the folder (e.g. --data DIR) or set {env}=DIR
    (DIR holds train/ and val/ of A|B JPEGs, edges on the left);
  - log in to Kaggle so it can be downloaded (about 2 GB): kagglehub.login(), or put kaggle.json
    in ~/.kaggle/, or set KAGGLE_USERNAME and KAGGLE_KEY;
  - or try everything offline on a synthetic set:
    python -m edges2shoes_utils make-synthetic --out data/synthetic --n 256"""


__all__ = [
    "resolve_dataset_root",
    "find_dataset_root",
    "is_dataset_root",
    "list_images",
    "numeric_key",
    "IMAGE_SUFFIXES",
    "KAGGLE_HANDLE",
    "ENV_VAR",
]
