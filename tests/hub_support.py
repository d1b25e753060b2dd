"""Shared by the publishing and Hub tests: a private Hub cache laid out as huggingface_hub keeps a
downloaded repository (the fixtures `no_credentials` and `hub_uploads` are in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path


REVISION = "0123456789abcdef0123456789abcdef01234567"


def hub_cache_entry(cache: Path, repo_id: str, folder: Path, revision: str = REVISION) -> Path:
    """Lay the files of `folder` out as huggingface_hub's cache keeps a downloaded repository at
    `revision` (also what refs/main points to); returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        shutil.copy(path, snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
