"""What training reads: the order of epoch e and the jitter of each pair are functions of the seed alone.

The order comes from `ResumableSampler` (a permutation of (seed, epoch), split across ranks, able to
start part-way through an epoch). `EpochTagged` sends the epoch along with each index into the
loader workers, and `SeededItems` seeds each pair's jitter with (seed, epoch, index), so whichever
worker loads a pair, and whether the run was stopped and resumed or not, it looks the same.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..data.discovery import resolve_dataset_root
from ..data.loader import PairLoader, default_num_workers, make_dataloader
from ..data.pairs import PairsDataset
from ..util.errors import ConfigError, Edges2ShoesError
from ..util.seeds import pair_seed, seed_everything
from .config import TrainConfig
from .distributed import DistInfo, ResumableSampler


class EpochTagged(torch.utils.data.Sampler):
    """Yields `epoch * n + i` for each index i of the wrapped sampler, so the epoch travels with the
    index into loader workers (which, being persistent, never see later changes to the dataset)."""

    def __init__(self, sampler: ResumableSampler, n: int) -> None:
        self.sampler = sampler
        self.n = n

    def __iter__(self) -> Iterator[int]:
        offset = self.sampler.epoch * self.n
        return (offset + int(i) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch, NumPy and Python RNGs for one item and restore them afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            seed_everything(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class SeededItems(torch.utils.data.Dataset):
    """Makes the random jitter of pair i in epoch e a function of (seed, e, i), whichever worker
    loads it, and keeps loading from disturbing the training process's own RNG (dropout).

    Takes the tagged indices of `EpochTagged`; bad files keep the dataset's own handling (its
    `__getitems__` turns them into skip markers for the loader).
    """

    def __init__(self, dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.strict = getattr(dataset, "strict", False)

    def __len__(self) -> int:
        return len(self.dataset)

    def _item_seed(self, tagged: int) -> tuple[int, int]:
        epoch, index = divmod(int(tagged), len(self.dataset))
        return index, pair_seed(self.seed, epoch, index)

    def __getitem__(self, tagged: int):
        index, seed = self._item_seed(tagged)
        with _seeded(seed):
            return self.dataset[index]

    def __getitems__(self, tagged_indices):
        batched = getattr(self.dataset, "__getitems__", None)
        items = []
        for tagged in tagged_indices:
            index, seed = self._item_seed(tagged)
            with _seeded(seed):
                items.extend(batched([index]) if batched else [self.dataset[index]])
        return items


# --------------------------------------------------------------------------------------------------
# The feed of one run.


@dataclass
class TrainingFeed:
    root: Path  # the dataset folder
    dataset: PairsDataset  # the training split, with jitter
    sampler: ResumableSampler  # this rank's order; `set_position(epoch, start)` before each epoch
    loader: PairLoader  # batches of (edges, photo, skipped) in the sampler's order
    num_workers: int  # loader processes
    steps_per_epoch: int  # full batches in this rank's share of an epoch
    sample_edges: torch.Tensor | None = None  # the fixed pairs of the per-epoch grid (None: no grid)
    sample_photos: torch.Tensor | None = None


def build_feed(config: TrainConfig, info: DistInfo) -> TrainingFeed:
    """Find the data, check it holds a batch per process, and build this rank's loader."""
    root = resolve_dataset_root(config.data)
    dataset = PairsDataset(
        root, split="train", image_size=config.image_size, direction=config.direction, strict=config.strict_data
    )
    if len(dataset) == 0:
        raise ConfigError(f"{root}: the training split holds no image pairs")
    items = SeededItems(dataset, config.seed)
    sampler = ResumableSampler(dataset, info, shuffle=True, seed=config.seed)
    if sampler.num_samples < config.batch_size:
        raise ConfigError(
            f"{root}: {len(dataset)} training pairs give {sampler.num_samples} per process, "
            f"fewer than one batch of {config.batch_size}; lower --batch-size"
        )
    workers = config.num_workers if config.num_workers >= 0 else default_num_workers(info.world_size)
    loader = make_dataloader(
        items, batch_size=config.batch_size, shuffle=False, num_workers=workers,
        sampler=EpochTagged(sampler, len(dataset)), drop_last=True, strict=config.strict_data,
        # the loader draws its worker base seed from here, not from the global RNG (dropout)
        generator=torch.Generator().manual_seed(config.seed),
    )
    feed = TrainingFeed(
        root=Path(root), dataset=dataset, sampler=sampler, loader=loader, num_workers=workers,
        steps_per_epoch=sampler.num_samples // config.batch_size,
    )
    if config.sample_count:
        feed.sample_edges, feed.sample_photos = load_sample_pairs(config, root)
    return feed


def load_sample_pairs(config: TrainConfig, root: str | Path) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Fixed pairs for the per-epoch grid: the first val pairs (train pairs without jitter if
    there is no val split). Loading them leaves the global RNG as it was."""
    try:
        pairs = PairsDataset(root, split="val", image_size=config.image_size, jitter=False, direction=config.direction)
    except Edges2ShoesError:
        pairs = PairsDataset(root, split="train", image_size=config.image_size, jitter=False, direction=config.direction)
    count = min(config.sample_count, len(pairs))
    if count == 0:
        return None, None
    loader = make_dataloader(
        torch.utils.data.Subset(pairs, range(count)), batch_size=count, shuffle=False, num_workers=0
    )
    with torch.random.fork_rng(devices=[]):
        batch = next(iter(loader))
    if len(batch.edges):
        return batch.edges, batch.photo
    return None, None


__all__ = ["EpochTagged", "SeededItems", "TrainingFeed", "build_feed", "load_sample_pairs"]
