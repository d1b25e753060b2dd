"""Download one file over HTTP(S): streamed, with a timeout, optionally with a progress bar and a
sha256 check, and atomic, so an interrupted or wrong download never sits at the destination.

Two ways to be atomic: small files go to a temporary file that is renamed over the destination
(`util.atomic`); large ones (`resume=True`) go to `DEST.part`, which an interrupted transfer keeps
so that the next attempt asks only for the rest (an HTTP Range request, RFC 9110 section 14) and
renames it once complete. A server that ignores Range, or whose file changed since (`If-Range`),
answers with the whole file, and the part is started over: never a file glued from two versions.

`fetch_recorded` adds the rule every named download follows: the sha256 of the first download is
recorded in a sidecar file (`DEST.sha256`) and every later download or cached copy is checked
against it. Callers: pretrained generator weights (`weights.fetch`), the FID / LPIPS backbones
(`evaluation.metrics`) and the official dataset tarball (`data.official`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .atomic import atomic_open, atomic_write_text
from .errors import Edges2ShoesError

BLOCK = 1 << 20  # bytes read and hashed at a time
USER_AGENT = "edges2shoes"

SizeCheck = Callable[["int | None", "int | None"], None]  # (bytes still to come, whole size; None: unknown); raises to refuse


class IncompleteDownload(OSError):
    """The server closed the connection before sending the length it announced."""

    def __init__(self, url: str, received: int, total: int) -> None:
        super().__init__(f"{url}: the transfer stopped after {received} of {total} bytes")
        self.received = received
        self.total = total


class HashMismatch(ValueError):
    """The downloaded bytes' sha256 does not start with the expected hex digest (or prefix)."""

    def __init__(self, url: str, actual: str, expected: str) -> None:
        super().__init__(f"{url}: SHA-256 {actual[:12]}... does not start with {expected}")
        self.actual = actual
        self.expected = expected


class RangeMismatch(http.client.HTTPException):
    """A 206 answer whose Content-Range does not start where the partial file ends."""


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    timeout: float,
    expected_sha256: str | None = None,
    progress: bool = False,
    resume: bool = False,
    attempts: int = 1,
    check_size: SizeCheck | None = None,
) -> str:
    """Stream `url` into `destination` and return the file's sha256 (hex).

    `timeout` bounds every socket operation, so a dead network fails fast instead of hanging.
    `expected_sha256` is a full hex digest or a prefix of one (torch.hub file names carry one);
    bytes that do not match raise `HashMismatch` and leave nothing behind. `check_size(coming, size)`
    is called with the bytes about to arrive and the whole file's size before any is written (to
    refuse a full disk). Without
    `resume` an interrupted transfer leaves nothing; with it, the bytes received stay in
    `partial_path(destination)` for the next call, and a transfer cut after some progress is resumed
    at once up to `attempts` times. Errors from the network (`urllib.error.HTTPError`, `URLError`,
    `http.client.HTTPException`, `OSError`) pass through for the caller to explain.
    """
    destination = Path(destination)
    if not resume:
        return _download_whole(url, destination, timeout, expected_sha256, progress, check_size)
    part = partial_path(destination)
    for attempt in range(1, max(attempts, 1) + 1):
        before = part.stat().st_size if part.is_file() else 0
        try:
            actual = _download_part(url, part, timeout, progress, check_size)
            break
        except (IncompleteDownload, http.client.IncompleteRead, ConnectionError, TimeoutError):
            moved = part.is_file() and part.stat().st_size != before  # bytes arrived (or a restart began)
            if attempt == attempts or not moved:  # retry at once only a transfer that was making progress
                raise
    with contextlib.suppress(FileNotFoundError):
        _validator_path(part).unlink()
    if expected_sha256 and not actual.startswith(expected_sha256):
        part.unlink()
        raise HashMismatch(url, actual, expected_sha256)
    os.replace(part, destination)
    return actual


