"""Running a generator in a test-time mode, reproducibly, without changing it.

"eval" uses the batch-norm running statistics and no dropout; "train" (the official pix2pix test
script's behaviour unless `--eval`) normalises each image with its own statistics and keeps dropout
on, seeded per image by `image_seed` so a score never depends on batching.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from ..inference.fastpath import MODES, Mode, choose_runner
from ..nets import UNetGenerator
from ..util.errors import ConfigError
from ..util.seeds import image_seed

__all__ = ["MODES", "Mode", "Forward", "image_seed", "generator_mode", "run_generator", "forward_in_mode"]

Forward = Callable[[torch.Tensor, int], torch.Tensor]  # (edges batch, index of its first image) -> photos


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"test-time mode must be one of {MODES}, not {mode!r}")


@contextlib.contextmanager
def generator_mode(generator: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Put any module in test-time `mode` and restore it afterwards (the path for generators that
    are not a `UNetGenerator`; those go through `fastpath`).

    In "train" mode batch norm uses the statistics of the batch it sees but its running averages are
    left untouched (`track_running_stats` off for the duration), so evaluating never changes weights.
    """
    _check_mode(mode)
    was_training = {m: m.training for m in generator.modules()}
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    try:
        if mode == "eval":
            generator.eval()
        else:
            generator.train()
            for m in norms:
                m.track_running_stats = False
        yield generator
    finally:
        for m, flag in zip(norms, tracking):
            m.track_running_stats = flag
        for m, flag in was_training.items():
            m.train(flag)


def run_generator(generator: nn.Module, edges: torch.Tensor, *, mode: str, seed: int, first_index: int) -> torch.Tensor:
    """Generated photos for a batch from a module already in `mode` (see `generator_mode`).

    Train mode runs one image at a time (batch norm on that image's statistics, as the official
    test script's batch size of 1), with torch's RNG seeded by `image_seed` and the caller's
    random state restored afterwards.
    """
    if mode == "eval":
        return generator(edges)
    outputs = []
    devices = [edges.device] if edges.device.type == "cuda" else []
    for offset in range(len(edges)):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(image_seed(seed, first_index + offset))
            outputs.append(generator(edges[offset : offset + 1]))
    return torch.cat(outputs)


@contextlib.contextmanager
def forward_in_mode(
    generator: nn.Module, *, mode: Mode, seed: int, fast: bool, precision: str, device: torch.device
) -> Iterator[Forward]:
    """A function generating photos in test-time `mode`, fp32 in [-1, 1].

    A `UNetGenerator` runs through `fastpath.choose_runner` (the inference code's runner: batched
    even in train mode, each image normalised on its own statistics, dropout masks from one seeded
    generator per image; `fast` adds pre-packed weights and bf16 where native); other modules through
    `generator_mode`. Neither changes the generator's weights or flags.
    """
    _check_mode(mode)
    if isinstance(generator, UNetGenerator):
        runner = choose_runner(generator, mode=mode, fast=fast, device=device, precision=precision)

        def forward(edges: torch.Tensor, first: int) -> torch.Tensor:
            seeds = [image_seed(seed, first + i) for i in range(len(edges))] if mode == "train" else None
            return runner.run(edges, seeds)

        yield forward
    else:
        with generator_mode(generator, mode):
            yield lambda edges, first: run_generator(
                generator, edges, mode=mode, seed=seed, first_index=first
            ).float().clamp(-1, 1)
