"""Training pix2pix (Isola et al. 2017, arXiv 1611.07004) on edges2shoes: one process or DDP.

    from edges2shoes_utils.training import TrainConfig, train
    result = train(TrainConfig(data="edges2shoes", out="runs/shoes", epochs=15, batch_size=4))

Each step follows the paper: D learns to tell (edges, photo) from (edges, G(edges)), then G
learns to fool the updated D while staying close to the photo in L1. Adam (lr 2e-4, betas
0.5/0.999) for both, optionally decayed linearly to zero over the last epochs.

A run folder holds `config.json`, `last.pt` (the resumable checkpoint: saved every
`checkpoint_every` steps, at each epoch end and on Ctrl-C), `generator_{epoch}.pt` and
`discriminator_{epoch}.pt` per epoch (epochs from 0, the original notebook's names),
`losses.csv` / `losses.json` / `losses.png`, and `samples/epoch_{epoch}.png`.

Exact resume: the data order of epoch e is a function of (seed, e) alone, each pair's random
jitter a function of (seed, e, index), and the checkpoint holds weights, optimisers, GradScaler,
RNG states (every rank's, under DDP) and the position inside the epoch, so stopping and resuming
gives the same weights as never stopping, with one process or several (a Ctrl-C save under DDP
keeps rank 0's RNG state only: the other ranks then resume with fresh dropout noise).
Ctrl-C or SIGTERM finishes the current step, saves last.pt and exits; a NaN/inf loss stops with a
message and never overwrites the last good checkpoint; every file is written atomically, so
`kill -9` loses at most the steps since the last save.

Multi-GPU (DDP): `--batch-size` is per GPU and the data are split across GPUs each epoch.
Batch norm stays per GPU by default: each GPU normalises over its own batch, so with batch 4 per
GPU the statistics are those of the paper's batch 4 while gradients average over all GPUs;
`--sync-bn` pools the statistics across GPUs instead (SyncBatchNorm; slower, one all-reduce per
norm layer). Only rank 0 prints and writes files.

The parts, in the order a run uses them:

    config.py         TrainConfig: every option, its flag and help; what may change on resume
    device.py         CUDA or CPU, GPU checks, number formats (the --precision words)
    distributed.py    torchrun's environment, the process group, DDP wrapping, the resumable sampler
    initial_weights.py  --init: published weights to start from, their architecture
    networks.py       Networks: G and D with their optimisers and scaler; wrapped for DDP and compile
    feed.py           the training data: order and jitter as functions of the seed
    step.py           one pix2pix step (shared with the benchmark), the learning-rate schedule
    checkpointing.py  last.pt: its layout, where the run stands, saving and resuming
    run_log.py        messages, the progress bar, losses.csv/json/png, sample grids
    interrupts.py     Ctrl-C and SIGTERM: stop between steps
    loop.py           train(): the epochs, the steps, sync points, NaN/inf checks
    command_line.py   the `train` command
"""

from __future__ import annotations

from .config import CHECKPOINT_NAME, CONFIG_NAME, TrainConfig
from .loop import StepContext, TrainingDiverged, TrainResult, train
from .networks import Networks, build_networks
from .step import LOSS_NAMES, lr_factor, train_step

__all__ = [
    "TrainConfig",
    "train",
    "TrainResult",
    "StepContext",
    "TrainingDiverged",
    "Networks",
    "build_networks",
    "train_step",
    "lr_factor",
    "LOSS_NAMES",
    "CHECKPOINT_NAME",
    "CONFIG_NAME",
]
