"""What an evaluation produces: per-image scores, the pictures kept for the report, and the summary
of one set of weights; plus the published figures they can be compared with.

Scoring (`scoring`) fills these records and the report (`report`) reads them, so both import this
module and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.synthetic import MARKER as SYNTHETIC_MARKER

# Published edges2shoes FIDs on the 200 val images (MMagic's evaluation of the official pix2pix
# generator, and MMagic's own retrain at batch 4 for 190k iterations); both in train mode.
REFERENCE_FID: dict[str, float] = {
    "official pix2pix edges2shoes generator (evaluated by MMagic)": 75.8,
    "MMagic pix2pix retrain": 84.4,
}
REAL_VAL_SIZE = 200  # images in edges2shoes/val


@dataclass
class ImageScore:
    index: int  # position in the dataset
    name: str  # file name where the dataset knows it
    l1: float
    psnr: float | None  # None for identical images (infinite PSNR)
    ssim: float
    lpips: float | None = None


@dataclass
class Sample:
    """One val image kept for pictures: uint8 CHW tensors (small), with its score."""

    index: int
    name: str
    edges: torch.Tensor
    photo: torch.Tensor
    fake: torch.Tensor
    l1: float


@dataclass
class EvalResult:
    name: str  # label in tables, e.g. "generator_3" or "pix2pix-official"
    source: str | None  # what was loaded (path or named source)
    mode: str
    seed: int
    image_size: int
    scores: list[ImageScore]
    summary: dict[str, float | None]  # l1, psnr, ssim, lpips, fid (None = not computed)
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # metric -> reason
    skipped_files: list[str] = field(default_factory=list)  # "path: reason"
    seconds: float = 0.0  # wall time of the whole evaluation
    generator_seconds: float = 0.0  # wall time spent in the generator alone
    samples: list[Sample] = field(default_factory=list)  # the first images, for the grid
    best: list[Sample] = field(default_factory=list)  # lowest L1 first
    worst: list[Sample] = field(default_factory=list)  # highest L1 first
    epoch: int | None = None

    @property
    def n_images(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pictures, JSON-ready."""
        return {
            "name": self.name,
            "source": self.source,
            "epoch": self.epoch,
            "mode": self.mode,
            "seed": self.seed,
            "image_size": self.image_size,
            "n_images": self.n_images,
            "summary": self.summary,
            "skipped_metrics": self.skipped_metrics,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 3),
            "generator_seconds": round(self.generator_seconds, 3),
            "images_per_second": round(self.n_images / self.generator_seconds, 2) if self.generator_seconds else None,
            "best": [s.name for s in self.best],
            "worst": [s.name for s in self.worst],
        }


def is_real_val_set(dataset: Any, results: Sequence[EvalResult]) -> bool:
    """True when the results cover the whole edges2shoes val split (200 pairs), the set the
    published FIDs were measured on. The synthetic set marks itself, so it never passes."""
    root = getattr(dataset, "root", None)
    if root is not None and (Path(root) / SYNTHETIC_MARKER).exists():
        return False
    split = getattr(dataset, "split", "val")
    return split == "val" and len(dataset) == REAL_VAL_SIZE and all(r.n_images == REAL_VAL_SIZE for r in results)
