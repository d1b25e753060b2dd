"""Loading pairs in batches that carry the names of the files they had to skip.

Bad files never end a long run: `make_dataloader` skips an unreadable, truncated, non-2:1 or
oversized image, logs it, lists it in the batch's `skipped` field and in `loader.skipped` for the
epoch; with `strict=True` it stops instead, with the path and the reason. The dataset hands bad
files over as `Skipped` records (see `PairsDataset.__getitems__`); this module decides what to do
with them.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator, NamedTuple, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..util.errors import DataError, Skipped

log = logging.getLogger(__name__)


class PairBatch(NamedTuple):
    edges: torch.Tensor  # (B, 3, S, S) input images (edges for AtoB)
    photo: torch.Tensor  # (B, 3, S, S) target images (photos for AtoB)
    skipped: list[str]  # "path: reason" for each bad file dropped since the previous batch


def collate_pairs(items: Sequence[Any]) -> PairBatch:
    """Stack the good pairs of a batch; keep the reasons for the bad ones."""
    good = [item for item in items if not isinstance(item, Skipped)]
    skipped = [item.reason for item in items if isinstance(item, Skipped)]  # the reason names the file
    if not good:
        empty = torch.empty(0)
        return PairBatch(empty, empty, skipped)
    return PairBatch(torch.stack([g[0] for g in good]), torch.stack([g[1] for g in good]), skipped)


class PairLoader(DataLoader):
    """A DataLoader of PairBatch that skips bad files (or stops on them when `strict`).

    Batches are never empty: files skipped in a batch that had nothing left are reported with the
    next batch. `loader.skipped` lists every file skipped in the current (or last) epoch, for the
    end-of-epoch report; a warning is logged for each file and a summary at the end of the epoch.
    """

    def __init__(self, *args: Any, strict: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strict = strict
        self.skipped: list[str] = []

    def __iter__(self) -> Iterator[PairBatch]:  # type: ignore[override]
        self.skipped = []
        pending: list[str] = []
        for batch in super().__iter__():
            if batch.skipped:
                if self.strict:
                    raise DataError(batch.skipped[0])
                for reason in batch.skipped:
                    log.warning("skipping bad file %s", reason)
                self.skipped.extend(batch.skipped)
                pending.extend(batch.skipped)
            if batch.edges.shape[0] == 0:
                continue
            yield PairBatch(batch.edges, batch.photo, pending)
            pending = []
        if self.skipped:
            log.warning("skipped %d bad file(s) this epoch", len(self.skipped))


def default_num_workers(processes: int = 1) -> int:
    """Loader processes for each of `processes` training processes on this machine.

    At most 4 (more rarely helps a 256x256 JPEG pipeline), never more than this process's share of
    the cores, and one core stays with the training loop on machines with more than two cores.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores // max(1, processes) - (1 if cores > 2 else 0)))


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int | None = None,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    strict: bool | None = None,
    generator: torch.Generator | None = None,
    pin_memory: bool | None = None,
) -> PairLoader:
    """A loader of `PairBatch(edges, photo, skipped)` over a PairsDataset (or a Subset of one).

    `num_workers` defaults to `default_num_workers()`; workers persist between epochs. Memory is
    pinned when CUDA is available. Pass a `sampler` (e.g. DistributedSampler under DDP) instead of
    `shuffle`. `strict` defaults to the dataset's own setting.
    """
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if strict is None:
        strict = bool(getattr(dataset, "strict", getattr(getattr(dataset, "dataset", None), "strict", False)))
    return PairLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_pairs,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=generator,
        strict=strict,
    )


__all__ = ["PairBatch", "PairLoader", "collate_pairs", "default_num_workers", "make_dataloader"]