def download_home(*parts: str) -> Path:
    """Where downloads are kept by default: `parts` under the repository checkout this package runs
    from, or, for an installed package, under `~/.cache/edges2shoes` (`$XDG_CACHE_HOME` respected)."""
    checkout = Path(__file__).resolve().parents[2]  # edges2shoes_utils/util/download.py -> the checkout
    if (checkout / "pyproject.toml").is_file() and (checkout / "edges2shoes_utils").is_dir():
        return checkout.joinpath(*parts)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base.joinpath("edges2shoes", *parts)


def partial_path(destination: str | os.PathLike) -> Path:
    """Where a resumable download keeps the bytes received so far."""
    destination = Path(destination)
    return destination.with_name(destination.name + ".part")


def _progress_bar(total: int | None, initial: int, name: str, progress: bool) -> tqdm:
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=not progress, file=sys.stderr)


def _download_whole(url: str, destination: Path, timeout: float, expected_sha256: str | None,
                    progress: bool, check_size: SizeCheck | None) -> str:
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs only
        total = response.length
        if check_size is not None:
            check_size(total, total)
        received = 0
        with atomic_open(destination, "wb") as handle, _progress_bar(total, 0, destination.name, progress) as bar:
            while block := response.read(BLOCK):
                handle.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
            if total is not None and received < total:  # closed early without an error
                raise IncompleteDownload(url, received, total)
            actual = digest.hexdigest()
            if expected_sha256 and not actual.startswith(expected_sha256):
                raise HashMismatch(url, actual, expected_sha256)
    return actual


# --------------------------------------------------------------------------------------------------
# Resumable downloads: DEST.part grows until complete; DEST.part.validator remembers which version
# of the file it holds (ETag or Last-Modified), sent as If-Range so a changed file restarts cleanly.


def _download_part(url: str, part: Path, timeout: float, progress: bool, check_size: SizeCheck | None) -> str:
    """Append the rest of `url` to `part` (or start it over) and return the complete file's sha256."""
    validator = _validator_path(part)
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response, start, total = _open_at(url, offset, _read_validator(validator) if offset else None, timeout)
    except (RangeMismatch, urllib.error.HTTPError) as error:
        if not offset or (isinstance(error, urllib.error.HTTPError) and error.code != 416):
            raise
        if isinstance(error, urllib.error.HTTPError):  # 416: nothing lies beyond the part
            error.close()
            if error.headers.get("Content-Range", "").strip() == f"bytes */{offset}":  # it is complete
                return sha256_of(part)
        response, start, total = _open_at(url, 0, None, timeout)  # the part is no prefix: start over
    with response:
        if check_size is not None:
            check_size(None if total is None else total - start, total)
        part.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        if start:
            _hash_file(part, digest)
        else:
            _write_validator(validator, response)
        received = start
        with open(part, "ab" if start else "wb") as handle, _progress_bar(total, start, part.name[:-5], progress) as bar:
            try:
                while block := response.read(BLOCK):
                    handle.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            finally:  # what arrived is kept for the next attempt
                handle.flush()
                os.fsync(handle.fileno())
        if total is not None and received < total:
            raise IncompleteDownload(url, received, total)
    return digest.hexdigest()


def _open_at(url: str, offset: int, validator: str | None, timeout: float) -> tuple[http.client.HTTPResponse, int, int | None]:
    """The response, the byte it starts at, and the whole file's size (None if not announced).

    A 206 starts at `offset` (checked against Content-Range); anything else is the whole file."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)  # noqa: S310
    if response.status != 206:
        return response, 0, response.length
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", content_range)
    if not match or int(match.group(1)) != offset:
        response.close()
        raise RangeMismatch(f"{url}: asked for bytes from {offset}, the server sent the range {content_range!r}")
    total = int(match.group(3)) if match.group(3) != "*" else None
    return response, offset, total


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def _read_validator(validator: Path) -> str | None:
    if not validator.is_file():
        return None
    return validator.read_text(encoding="utf-8").strip() or None


def _write_validator(validator: Path, response: http.client.HTTPResponse) -> None:
    """Remember the version of the file a new part starts from (a weak ETag may not be used in If-Range)."""
    etag = response.headers.get("ETag")
    value = etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified")
    if value:
        atomic_write_text(validator, value + "\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            validator.unlink()


def _hash_file(path: str | os.PathLike, digest: "hashlib._Hash") -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


# --------------------------------------------------------------------------------------------------
# The recorded-sha256 rule: record on the first download, check ever after.


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file, read in blocks."""
    digest = hashlib.sha256()
    _hash_file(path, digest)
    return digest.hexdigest()


