"""kagglehub, imported on first use: Kaggle datasets and models by handle, and the login an upload needs.

Handles: a dataset is `OWNER/SLUG` (`.../versions/N` pins a version), a model `OWNER/MODEL/FRAMEWORK/
VARIATION` (`.../N` pins one). An unversioned handle makes kagglehub ask the Kaggle API for the newest
version even when the files are cached, so it fails offline: callers pin the version a first
download got (`version_in`, `with_version`). kagglehub is imported only when Kaggle is really used.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

INSTALL = "pip install 'kagglehub>=1.0,<2'"
LOGIN = ("run `kagglehub.login()`, set KAGGLE_API_TOKEN (or KAGGLE_USERNAME and KAGGLE_KEY), "
         "or put kaggle.json in ~/.kaggle/")


def kagglehub_module(purpose: str, error: type[Exception]) -> Any:
    """The kagglehub module; `error` saying how to install it when it is missing."""
    try:
        import kagglehub  # lazy: imported only to talk to Kaggle
    except ImportError:
        raise error(f"{purpose} needs kagglehub: {INSTALL}") from None
    return kagglehub


def downloader(kind: str, purpose: str, error: type[Exception]) -> Callable[..., str]:
    """kagglehub.dataset_download or model_download: (handle, path=None) -> local path."""
    module = kagglehub_module(purpose, error)
    return module.dataset_download if kind == "dataset" else module.model_download


def require_login(purpose: str, error: type[Exception]) -> Any:
    """The kagglehub module, once Kaggle credentials are known to exist: without them kagglehub would
    start an upload and fail on the network."""
    module = kagglehub_module(purpose, error)
    try:
        has_login = module.config.get_kaggle_credentials() is not None
    except AttributeError:  # a kagglehub without this helper: let the upload report it
        has_login = True
    except ValueError as problem:  # an unreadable kaggle.json
        raise error(f"{purpose}: {problem}") from None
    if not has_login:
        raise error(f"{purpose} needs a login: {LOGIN}")
    return module


def is_versioned(handle: str, kind: str) -> bool:
    return "/versions/" in handle if kind == "dataset" else len(handle.split("/")) == 5


def with_version(handle: str, kind: str, version: str) -> str:
    return f"{handle}/versions/{version}" if kind == "dataset" else f"{handle}/{version}"


def version_in(path: str | Path, handle: str, kind: str) -> str | None:
    """The version kagglehub downloaded, read from its cache path (`.../versions/N` for a dataset,
    `.../VARIATION/N` for a model); None when the path does not say."""
    marker = "versions" if kind == "dataset" else re.escape(handle.rstrip("/").split("/")[-1])
    match = re.search(marker + r"[/\\](\d+)(?:[/\\]|$)", str(path))
    return match.group(1) if match else None


def page(handle: str, kind: str) -> str:
    """The handle's page on kaggle.com."""
    return f"https://www.kaggle.com/{'datasets' if kind == 'dataset' else 'models'}/{handle.split('/versions/')[0]}"


__all__ = ["kagglehub_module", "downloader", "require_login", "is_versioned", "with_version", "version_in", "page",
           "INSTALL", "LOGIN"]
