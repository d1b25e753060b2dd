"""Pretrained weights by name: where they come from, where they are cached, and how they are fetched.

Training pix2pix (Isola et al. 2017, arXiv 1611.07004) takes hours on a GPU, so most users start
from weights. Three public sets exist for edges2shoes:

- `kaggle`: the original edges2shoes project's `generator_{epoch}.pt` files, in the Kaggle dataset
  `rudenkoilya/edges2shoes-weights` (fetched with kagglehub);
- `pix2pix-official`: the official pix2pix PyTorch model zoo's edges2shoes generator (fetched over
  HTTP, its sha256 recorded on the first download and checked on every later fetch);
- `huggan`: the Hugging Face community sprint's `huggan/pix2pix-edge2shoes` generator (PyTorch-GAN's
  U-Net), fetched with huggingface_hub into its own cache and pinned to the first commit fetched.

Generators published with `edges2shoes weights publish` load back as `hub:USER/NAME[@REVISION]`
(huggingface_hub's own cache; `HF_HUB_OFFLINE=1` reads only the cache) or
`kaggle-model:OWNER/MODEL/FRAMEWORK/VARIATION[/N]` (a Kaggle Model); `kaggle:USER/SLUG` reads the
Kaggle datasets version 0.2 published. Each is fetched as the folder `save_pretrained` writes, and
the weights file its config.json names is returned.

Cache folder: `$EDGES2SHOES_WEIGHTS` if set; otherwise `weights/` of the repository checkout this
package runs from, or, for an installed package, `~/.cache/edges2shoes/weights`
(`$XDG_CACHE_HOME` respected). Kaggle files stay in kagglehub's own cache; only the dataset
version we pinned is recorded in ours.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from ..nets.hub import HUB_CONFIG, INSTALL, read_hub_config, saved_weights, weights_named
from ..util import kaggle
from ..util.atomic import atomic_write_text
from ..util.download import download_home, fetch_recorded, sha256_of
from ..util.errors import WeightsError
from ..util.version import __version__

SOURCES = ("kaggle", "pix2pix-official", "huggan")
GENERATOR_ONLY_SOURCES = ("pix2pix-official", "huggan")  # no discriminator published
# Generators published with `edges2shoes weights publish` load back by these names.
HUB_SCHEME = "hub:"  # hub:USER/NAME[@REVISION], a Hugging Face model repository
KAGGLE_MODEL_SCHEME = "kaggle-model:"  # kaggle-model:OWNER/MODEL/FRAMEWORK/VARIATION[/N], a Kaggle Model
KAGGLE_SCHEME = "kaggle:"  # kaggle:USER/SLUG[/versions/N], a Kaggle dataset (what version 0.2 published)
PUBLISHED_SCHEMES = (HUB_SCHEME, KAGGLE_MODEL_SCHEME, KAGGLE_SCHEME)
_PUBLISHED_NAME = {  # what follows each scheme
    HUB_SCHEME: r"[\w.-]+/[\w.-]+(@[\w./-]+)?",
    KAGGLE_MODEL_SCHEME: r"[\w.-]+/[\w.-]+/[\w.-]+/[\w.-]+(/\d+)?",
    KAGGLE_SCHEME: r"[\w.-]+/[\w.-]+(/versions/\d+)?",
}
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

HUGGAN_REPO = "huggan/pix2pix-edge2shoes"
HUGGAN_URL = f"https://huggingface.co/{HUGGAN_REPO}"
# The file PyTorchModelHubMixin.save_pretrained wrote: pytorch_model.bin when the sprint ran (2022),
# model.safetensors in later huggingface_hub versions; the first one found is used.
HUGGAN_FILES = ("pytorch_model.bin", "model.safetensors")
HUGGAN_REVISION_ENV = "EDGES2SHOES_HUGGAN_REVISION"
# The commit to pin, where one is known: unset, the first download records
# the commit huggingface_hub resolved, and later fetches ask for that one, which also works offline
# from the cache. Set this (or $EDGES2SHOES_HUGGAN_REVISION) to pin a commit for every user.
HUGGAN_REVISION: str | None = None

Downloader = Callable[..., str]  # kagglehub.dataset_download(handle, path=None) -> local path


def default_cache_dir() -> Path:
    """`$EDGES2SHOES_WEIGHTS`, else the checkout's `weights/`, else the user cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return download_home("weights")


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
    `$EDGES2SHOES_PIX2PIX_URL` replaces the Berkeley URL), "huggan" (generators only; `downloader`
    replaces `hub_download`), or a path to a weights file, returned as is. Raises WeightsError saying what to do when the weights cannot be fetched.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if source == "kaggle":
        return _fetch_kaggle(cache, f"{role}_{epoch}.pt", downloader)
    if source == "pix2pix-official":
        if role != "generator":
            raise WeightsError("the official pix2pix model zoo publishes generators only, no discriminator")
        return _fetch_official(cache, url or os.environ.get(OFFICIAL_URL_ENV) or OFFICIAL_URL, progress)
    if source == "huggan":
        return _fetch_huggan(cache, role, downloader)
    if isinstance(source, str) and source.startswith(PUBLISHED_SCHEMES):
        return _fetch_published(source, role, cache, downloader)
    path = Path(source).expanduser()
    if path.is_dir() and saved_weights(path) is not None:
        return saved_weights(path)
    if not path.is_file():
        hint = " (a folder: pass one of its weights files)" if path.is_dir() else ""
        raise WeightsError(f"{path}: no such weights file{hint}; a source is a file path, "
                           + " or ".join(repr(s) for s in SOURCES)
                           + f" (or {HUB_SCHEME}USER/NAME, {KAGGLE_MODEL_SCHEME}OWNER/MODEL/pyTorch/VARIATION)")
    return path


