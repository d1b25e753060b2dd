"""Finding the edges2shoes data: an explicit path, $EDGES2SHOES_DATA, an attached Kaggle input, a
kagglehub download, then, only when asked for, the official Berkeley tarball (`data.official`).

A dataset root is a folder with `train/` and `val/` of A|B images (the Berkeley tarball's
`edges2shoes/`). Kaggle mounts attached data under /kaggle/input at a name of its choosing, so the
root is searched for, never assumed. The download is pinned to a dataset version because an
unversioned kagglehub handle asks the API for the latest version even when the files are cached,
and so fails offline; kagglehub is imported only when a download is needed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from ..util import kaggle
from ..util.errors import DataError
from .files import IMAGE_SUFFIXES, is_dataset_root, list_images, numeric_key
from .official import fetch_official_dataset

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

KAGGLE_HANDLE = "balraj98/edges2shoes-dataset/versions/1"  # pinned: works offline once cached
KAGGLE_INPUT = Path("/kaggle/input")
ENV_VAR = "EDGES2SHOES_DATA"

# --------------------------------------------------------------------------------------------------
# Dataset roots.


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
    download_official: bool = False,
    official_dir: str | os.PathLike | None = None,
) -> Path:
    """Where the edges2shoes data is, in this order:

    1. `path`, when given;
    2. the environment variable EDGES2SHOES_DATA;
    3. inside Kaggle, an attached input under /kaggle/input (`kaggle_input` for tests) that has
       train/ and val/ of images (searched for, not assumed at a fixed name);
    4. `kagglehub.dataset_download(handle)` (pinned version, cached; `downloader` replaces it);
    5. only with `download_official=True`: the official tarball (`data.official.fetch_official_dataset`,
       about 2.2 GB) unpacked into `official_dir` (default `data.official.default_dataset_dir()`),
       or the copy an earlier fetch left there.

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
    try:
        download = downloader or kaggle.downloader("dataset", "downloading the edges2shoes data", DataError)
        downloaded = Path(download(handle))
    except (Exception, SystemExit) as error:  # kaggle tools may even call sys.exit without credentials
        reason = f"{type(error).__name__}: {error}"
        if not download_official:
            raise DataError(_NOT_FOUND.format(handle=handle, env=ENV_VAR, reason=reason)) from None
        try:
            return fetch_official_dataset(official_dir)
        except DataError as official_error:
            raise DataError(_NOT_FOUND.format(handle=handle, env=ENV_VAR, reason=reason)
                            + f"\nThe official download failed too: {official_error}") from None
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
  - or download the official tarball (about 2.2 GB, no login): edges2shoes data fetch official
    (or resolve_dataset_root(download_official=True)), then pass the folder it prints;
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
