"""Download one file over HTTP(S): streamed, with a timeout, optionally with a progress bar and a
sha256 check, and atomic (`util.atomic`), so an interrupted or wrong download never sits at the
destination.

Callers turn the errors into their own messages: pretrained generator weights
(`checkpoints.fetch`) and the FID / LPIPS backbones (`evaluation.metrics`).
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from .atomic import atomic_open

BLOCK = 1 << 20  # bytes read and hashed at a time
USER_AGENT = "edges2shoes"


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


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    timeout: float,
    expected_sha256: str | None = None,
    progress: bool = False,
) -> str:
    """Stream `url` into `destination` and return the file's sha256 (hex).

    `timeout` bounds every socket operation, so a dead network fails fast instead of hanging.
    `expected_sha256` is a full hex digest or a prefix of one (torch.hub file names carry one);
    bytes that do not match raise `HashMismatch`. The bytes go to a temporary file beside
    `destination`, renamed over it only once the transfer is complete and checked. Errors from the
    network (`urllib.error.HTTPError`, `URLError`, `http.client.HTTPException`, `OSError`) pass
    through for the caller to explain.
    """
    destination = Path(destination)
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs only
        total = response.length
        received = 0
        with atomic_open(destination, "wb") as handle, tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=destination.name,
            disable=not progress, file=sys.stderr,
        ) as bar:
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


__all__ = ["download", "IncompleteDownload", "HashMismatch"]
