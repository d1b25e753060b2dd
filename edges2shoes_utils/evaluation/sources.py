"""Which weights to evaluate, and what to call them: a run folder stands for its per-epoch
generator files, and every source gets a short label that is unique in its report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

EPOCH_FILE = re.compile(r"generator_(\d+)\.pt$")


def epoch_of(source: str) -> int | None:
    """5 for '.../generator_5.pt' (the per-epoch files of a run), else None."""
    match = EPOCH_FILE.search(str(source))
    return int(match.group(1)) if match else None


def expand_sources(sources: Sequence[str]) -> list[str]:
    """A run folder stands for its per-epoch generator files, in epoch order; anything else (a file,
    'kaggle', 'pix2pix-official') is passed through."""
    expanded: list[str] = []
    for source in sources:
        path = Path(source)
        epoch_files = sorted(path.glob("generator_*.pt"), key=lambda p: epoch_of(p.name) or 0) if path.is_dir() else []
        epoch_files = [p for p in epoch_files if epoch_of(p.name) is not None]
        expanded += [str(p) for p in epoch_files] if epoch_files else [source]
    return expanded


def _short_label(source: str, parents: int) -> str:
    """The file stem of an existing `source` with `parents` folders before it; other sources as given."""
    path = Path(source)
    if not path.exists():
        return source
    parts = [*path.parent.parts[-parents:], path.stem] if parents else [path.stem]
    return "/".join(parts)


def source_labels(sources: Sequence[str]) -> list[str]:
    """Short unique labels: file stems ('generator_3'), with the parent folder added where two
    sources would share a label."""
    labels = [_short_label(s, 0) for s in sources]
    for parents in (1, 2, 3):
        duplicated = {label for label in labels if labels.count(label) > 1}
        if not duplicated:
            break
        labels = [_short_label(s, parents) if label in duplicated else label for s, label in zip(sources, labels)]
    return labels
