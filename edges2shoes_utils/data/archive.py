"""Safe tar extraction: every member checked before it is written, everything written into a
temporary folder beside the target, and the target appearing only by one rename at the end.

A tarball from the internet may name members outside the folder it is unpacked into (`../x`,
`/etc/x`), carry links that point outside it, or device files (CVE-2007-4559 and its many
descendants). Python's `tarfile` guards against these with `filter="data"` (PEP 706; Python
3.10.12+, 3.11.4+, 3.12+); we use it where it exists, and check each member ourselves first in
every case, so the refusal names the member and older Pythons are covered too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from ..util.errors import DataError

HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # False on Pythons before PEP 706
_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # () catches nothing


class UnsafeArchive(DataError):
    """An archive refused because a member would land outside the folder or is a special file."""


@contextlib.contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A new empty folder beside `target` (same filesystem, so a rename moves it), removed with
    whatever is left in it when the block ends, whether it succeeded or not."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.extracting-", dir=target.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(target: Path) -> None:
    """Remove staging folders an earlier, killed extraction into `target` left behind."""
    for stale in target.parent.glob(f".{target.name}.extracting-*"):
        shutil.rmtree(stale, ignore_errors=True)


def extract_tar(archive: Path, into: Path, *, progress: bool = False) -> int:
    """Extract `archive` (any compression tarfile reads) into the existing folder `into`; return
    the number of members extracted.

    Raises UnsafeArchive (a DataError) naming the first member that would escape `into` (an absolute path, `..`, a
    link pointing outside), or that is a device or other special file, and for an unreadable
    archive. What was written before the refusal stays in `into`: extract into a
    `staging_folder` so that it vanishes with it.
    """
    root = os.path.realpath(into)
    count = 0
    try:
        with tarfile.open(archive) as tar, tqdm(unit=" files", desc=f"extracting {archive.name}",
                                                disable=not progress, file=sys.stderr) as bar:
            for member in tar:  # streamed: each member is checked, then written, in archive order
                _refuse_unsafe(archive, member, root)
                if HAS_DATA_FILTER:
                    tar.extract(member, root, set_attrs=not member.isdir(), filter="data")
                else:
                    tar.extract(_without_privileges(member), root, set_attrs=not member.isdir())
                count += 1
                bar.update(1)
    except _FILTER_ERROR as error:  # our checks come first; this is the second line
        raise UnsafeArchive(f"{archive}: refused member {error.tarinfo.name!r} ({error}); nothing was kept. "
                        "It is not the edges2shoes tarball, or it was tampered with") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{archive}: cannot be extracted ({type(error).__name__}: {error}); nothing was kept. "
                        "Delete it to download it again") from None
    return count


def _refuse_unsafe(archive: Path, member: tarfile.TarInfo, root: str) -> None:
    problem = unsafe_reason(member, root)
    if problem:
        raise UnsafeArchive(f"{archive}: refused member {member.name!r}: {problem}; nothing was kept. "
                        "It is not the edges2shoes tarball, or it was tampered with")


def unsafe_reason(member: tarfile.TarInfo, root: str) -> str | None:
    """Why `member` must not be extracted into the folder `root` (a realpath), or None if it is safe.

    Paths are resolved through the links already on disk (as the data filter does), so a chain of
    links that each look harmless cannot lead out either."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    destination = os.path.realpath(os.path.join(root, name))
    if not _inside(destination, root):
        return "its path leads outside the folder ('..')"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO (a special file)"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")) or os.path.isabs(link):
            return f"a link to the absolute path {link}, outside the folder"
        base = os.path.dirname(os.path.join(root, name)) if member.issym() else root  # hard links: from the root
        if not _inside(os.path.realpath(os.path.join(base, link)), root):
            return f"a link to {link}, outside the folder"
    elif not (member.isfile() or member.isdir()):
        return "neither a file, a folder nor a link"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _without_privileges(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What the data filter does beyond path checks, for Pythons without it: no set-id or
    group/world-writable bits, and the extracting user as owner."""
    member.uid, member.gid = getattr(os, "getuid", lambda: 0)(), getattr(os, "getgid", lambda: 0)()
    member.uname = member.gname = ""
    member.mode &= 0o755
    return member


__all__ = ["UnsafeArchive", "HAS_DATA_FILTER", "extract_tar", "staging_folder", "remove_stale_staging", "unsafe_reason"]
