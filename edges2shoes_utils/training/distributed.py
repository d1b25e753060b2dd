"""Multi-GPU training with DistributedDataParallel under `torchrun`, and the resumable sampler.

`torchrun --nproc_per_node 2 -m edges2shoes_utils train ...` starts one process per GPU and sets
RANK, LOCAL_RANK and WORLD_SIZE (plus MASTER_ADDR/PORT); without them training is one process.
Backend: NCCL on GPUs, gloo on CPU (the tests run two CPU processes with gloo).

The sampler is the whole story of data order: epoch `e` visits a permutation that is a pure
function of (seed, e), split across ranks like `DistributedSampler`, and can start part-way
through, so a resumed run skips exactly the samples it had already trained on.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ..util.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0  # global rank of this process
    local_rank: int = 0  # rank on this machine: picks the GPU
    world_size: int = 1  # number of processes

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 prints and writes files."""
        return self.rank == 0


def dist_info_from_env(env: dict[str, str] | None = None) -> DistInfo:
    """Read torchrun's RANK / LOCAL_RANK / WORLD_SIZE (absent: a single process)."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise ConfigError(f"bad torchrun environment (RANK/LOCAL_RANK/WORLD_SIZE): {error}") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank, local, world)


def init_process_group(info: DistInfo, device: torch.device) -> bool:
    """Join the process group when running under torchrun; returns True if this call created it."""
    if not info.enabled or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend, rank=info.rank, world_size=info.world_size, timeout=timedelta(minutes=30)
    )
    return True


def destroy_process_group(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all ranks in place (a no-op for one process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(value, info: DistInfo):
    """Rank 0's value on every rank (e.g. a decision only rank 0 can make)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_lists(values: list, info: DistInfo) -> list:
    """Every rank's `values` joined, in rank order (this rank's own list for one process)."""
    if not info.enabled:
        return list(values)
    gathered: list = [None] * info.world_size
    dist.all_gather_object(gathered, list(values))
    return [value for part in gathered for value in part]


def wrap_ddp(module: nn.Module, device: torch.device) -> DistributedDataParallel:
    """`module` under DDP with per-GPU batch norm: no buffer broadcasts, so each GPU normalises over
    its own batch like a single-GPU run; rank 0's running statistics are the ones saved."""
    ids = [device.index] if device.type == "cuda" else None
    options: dict[str, Any] = dict(device_ids=ids, gradient_as_bucket_view=True)
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        options["forward_sync_buffers"] = False  # newer PyTorch; buffers still match at start
    else:
        options["broadcast_buffers"] = False
    return DistributedDataParallel(module, **options)


# --------------------------------------------------------------------------------------------------
# Data order.


class ResumableSampler(DistributedSampler):
    """`DistributedSampler` (shuffled by seed + epoch, padded so every rank gets as many samples)
    that can skip the first `start` samples of this rank's share of the epoch.

    Used for one process too (num_replicas=1), so single-GPU and multi-GPU runs share one
    definition of "the order of epoch e".
    """

    def __init__(self, dataset, info: DistInfo, *, shuffle: bool = True, seed: int = 0) -> None:
        super().__init__(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed
        )
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Epoch `epoch`, beginning after the first `start` samples of this rank's share."""
        self.set_epoch(epoch)
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside this rank's {self.num_samples} samples")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start