# --------------------------------------------------------------------------------------------------
# The official model zoo over HTTP, checked against the sha256 recorded beside the file.


def _fetch_official(cache: Path, url: str, progress: bool) -> Path:
    """The official generator file, under the recorded-sha256 rule of `util.download.fetch_recorded`."""
    target = cache / OFFICIAL_FILE
    advice = (
        f"Check the internet connection and try again, or download {url} with a browser on a machine "
        f"that has access and save it as {target} (or set ${OFFICIAL_URL_ENV} to a mirror)."
    )
    return fetch_recorded(url, target, error=WeightsError, advice=advice, known_sha256=OFFICIAL_SHA256,
                          timeout=DOWNLOAD_TIMEOUT, progress=progress)


# --------------------------------------------------------------------------------------------------
# Kaggle through kagglehub, pinned to the dataset version first downloaded.


def _fetch_kaggle(cache: Path, filename: str, downloader: Downloader | None) -> Path:
    """`filename` of the original project's Kaggle dataset."""
    root, handle = _kaggle_files(cache, KAGGLE_DATASET, "dataset", downloader, filename)
    return _find_in_kaggle_download(root, filename, handle)


def _kaggle_files(cache: Path, handle: str, kind: str, downloader: Downloader | None,
                  filename: str | None = None) -> tuple[Path, str]:
    """(kagglehub's local path of `filename` in the Kaggle dataset or model `handle`, or of all of it,
    the handle asked for): a handle with a version is used as given; otherwise the version the
    first download got is recorded in our cache and asked for from then on."""
    download = downloader or kaggle.downloader(kind, f"fetching {handle} from Kaggle", WeightsError)
    if kaggle.is_versioned(handle, kind):
        return _kaggle_download(handle, kind, filename, download), handle
    pin_file = cache / "kaggle" / (handle.replace("/", "__") + ".version")
    pinned = pin_file.read_text().strip() if pin_file.is_file() else None
    if handle == KAGGLE_DATASET:
        pinned = os.environ.get(KAGGLE_VERSION_ENV) or pinned or (str(KAGGLE_VERSION) if KAGGLE_VERSION else None)
    asked = kaggle.with_version(handle, kind, pinned) if pinned else handle
    root = _kaggle_download(asked, kind, filename, download)
    version = None if pinned else kaggle.version_in(root, handle, kind)
    if version:
        atomic_write_text(pin_file, version + "\n")
    return root, asked


def _find_in_kaggle_download(root: Path, filename: str, handle: str) -> Path:
    if root.is_file():
        return root
    found = sorted(root.rglob(filename)) or sorted(root.rglob(filename + "h"))  # .pt or .pth
    if not found:
        available = sorted(p.name for p in root.rglob("*.pt*"))
        raise WeightsError(f"{root}: the Kaggle dataset {handle} has no {filename} (it has: {', '.join(available[:20]) or 'no .pt files'})")
    return found[0]


def _kaggle_download(handle: str, kind: str, filename: str | None, downloader: Downloader) -> Path:
    """`filename` (or, if it sits in a sub-folder or is None, the whole dataset or model's folder) as
    kagglehub returns it."""
    try:
        if filename is not None:
            try:
                return Path(downloader(handle, path=filename))
            except Exception:  # the file may sit in a sub-folder: fetch the whole dataset instead
                pass
        return Path(downloader(handle))
    except Exception as error:  # kagglehub raises many types (HTTP, auth, missing version, ...)
        raise WeightsError(
            f"could not download {handle} from Kaggle ({type(error).__name__}: {str(error)[:300]}). "
            "Without internet, or on a first download, this needs network access; without Kaggle "
            f"credentials, {kaggle.LOGIN}. Or download {filename or 'its files'} from "
            f"{kaggle.page(handle, kind)} by hand and pass {'its path' if filename else 'the folder'}."
        ) from None


