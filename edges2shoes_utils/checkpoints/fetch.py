"""Pretrained weights by name: where they come from, where they are cached, and how they are fetched.

Training pix2pix (Isola et al. 2017, arXiv 1611.07004) takes hours on a GPU, so most users start
from weights. Two public sets exist for edges2shoes:

- `kaggle`: the original edges2shoes project's `generator_{epoch}.pt` files, in the Kaggle dataset
  `rudenkoilya/edges2shoes-weights` (fetched with kagglehub);
- `pix2pix-official`: the official pix2pix PyTorch model zoo's edges2shoes generator (fetched over
  HTTP, its sha256 recorded on the first download and checked on every later fetch).

Cache folder: `$EDGES2SHOES_WEIGHTS` if set; otherwise `weights/` of the repository checkout this
package runs from, or, for an installed package, `~/.cache/edges2shoes/weights`
(`$XDG_CACHE_HOME` respected). Kaggle files stay in kagglehub's own cache; only the dataset
version we pinned is recorded in ours.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
from pathlib import Path
from typing import Callable

from ..util.atomic import atomic_write_text
from ..util.download import HashMismatch, IncompleteDownload, download
from ..util.errors import WeightsError

SOURCES = ("kaggle", "pix2pix-official")
CACHE_ENV = "EDGES2SHOES_WEIGHTS"

KAGGLE_DATASET = "rudenkoilya/edges2shoes-weights"
KAGGLE_URL = "https://www.kaggle.com/datasets/rudenkoilya/edges2shoes-weights"
KAGGLE_VERSION_ENV = "EDGES2SHOES_KAGGLE_VERSION"
# The dataset version to pin. Not known here (it could not be looked up offline): the first
# successful download records the version kagglehub returned, and later fetches pin that one, so
# a cached copy keeps working offline (an unversioned handle asks the Kaggle API every time).
KAGGLE_VERSION: int | None = None

OFFICIAL_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/edges2shoes.pth"
OFFICIAL_URL_ENV = "EDGES2SHOES_PIX2PIX_URL"  # a mirror, if the Berkeley server is unreachable
OFFICIAL_FILE = "pix2pix-official/edges2shoes_net_G.pth"
# sha256 of the official file: unknown until a first download (none was possible offline); the
# first download records it beside the file and every later fetch checks it.
OFFICIAL_SHA256: str | None = None
DOWNLOAD_TIMEOUT = 60.0  # seconds without a byte before a download gives up

Downloader = Callable[..., str]  # kagglehub.dataset_download(handle, path=None) -> local path


def default_cache_dir() -> Path:
    """`$EDGES2SHOES_WEIGHTS`, else the checkout's `weights/`, else the user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]  # edges2shoes_utils/checkpoints/fetch.py -> the checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "edges2shoes_utils").is_dir():
        return checkout / "weights"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edges2shoes" / "weights"


