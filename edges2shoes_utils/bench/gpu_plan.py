"""What `bench gpu` measures and how long it may take: the sizes (paper or `--quick`) and the budget.

The full plan: the paper-size networks at 256x256, training at batch 4, 16 and 64 in
fp16 (with a GradScaler), bf16 and fp32 (on TF32 tensor cores), inference at batch 1 and 64, the loader with 1, 2, 4 and 8
workers, and a torchrun launch over every visible GPU. `--quick` is the CPU dry run: the same code
paths on tiny sizes (ngf 8, 64x64, batch 1-2), so a test can prove every section works in seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..training.config import TrainConfig
from ..training.device import resolve_precision

NOT_RUN_BUDGET = "not run: time budget"
DEFAULT_BUDGET_S = 450.0  # 7.5 minutes: the whole command must finish in under 8 on one GPU
RESERVE_S = 10.0  # kept back for writing the results and removing the temporary files


@dataclass(frozen=True)
class GpuPlan:
    """Sizes and repeat counts for every section (see `make_plan`)."""

    quick: bool
    ngf: int  # generator and discriminator width
    image_size: int
    train_batches: tuple[int, ...]
    precisions: tuple[str, ...]
    steps: int  # timed training steps per row
    warmup: int  # untimed steps first (the first one is timed apart: compile, cuDNN autotuning;
                 # compiled rows take at least one more, as a second call may still recompile)
    compile_backend: str | None  # None: no torch.compile rows
    compile_rows: tuple[tuple[str, int], ...]  # (precision, batch), most useful first
    infer_batches: tuple[int, ...]
    infer_repeats: int
    infer_warmup: int
    loader_workers: tuple[int, ...]
    loader_files: int
    loader_pairs: int  # pairs timed per worker count
    loader_batch: int
    ddp_processes: int  # on CPU (gloo); on CUDA one process per visible GPU
    ddp_batch: int  # per process
    ddp_steps_per_epoch: int  # two epochs run; the second one's images/s is reported
    ddp_workers: int  # loader workers per process (-1: the training default)
    tests_timeout_s: float
    ddp_timeout_s: float

    @property
    def levels(self) -> int:
        return TrainConfig(image_size=self.image_size).resolved_levels()


def make_plan(quick: bool, device: torch.device, compile: bool | None = None) -> GpuPlan:
    """The paper-size plan, or the tiny `--quick` one. `compile` None: on, except that a quick run on
    a CPU compiles with dynamo's `eager` backend (graph capture only, no code generation: seconds,
    and no C++ compiler needed) instead of inductor."""
    cuda = device.type == "cuda"
    backend = None if compile is False else ("eager" if quick and not cuda else "inductor")
    precisions = ("fp16", "bf16", "fp32")
    if quick:
        return GpuPlan(
            quick=True, ngf=8, image_size=64, train_batches=(1, 2), precisions=precisions, steps=1, warmup=1,
            compile_backend=backend, compile_rows=(("fp32", 1),), infer_batches=(1, 2), infer_repeats=2,
            infer_warmup=1, loader_workers=(0, 1), loader_files=16, loader_pairs=16, loader_batch=4,
            ddp_processes=2, ddp_batch=2, ddp_steps_per_epoch=2, ddp_workers=0,
            tests_timeout_s=90.0, ddp_timeout_s=120.0,
        )
    batches = (4, 16, 64)
    first = resolve_precision("auto", device).name if cuda else "fp16"  # what training would pick here
    ordered = (first, *[p for p in precisions if p != first])
    return GpuPlan(
        quick=False, ngf=64, image_size=256, train_batches=batches, precisions=precisions, steps=10, warmup=3,
        compile_backend=backend, compile_rows=tuple((p, b) for p in ordered for b in batches),
        infer_batches=(1, 64), infer_repeats=10, infer_warmup=3, loader_workers=(1, 2, 4, 8), loader_files=256,
        loader_pairs=1024, loader_batch=16, ddp_processes=2, ddp_batch=16, ddp_steps_per_epoch=8, ddp_workers=-1,
        tests_timeout_s=180.0, ddp_timeout_s=150.0,
    )


class Budget:
    """The overall deadline. Work that cannot be stopped half-way (a compile, a timed row) starts
    only when its estimated time still fits; what does not fit is recorded as not run."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._start = clock()

    def elapsed(self) -> float:
        return self._clock() - self._start

    def remaining(self) -> float:
        """Seconds left for work, the reserve for writing the results already taken off."""
        return self.seconds - RESERVE_S - self.elapsed()

    def allows(self, estimate_s: float) -> bool:
        return self.remaining() >= estimate_s


@dataclass
class RunContext:
    """What every section gets: the plan, the device, the deadline, a temporary folder, and the
    results of the sections run before it (the loader is set against the training step's speed)."""

    plan: GpuPlan
    device: torch.device
    budget: Budget
    tmp: Path
    sections: dict[str, dict] = field(default_factory=dict)


__all__ = ["Budget", "DEFAULT_BUDGET_S", "GpuPlan", "NOT_RUN_BUDGET", "RunContext", "make_plan"]
