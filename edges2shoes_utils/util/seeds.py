"""Seeds derived from a run's one seed: one per process rank, per evaluated image, per training pair.

Each derived seed mixes the run seed with an index through the prime `SEED_STRIDE`, so different
ranks, images or (epoch, pair) positions draw different random numbers. The formulas are part of
what a run means: changing one changes the dropout and jitter of every existing run, and a resumed
run would no longer match the run that was never stopped.
"""

from __future__ import annotations

import random

import numpy as np
import torch

SEED_STRIDE = 1_000_003  # a prime larger than any rank, epoch count or image index in practice
_EPOCH_STRIDE = 10_000_019  # a second prime, spreading the epochs apart before the pair index is added


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (legacy global) and torch's RNGs with `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int) -> int:
    """The dropout seed of process `rank` in a DDP run: the weights start identical on every rank,
    the dropout noise differs."""
    return seed + SEED_STRIDE * rank


def image_seed(seed: int, index: int) -> int:
    """The dropout seed of dataset image `index` in train mode: fixed per (seed, image), so a score
    never depends on the batch size, on `limit` or on the images evaluated before it."""
    return seed * SEED_STRIDE + index


def pair_seed(seed: int, epoch: int, index: int) -> int:
    """The jitter seed of training pair `index` in `epoch`: whichever loader worker reads the pair,
    its crop and flip are the same, so a resumed run sees the same pictures."""
    return ((seed * SEED_STRIDE + epoch) * _EPOCH_STRIDE + index) % 2**63


__all__ = ["SEED_STRIDE", "seed_everything", "rank_seed", "image_seed", "pair_seed"]
