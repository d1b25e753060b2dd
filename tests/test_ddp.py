"""DistributedDataParallel training: two CPU processes with the gloo backend, as torchrun would start them.

Each process runs `train()` with RANK / LOCAL_RANK / WORLD_SIZE set; afterwards the generators of
both ranks must hold identical parameters that have moved from their (identical) initial values,
the ranks must have trained on disjoint halves of the data, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from edges2shoes_utils.checkpoints import formats as checkpoints
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.training import TrainConfig, train

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world: int, port: int, settings: dict, results: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    initial: dict = {}
    seen: list = []

    def watch(ctx) -> None:
        if ctx.step == 0:
            initial.update({k: v.detach().clone() for k, v in ctx.generator.named_parameters()})
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
    mp.spawn(_worker, args=(2, _free_port(), settings, str(tmp_path)), nprocs=2, join=True)
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
    state = checkpoints.load_checkpoint(run / "last.pt")
    assert state["step"] == 4 and state["extra"]["world_size"] == 2
    for name, value in ranks[0]["final"].items():
        assert torch.equal(state["generator"][name], value)
    assert sorted(p.name for p in run.glob("generator_*.pt")) == ["generator_0.pt", "generator_1.pt"]
