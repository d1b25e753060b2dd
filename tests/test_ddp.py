"""DistributedDataParallel training: two CPU processes with the gloo backend, as torchrun would start them.

Each process runs `train()` with RANK / LOCAL_RANK / WORLD_SIZE set; afterwards the generators of
both ranks must hold identical parameters that have moved from their (identical) initial values,
the ranks must have trained on disjoint halves of the data, and only rank 0 writes the run folder.
A run stopped mid-epoch and resumed must continue as if never stopped, each rank with its own
dropout noise (last.pt holds every rank's RNG states).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from edges2shoes_utils.weights import formats
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.training import StepContext, TrainConfig, train
from edges2shoes_utils.util.servers import free_port

pytestmark = pytest.mark.slow


def _worker(rank: int, world: int, port: int, settings: dict, results: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    initial: dict = {}
    seen: list = []

    def watch(ctx) -> None:
        if ctx.step == 0:
            initial.update({k: v.detach().clone() for k, v in ctx.networks.generator.named_parameters()})
        seen.append(ctx.edges.sum(dim=(1, 2, 3)).clone())  # a fingerprint of each image

    result = train(TrainConfig(**settings), before_step=[watch])
    torch.save(
        {
            "initial": initial,
            "final": {k: v.detach().clone() for k, v in result.generator.named_parameters()},
            "steps": result.steps,
            "fingerprints": torch.cat(seen),
        },
        Path(results) / f"rank{rank}.pt",
    )


def test_two_processes_train_one_model(tmp_path):
    data = make_synthetic(tmp_path / "shoes", n=8, size=64, seed=0, n_val=2)
    run = tmp_path / "run"
    settings = dict(
        data=str(data), out=str(run), epochs=2, batch_size=2, image_size=64, ngf=8, ndf=8, levels=6,
        num_workers=0, progress=False, sample_count=2, checkpoint_every=0, device="cpu",
    )
    mp.spawn(_worker, args=(2, free_port(), settings, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    assert [r["steps"] for r in ranks] == [4, 4]  # 8 pairs / (2 per process x 2 processes) x 2 epochs
    for name, value in ranks[0]["initial"].items():
        assert torch.equal(value, ranks[1]["initial"][name])
    for name, value in ranks[0]["final"].items():
        assert torch.equal(value, ranks[1]["final"][name]), f"{name} differs between ranks"
    moved = [n for n, v in ranks[0]["final"].items() if not torch.equal(v, ranks[0]["initial"][n])]
    assert len(moved) == len(ranks[0]["final"])

    # Per epoch the two ranks saw disjoint halves of the 8 pairs (fingerprints differ).
    per_epoch = [r["fingerprints"].view(2, 4) for r in ranks]
    for epoch in range(2):
        together = torch.cat([per_epoch[0][epoch], per_epoch[1][epoch]])
        assert len(set(together.tolist())) == 8

    # Rank 0 wrote one run folder whose last checkpoint holds the shared weights.
    state = formats.load_checkpoint(run / "last.pt")
    assert state["step"] == 4 and state["extra"]["world_size"] == 2
    for name, value in ranks[0]["final"].items():
        assert torch.equal(state["generator"][name], value)
    assert sorted(p.name for p in run.glob("generator_*.pt")) == ["generator_0.pt", "generator_1.pt"]


# --------------------------------------------------------------------------------------------------
# Stop and resume under DDP.


class DropoutMasks:
    """A before_step hook recording, per step, which units the generator's first dropout layer zeroed."""

    def __init__(self) -> None:
        self.masks: dict[int, torch.Tensor] = {}
        self.step = -1
        self.hooked = False

    def __call__(self, ctx: StepContext) -> None:
        if not self.hooked:
            dropout = next(m for m in ctx.networks.generator.modules() if isinstance(m, nn.Dropout))
            dropout.register_forward_hook(self._record)
            self.hooked = True
        self.step = ctx.step

    def _record(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self.masks[self.step] = (output == 0).flatten().clone()


def _run(config: TrainConfig) -> dict:
    masks = DropoutMasks()
    result = train(config, before_step=[masks])
    return {
        "masks": masks.masks,
        "params": {f"{net}.{k}": v.detach().clone() for net, m in (("G", result.generator), ("D", result.discriminator))
                   for k, v in m.named_parameters()},
        "steps": result.steps,
    }


def _resume_worker(rank: int, world: int, port: int, settings: dict, stop_at: int, folder: str) -> None:
    """Three runs in one process group: never stopped; stopped mid-epoch then resumed; and the same
    stopped checkpoint without the other ranks' RNG states (as a Ctrl-C save leaves it) resumed."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    root = Path(folder)
    dist.init_process_group("gloo", rank=rank, world_size=world)  # train() joins it and leaves it open
    try:
        straight = _run(TrainConfig(**settings, out=str(root / "straight")))
        _run(TrainConfig(**settings, out=str(root / "stopped"), max_steps=stop_at))
        if rank == 0:
            state = formats.load_checkpoint(root / "stopped" / "last.pt")
            state["extra"].pop("rank_rng")
            formats.save_checkpoint(root / "rank0-only" / "last.pt", state)
        dist.barrier()
        resumed = _run(TrainConfig.from_run(root / "stopped", max_steps=0))
        rank0_only = _run(TrainConfig.from_run(root / "rank0-only", max_steps=0))
    finally:
        dist.destroy_process_group()
    torch.save({"straight": straight, "resumed": resumed, "rank0_only": rank0_only}, root / f"rank{rank}.pt")


def test_resume_gives_each_rank_its_own_dropout_noise(tmp_path):
    data = make_synthetic(tmp_path / "shoes", n=16, size=64, seed=0, n_val=2)
    stop_at = 5  # 4 steps per epoch (16 pairs / 2 per process / 2 processes): one step into epoch 1
    settings = dict(
        data=str(data), epochs=2, batch_size=2, image_size=64, ngf=8, ndf=8, levels=6, num_workers=0,
        progress=False, sample_count=0, save_epoch_weights=False, checkpoint_every=0, device="cpu",
    )
    mp.spawn(_resume_worker, args=(2, free_port(), settings, stop_at, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    after_stop = range(stop_at, 8)

    for rank in ranks:
        straight, resumed = rank["straight"], rank["resumed"]
        assert straight["steps"] == resumed["steps"] == 8
        assert sorted(resumed["masks"]) == list(after_stop)
        for step in after_stop:  # each rank drew the masks it would have drawn without the stop...
            assert torch.equal(resumed["masks"][step], straight["masks"][step]), step
        for name, value in straight["params"].items():  # ...so the weights are bit-identical
            assert torch.equal(resumed["params"][name], value), name
    for step in after_stop:  # ...and the two ranks' masks differ
        assert not torch.equal(ranks[0]["resumed"]["masks"][step], ranks[1]["resumed"]["masks"][step])

    saved = formats.load_checkpoint(tmp_path / "stopped" / "last.pt")
    assert len(saved["extra"]["rank_rng"]) == 2
    assert not torch.equal(saved["extra"]["rank_rng"][0]["torch"], saved["extra"]["rank_rng"][1]["torch"])

    # Without rank 1's saved state: rank 0 continues exactly, rank 1 from a fresh seed, still its own noise.
    first, second = ranks[0]["rank0_only"]["masks"], ranks[1]["rank0_only"]["masks"]
    for step in after_stop:
        assert torch.equal(first[step], ranks[0]["straight"]["masks"][step])
        assert not torch.equal(second[step], ranks[1]["straight"]["masks"][step])
        assert not torch.equal(first[step], second[step])