# --------------------------------------------------------------------------------------------------
# Generators published with `weights publish`, and Hugging Face Hub downloads.


def _fetch_published(source: str, role: str, cache: Path, downloader: Downloader | None) -> Path:
    """A published name (`PUBLISHED_SCHEMES`): the weights file of the folder `save_pretrained`
    wrote, fetched with its config.json."""
    if role != "generator":
        raise WeightsError(f"{source}: `weights publish` publishes generators only, no {role}")
    scheme = next(s for s in PUBLISHED_SCHEMES if source.startswith(s))
    name = source[len(scheme):]
    if not re.fullmatch(_PUBLISHED_NAME[scheme], name):
        raise WeightsError(f"{source}: not a published repository; write {HUB_SCHEME}USER/NAME[@REVISION], "
                           f"{KAGGLE_MODEL_SCHEME}OWNER/MODEL/FRAMEWORK/VARIATION[/N] or {KAGGLE_SCHEME}USER/SLUG[/versions/N]")
    if scheme == HUB_SCHEME:
        repo_id, _, revision = name.partition("@")
        config = hub_download(repo_id, HUB_CONFIG, revision=revision or None)
        return hub_download(repo_id, weights_named(read_hub_config(config))[1], revision=revision or None)
    folder, _ = _kaggle_files(cache, name, "model" if scheme == KAGGLE_MODEL_SCHEME else "dataset", downloader)
    weights = saved_weights(folder)
    if weights is None:
        raise WeightsError(f"{folder}: the download of {source} holds no config.json naming its weights "
                           "(what `weights publish` and save_pretrained write)")
    return weights


def hub_download(repo_id: str, filename: str, *, revision: str | None = None) -> Path:
    """`filename` of the Hugging Face model repository `repo_id`, through huggingface_hub's own
    cache (`HF_HUB_CACHE`, `HF_HOME`); with `HF_HUB_OFFLINE=1` only the cache is read."""
    try:
        import huggingface_hub  # lazy: optional dependency (the `publish` extra)
    except ImportError:
        raise WeightsError(f"fetching {repo_id} from the Hugging Face Hub needs huggingface_hub: {INSTALL}") from None
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision, library_name="edges2shoes",
                                                    library_version=__version__))
    except Exception as error:  # huggingface_hub raises HTTP, offline, not-found and validation errors of many types
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        advice = ("HF_HUB_OFFLINE is set and it is not in the local cache: fetch it once with network access"
                  if huggingface_hub.constants.HF_HUB_OFFLINE else
                  "Check the network and the repository name (a private repository needs `hf auth login` or HF_TOKEN)")
        raise WeightsError(f"could not fetch {filename} of {repo_id}"
                           + (f" at revision {revision}" if revision else "")
                           + f" from the Hugging Face Hub ({type(error).__name__}: {reason}). {advice}.") from None


def _fetch_huggan(cache: Path, role: str, downloader: Downloader | None) -> Path:
    """The huggan generator through huggingface_hub's cache, pinned to the first commit fetched
    (recorded in our cache, like the Kaggle version)."""
    if role != "generator":
        raise WeightsError(f"huggan: {HUGGAN_REPO} publishes a generator only, no {role} ({HUGGAN_URL})")
    pin_file = cache / "huggan" / (HUGGAN_REPO.replace("/", "__") + ".revision")
    pinned = os.environ.get(HUGGAN_REVISION_ENV) or (pin_file.read_text().strip() if pin_file.is_file() else None)
    pinned = pinned or HUGGAN_REVISION
    download = downloader or hub_download
    failures = []
    for filename in HUGGAN_FILES:
        try:
            path = Path(download(HUGGAN_REPO, filename, revision=pinned))
        except WeightsError as error:  # hub_download's, which says what failed and what to do
            failures.append(str(error))
            continue
        except Exception as error:  # anything an injected downloader raises
            failures.append(f"could not fetch {filename} of {HUGGAN_REPO} ({type(error).__name__}: {error}).")
            continue
        commit = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", str(path))
        if not pinned and commit:
            atomic_write_text(pin_file, commit.group(1) + "\n")
        return path
    raise WeightsError(
        f"huggan: {failures[0]} Or download {HUGGAN_FILES[0]} (or {HUGGAN_FILES[1]}) from "
        f"{HUGGAN_URL}/tree/main with a browser and pass its path."
    )


__all__ = [
    "SOURCES",
    "GENERATOR_ONLY_SOURCES",
    "HUGGAN_REPO",
    "HUB_SCHEME",
    "KAGGLE_SCHEME",
    "KAGGLE_MODEL_SCHEME",
    "PUBLISHED_SCHEMES",
    "hub_download",
    "CACHE_ENV",
    "KAGGLE_DATASET",
    "OFFICIAL_URL_ENV",
    "Downloader",
    "default_cache_dir",
    "fetch_weights",
    "sha256_of",
]