def fetch_weights(
    source: str | os.PathLike,
    *,
    role: str = "generator",
    cache_dir: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    epoch: int = 9,
    url: str | None = None,
    progress: bool = True,
) -> Path:
    """The local path of `source`'s weights for `role` ("generator" or "discriminator"), downloading
    them into the cache if needed.

    `source` is "kaggle" (`{role}_{epoch}.pt` of the original project; `downloader` replaces
    kagglehub.dataset_download), "pix2pix-official" (generators only; `url` or
    `$EDGES2SHOES_PIX2PIX_URL` replaces the Berkeley URL), or a path to a weights file, returned as
    is. Raises WeightsError saying what to do when the weights cannot be fetched.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if source == "kaggle":
        return _fetch_kaggle(cache, f"{role}_{epoch}.pt", downloader)
    if source == "pix2pix-official":
        if role != "generator":
            raise WeightsError("the official pix2pix model zoo publishes generators only, no discriminator")
        return _fetch_official(cache, url or os.environ.get(OFFICIAL_URL_ENV) or OFFICIAL_URL, progress)
    path = Path(source).expanduser()
    if not path.is_file():
        hint = " (a folder: pass one of its weights files)" if path.is_dir() else ""
        raise WeightsError(f"{path}: no such weights file{hint}; a source is a file path, " + " or ".join(repr(s) for s in SOURCES))
    return path


# --------------------------------------------------------------------------------------------------
# The official model zoo over HTTP, checked against the sha256 recorded beside the file.


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_sidecar(sidecar: Path) -> str | None:
    if not sidecar.is_file():
        return None
    words = sidecar.read_text(encoding="utf-8").split()
    if not words or not re.fullmatch(r"[0-9a-f]{64}", words[0]):
        raise WeightsError(f"{sidecar}: not a sha256 record; delete it to record the file's hash again")
    return words[0]


def _fetch_official(cache: Path, url: str, progress: bool) -> Path:
    target = cache / OFFICIAL_FILE
    sidecar = target.with_name(target.name + ".sha256")
    recorded = _read_sidecar(sidecar) or OFFICIAL_SHA256
    if target.is_file():
        actual = sha256_of(target)
        if recorded and actual != recorded:
            raise WeightsError(
                f"{target}: its sha256 {actual} differs from {recorded} recorded at its first download "
                f"({sidecar}): the file changed since. Delete {target} to download it again."
            )
        if not recorded:
            atomic_write_text(sidecar, f"{actual}  {target.name}\n")
        return target
    actual = _download_official(url, target, expected_sha256=recorded, progress=progress)
    if not recorded:
        atomic_write_text(sidecar, f"{actual}  {target.name}\n")
    return target


def _download_official(url: str, target: Path, *, expected_sha256: str | None, progress: bool) -> str:
    """`util.download.download` with a progress bar, its failures told as WeightsError with advice."""
    advice = (
        f"Check the internet connection and try again, or download {url} with a browser on a machine "
        f"that has access and save it as {target} (or set ${OFFICIAL_URL_ENV} to a mirror)."
    )
    try:
        return download(url, target, timeout=DOWNLOAD_TIMEOUT, expected_sha256=expected_sha256, progress=progress)
    except HashMismatch as error:
        raise WeightsError(
            f"{url}: the downloaded file's sha256 is {error.actual}, but {error.expected} was recorded at the "
            f"first download; nothing was saved. The file on the server changed or was tampered with; if "
            f"you trust it, delete {target.name}.sha256 in {target.parent} and fetch again."
        ) from None
    except IncompleteDownload as error:
        raise WeightsError(f"{url}: the transfer stopped after {error.received} of {error.total} bytes; "
                           f"nothing was saved. {advice}") from None
    except urllib.error.HTTPError as error:
        raise WeightsError(f"{url}: the server answered {error.code} {error.reason}. {advice}") from None
    except urllib.error.URLError as error:
        raise WeightsError(f"{url}: could not connect ({error.reason}). {advice}") from None
    except (http.client.HTTPException, OSError) as error:
        raise WeightsError(f"{url}: the download failed ({type(error).__name__}: {error}); nothing was saved. {advice}") from None


# --------------------------------------------------------------------------------------------------
# Kaggle through kagglehub, pinned to the dataset version first downloaded.


def _fetch_kaggle(cache: Path, filename: str, downloader: Downloader | None) -> Path:
    pin_file = cache / "kaggle" / (KAGGLE_DATASET.replace("/", "__") + ".version")
    pinned = os.environ.get(KAGGLE_VERSION_ENV) or (pin_file.read_text().strip() if pin_file.is_file() else None)
    pinned = pinned or (str(KAGGLE_VERSION) if KAGGLE_VERSION else None)
    handle = f"{KAGGLE_DATASET}/versions/{pinned}" if pinned else KAGGLE_DATASET
    root = _kaggle_download(handle, filename, downloader or _kagglehub_downloader(filename))
    if not pinned:
        match = re.search(r"versions[/\\](\d+)", str(root))
        if match:
            atomic_write_text(pin_file, match.group(1) + "\n")
    if root.is_file():
        return root
    found = sorted(root.rglob(filename)) or sorted(root.rglob(filename + "h"))  # .pt or .pth
    if not found:
        available = sorted(p.name for p in root.rglob("*.pt*"))
        raise WeightsError(f"{root}: the Kaggle dataset {handle} has no {filename} (it has: {', '.join(available[:20]) or 'no .pt files'})")
    return found[0]


def _kagglehub_downloader(filename: str) -> Downloader:
    try:
        import kagglehub  # lazy: optional dependency
    except ImportError:
        raise WeightsError(f"fetching from Kaggle needs kagglehub: pip install 'kagglehub>=1.0,<2' "
                           f"(or download {KAGGLE_URL} by hand and pass the path to {filename})") from None
    return kagglehub.dataset_download


def _kaggle_download(handle: str, filename: str, downloader: Downloader) -> Path:
    """The file (or, if it sits in a sub-folder, the whole dataset's folder) as kagglehub returns it."""
    try:
        try:
            return Path(downloader(handle, path=filename))
        except Exception:  # the file may sit in a sub-folder: fetch the whole dataset instead
            return Path(downloader(handle))
    except Exception as error:  # kagglehub raises many types (HTTP, auth, missing version, ...)
        raise WeightsError(
            f"could not download {handle} from Kaggle ({type(error).__name__}: {str(error)[:300]}). "
            "Without internet, or on a first download, this needs network access; without Kaggle "
            "credentials, run `kagglehub.login()` or set KAGGLE_USERNAME and KAGGLE_KEY (or put "
            f"kaggle.json in ~/.kaggle/). Or download {filename} from {KAGGLE_URL} by hand and pass its path."
        ) from None


__all__ = [
    "SOURCES",
    "CACHE_ENV",
    "KAGGLE_DATASET",
    "OFFICIAL_URL_ENV",
    "Downloader",
    "default_cache_dir",
    "fetch_weights",
    "sha256_of",
]