def sidecar_path(target: str | os.PathLike) -> Path:
    """Where the sha256 recorded at `target`'s first download is kept."""
    target = Path(target)
    return target.with_name(target.name + ".sha256")


def read_sidecar(sidecar: Path, error: type[Edges2ShoesError]) -> str | None:
    """The sha256 recorded in `sidecar` (None if there is none); `error` if it is not a record."""
    if not sidecar.is_file():
        return None
    words = sidecar.read_text(encoding="utf-8").split()
    if not words or not re.fullmatch(r"[0-9a-f]{64}", words[0]):
        raise error(f"{sidecar}: not a sha256 record; delete it to record the file's hash again")
    return words[0]


def record_sha256(target: Path, digest: str) -> None:
    atomic_write_text(sidecar_path(target), f"{digest}  {target.name}\n")


def fetch_recorded(
    url: str,
    target: str | os.PathLike,
    *,
    error: type[Edges2ShoesError],
    advice: str,
    known_sha256: str | None = None,
    timeout: float,
    progress: bool = False,
    resume: bool = False,
    attempts: int = 1,
    check_size: SizeCheck | None = None,
) -> Path:
    """`target`, downloaded from `url` unless already there, checked against the recorded sha256.

    The record is `known_sha256` or, failing that, the sidecar written at the first download. A
    cached file that differs from it, or a download that does, raises `error`, and so does any
    failure to download, told in one message ending with `advice` (what the user can do).
    """
    target = Path(target)
    sidecar = sidecar_path(target)
    recorded = read_sidecar(sidecar, error) or known_sha256
    if target.is_file():
        actual = sha256_of(target)
        if recorded and actual != recorded:
            raise error(
                f"{target}: its sha256 {actual} differs from {recorded} recorded at its first download "
                f"({sidecar}): the file changed since. Delete {target} to download it again."
            )
    else:
        actual = _explained_download(url, target, error, advice, expected_sha256=recorded, timeout=timeout,
                                     progress=progress, resume=resume, attempts=attempts, check_size=check_size)
    if not recorded:
        record_sha256(target, actual)
    return target


def _explained_download(url: str, target: Path, error: type[Edges2ShoesError], advice: str, **options) -> str:
    """`download`, its failures told as `error` with what happened, what is left, and `advice`."""
    part = partial_path(target)
    try:
        return download(url, target, **options)
    except HashMismatch as mismatch:
        raise error(
            f"{url}: the downloaded file's sha256 is {mismatch.actual}, but {mismatch.expected} was recorded at the "
            f"first download; nothing was saved. The file on the server changed or was tampered with; if "
            f"you trust it, delete {target.name}.sha256 in {target.parent} and fetch again."
        ) from None
    except urllib.error.HTTPError as failure:
        raise error(f"{url}: the server answered {failure.code} {failure.reason}. {advice}") from None
    except urllib.error.URLError as failure:
        raise error(f"{url}: could not connect ({failure.reason}). {advice}") from None
    except (http.client.HTTPException, OSError) as failure:
        if isinstance(failure, IncompleteDownload):
            what = f"the transfer stopped after {failure.received} of {failure.total} bytes"
        else:
            what = f"the download failed ({type(failure).__name__}: {failure})"
        if options.get("resume") and part.is_file():
            kept = f"the {part.stat().st_size} bytes received are kept in {part}; run the same command again to resume."
        else:
            kept = "nothing was saved."
        raise error(f"{url}: {what}; {kept} {advice}") from None


__all__ = [
    "download",
    "download_home",
    "fetch_recorded",
    "partial_path",
    "sha256_of",
    "sidecar_path",
    "read_sidecar",
    "record_sha256",
    "IncompleteDownload",
    "HashMismatch",
    "RangeMismatch",
]
