"""The edges2shoes dataset from its official source: the tarball the pix2pix authors (Isola et al.
2017, arXiv 1611.07004) serve from Berkeley, the one their `datasets/download_pix2pix_dataset.sh`
fetches; no login needed.

About 2.2 GB: `edges2shoes/train/*.jpg` and `edges2shoes/val/*.jpg` (200), each an A|B pair
(edges left, photo right) named like `1_AB.jpg`. The download resumes where an interrupted one
stopped (`util.download`, `resume=True`), its sha256 is recorded at the first download and checked
after (the rule the weights follow), the free space is checked before anything is written, and the
archive is unpacked member by member with path, link and device checks (`data.archive`) into a
staging folder that becomes the dataset by one rename, so no half dataset is ever left.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

from ..util.download import download_home, fetch_recorded, sidecar_path
from ..util.errors import DataError
from .archive import UnsafeArchive, extract_tar, remove_stale_staging, staging_folder
from .files import is_dataset_root, list_images

OFFICIAL_DATASET_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2shoes.tar.gz"
DATASET_URL_ENV = "EDGES2SHOES_DATASET_URL"  # a mirror, if the Berkeley server is unreachable
ARCHIVE_NAME = "edges2shoes.tar.gz"  # the same name for every mirror: one recorded sha256
# sha256 of the tarball: unknown until a first download (none was possible offline); the first
# download records it beside the archive and every later one is checked against it.
OFFICIAL_DATASET_SHA256: str | None = None
DOWNLOAD_TIMEOUT = 60.0  # seconds without a byte before a download gives up
DOWNLOAD_ATTEMPTS = 5  # a transfer cut after some progress is resumed at once, up to this many times
SPACE_MARGIN = 200 << 20  # bytes kept free beyond the estimate (file-system slack of ~50k files)
KAGGLE_COPY = "balraj98/edges2shoes-dataset"


DiskUsage = Callable[[str], Any]  # shutil.disk_usage, or anything whose answer has `.free` (tests)


def default_dataset_dir() -> Path:
    """`data/edges2shoes` of the repository checkout this package runs from, or, for an installed
    package, `~/.cache/edges2shoes/data/edges2shoes` (`$XDG_CACHE_HOME` respected)."""
    return download_home("data", "edges2shoes")


def fetch_official_dataset(
    out: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    keep_archive: bool = False,
    progress: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
    attempts: int = DOWNLOAD_ATTEMPTS,
    disk_usage: DiskUsage = shutil.disk_usage,
) -> Path:
    """Download and unpack the official edges2shoes tarball into `out` (ROOT/train, ROOT/val, the
    layout `PairsDataset` reads) and return `out`; an `out` that already holds it is returned as is.

    `url` (else `$EDGES2SHOES_DATASET_URL`, else the Berkeley URL) points at a mirror. The archive
    goes beside `out` as `edges2shoes.tar.gz` (`.part` while incomplete, `.sha256` its record) and is
    deleted once unpacked unless `keep_archive`. `progress` shows progress bars and the image count
    per split on stderr. Raises DataError saying what to do when anything fails.
    """
    out = Path(out).expanduser() if out is not None else default_dataset_dir()
    url = url or os.environ.get(DATASET_URL_ENV) or OFFICIAL_DATASET_URL
    if is_dataset_root(out):
        return _report(out, progress)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an edges2shoes dataset (train/ and val/ of images); "
                        "move it away or choose another --out")
    archive = out.parent / ARCHIVE_NAME
    remove_stale_staging(out)

    def check_download(coming: int | None, size: int | None) -> None:
        if coming is not None and size is not None:  # unknown without a Content-Length: not checked
            _check_space(out.parent, coming + size, disk_usage,
                         f"the download needs {_gb(coming)} more and unpacking it about {_gb(size)}")

    first_download = not sidecar_path(archive).exists()
    fetch_recorded(url, archive, error=DataError, advice=_advice(url, archive), known_sha256=OFFICIAL_DATASET_SHA256,
                   timeout=timeout, progress=progress, resume=True, attempts=attempts, check_size=check_download)
    size = archive.stat().st_size
    _check_space(out.parent, size, disk_usage, f"unpacking {archive.name} needs about {_gb(size)}")
    try:
        _unpack(archive, out, progress)
    except UnsafeArchive:  # not the dataset: neither kept nor recorded as the file to expect
        archive.unlink()
        if first_download:
            sidecar_path(archive).unlink(missing_ok=True)
        raise
    if not keep_archive:
        archive.unlink()  # its .sha256 record stays, to check the next download
    return _report(out, progress)


def _unpack(archive: Path, out: Path, progress: bool) -> None:
    """Unpack into a staging folder beside `out`, then rename its dataset root to `out`."""
    with staging_folder(out) as staging:
        extract_tar(archive, staging, progress=progress)
        root = _dataset_in(staging, archive)
        if out.is_dir():
            out.rmdir()  # empty (checked before): the rename replaces it
        os.replace(root, out)  # the dataset appears whole, or not at all


def split_counts(root: Path) -> dict[str, int]:
    """Images per split, as `PairsDataset` counts them."""
    return {split: len(list_images(root / split)) for split in ("train", "val") if (root / split).is_dir()}


def _report(root: Path, progress: bool) -> Path:
    if progress:
        counts = ", ".join(f"{split} {count:,} images" for split, count in split_counts(root).items())
        print(f"edges2shoes dataset in {root}: {counts}", file=sys.stderr)
    return root


def _dataset_in(staging: Path, archive: Path) -> Path:
    """The dataset root the archive unpacked to: `edges2shoes/` for the official tarball."""
    candidates = [staging] + sorted(p for p in staging.iterdir() if p.is_dir())
    for candidate in candidates:
        if is_dataset_root(candidate):
            return candidate
    raise UnsafeArchive(f"{archive}: holds no train/ and val/ folders of images, so it is not the edges2shoes "
                        f"tarball; it was deleted. Fetch again from {OFFICIAL_DATASET_URL} or another mirror")


def _check_space(folder: Path, need: int, disk_usage: DiskUsage, what: str) -> None:
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = disk_usage(str(existing)).free
    if free < need + SPACE_MARGIN:
        raise DataError(f"{existing}: only {_gb(free)} free, but {what} (and {_gb(SPACE_MARGIN)} to spare); "
                        "free some space or choose another --out on a larger disk")


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 10**8 else f"{size / 1e6:.1f} MB"


def _advice(url: str, archive: Path) -> str:
    return (f"Without access to {url}: download it where there is access and point --url (or "
            f"${DATASET_URL_ENV}) at a mirror, or save it as {archive} and run again; or use the Kaggle "
            f"copy ({KAGGLE_COPY}: attach it on Kaggle, or download it with kagglehub) and pass its folder with --data.")


__all__ = [
    "OFFICIAL_DATASET_URL",
    "DATASET_URL_ENV",
    "ARCHIVE_NAME",
    "default_dataset_dir",
    "fetch_official_dataset",
    "split_counts",
]
