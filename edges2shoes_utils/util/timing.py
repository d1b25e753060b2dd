"""Timing several ways of doing one thing, interleaved round by round, so that a change in machine
load during the run hits every way alike and their ratios stay fair."""

from __future__ import annotations

import time
from typing import Callable

import torch


def interleaved_times(calls: dict[str, Callable[[], object]], warmup: int, repeats: int,
                      device: torch.device) -> dict[str, list[float]]:
    """Milliseconds of each call per round, after `warmup` untimed rounds (CUDA work is waited for)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(max(warmup, 1)):
        for call in calls.values():
            call()
    sync()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(repeats, 1)):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            sync()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times
