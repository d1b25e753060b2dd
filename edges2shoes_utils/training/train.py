"""Training pix2pix (Isola et al. 2017, arXiv 1611.07004) on edges2shoes: one process or DDP.

    python -m edges2shoes_utils train --data DIR --out runs/shoes --epochs 15 --batch-size 4
    torchrun --nproc_per_node 2 -m edges2shoes_utils train --data DIR --out runs/shoes   # T4 x2
    python -m edges2shoes_utils train --resume runs/shoes                               # continue

Each step follows the paper: D learns to tell (edges, photo) from (edges, G(edges)), then G
learns to fool the updated D while staying close to the photo in L1. Adam (lr 2e-4, betas
0.5/0.999) for both, optionally decayed linearly to zero over the last epochs.

A run folder holds `config.json`, `last.pt` (the resumable checkpoint: saved every
`checkpoint_every` steps, at each epoch end and on Ctrl-C), `generator_{epoch}.pt` and
`discriminator_{epoch}.pt` per epoch (epochs from 0, the original notebook's names),
`losses.csv` / `losses.json` / `losses.png`, and `samples/epoch_{epoch}.png`.

Exact resume: the data order of epoch e is a function of (seed, e) alone, each pair's random
jitter a function of (seed, e, index), and the checkpoint holds weights, optimisers, GradScaler,
RNG states and the position inside the epoch, so stopping and resuming gives the same weights as
never stopping (single process; under DDP the data order is exact, the dropout noise is not).
Ctrl-C or SIGTERM finishes the current step, saves last.pt and exits; a NaN/inf loss stops with a
message and never overwrites the last good checkpoint; every file is written atomically, so
`kill -9` loses at most the steps since the last save.

Multi-GPU (DDP): `--batch-size` is per GPU and the data are split across GPUs each epoch.
Batch norm stays per GPU by default: each GPU normalises over its own batch, so with batch 4 per
GPU the statistics are those of the paper's batch 4 while gradients average over all GPUs;
`--sync-bn` pools the statistics across GPUs instead (SyncBatchNorm; slower, one all-reduce per
norm layer). Only rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import inspect
import io
import json
import os
import random
import signal
import threading
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..checkpoints import formats as checkpoints
from ..util.atomic import atomic_write_text
from .device import (
    AMP_CHOICES,
    Precision,
    check_cuda_supported,
    configure_backends,
    make_adam,
    pick_device,
    resolve_precision,
)
from .distributed import (
    DistInfo,
    ResumableSampler,
    all_reduce_sum,
    barrier,
    broadcast_object,
    destroy_process_group,
    dist_info_from_env,
    init_process_group,
)
from ..util.errors import ConfigError, Edges2ShoesError
from ..nets.losses import DEFAULT_LAMBDA_L1, discriminator_loss, generator_loss
from ..nets.models import (
    DiscriminatorConfig,
    GeneratorConfig,
    PatchGANDiscriminator,
    UNetGenerator,
    count_parameters,
)

LOSS_NAMES = ("g_adversarial", "g_l1", "d_real", "d_fake")
LOSS_TITLES = {"g_adversarial": "G adversarial", "g_l1": "G L1", "d_real": "D real", "d_fake": "D fake"}
CHECKPOINT_NAME = "last.pt"
CONFIG_NAME = "config.json"


class TrainingDiverged(Edges2ShoesError):
    """A loss or a weight became NaN or infinite: training stops, the last good checkpoint stays."""


# --------------------------------------------------------------------------------------------------
# The run config: every field is a command-line flag (`--lambda-l1`, `--no-channels-last`, ...).


def _option(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class TrainConfig:
    # Data and output.
    data: Optional[str] = _option(None, "dataset folder with train/ (and val/) A|B images; default: find it (Kaggle input, kagglehub cache)")
    out: str = _option("runs/train", "run folder: checkpoints, epoch weights, logs, sample grids")
    resume: Optional[str] = _option(None, "continue the run in this folder (or this last.pt) exactly where it stopped")
    strict_data: bool = _option(False, "stop at the first unreadable image instead of skipping it")
    direction: str = _option("AtoB", "AtoB: edges (left half) -> photo (right half); BtoA the reverse", choices=("AtoB", "BtoA"))
    image_size: int = _option(256, "training resolution (square); the paper's is 256")
    # Length and batch.
    epochs: int = _option(15, "passes over the training set (the paper trains edges2shoes for 15; the original notebook 10)")
    batch_size: int = _option(4, "images per step per process (the paper's edges2shoes batch is 4); under DDP the global batch is this x GPUs")
    max_steps: int = _option(0, "stop after this many optimiser steps in total (0 = no limit; for smoke runs and tests)")
    # Objective and optimiser.
    lambda_l1: float = _option(DEFAULT_LAMBDA_L1, "weight of the L1 term (the original notebook's 10; the paper's 100)")
    gan_mode: str = _option("bce", "adversarial loss: bce (the paper) or lsgan", choices=("bce", "lsgan"))
    d_loss_halve: bool = _option(False, "halve D's loss like the official code (slows D down); default sums real + fake like the original notebook")
    lr: float = _option(2e-4, "Adam learning rate for G and D (the paper's 2e-4)")
    betas: tuple[float, float] = _option((0.5, 0.999), "Adam betas (the paper's 0.5, 0.999)")
    decay_epochs: int = _option(0, "decay the learning rate linearly towards zero over the last N epochs (0 = constant)")
    seed: int = _option(0, "seeds weights, data order, jitter and dropout")
    # Networks.
    ngf: int = _option(64, "generator width (64 = paper); smaller trains faster, e.g. 8 or 16 for CPU demos")
    ndf: int = _option(64, "discriminator width (64 = paper)")
    levels: Optional[int] = _option(None, "U-Net down-sampling levels; default: as many as the image size allows (8 for 256)")
    norm: str = _option("batch", "normalisation in both networks (the paper: batch)", choices=("batch", "instance", "none"))
    # Speed.
    device: str = _option("auto", "auto (CUDA if present), cuda or cpu", choices=("auto", "cuda", "cpu"))
    amp: str = _option("auto", "mixed precision: auto (GPU: bf16 on compute capability >= 8, else fp16 + GradScaler; CPU: see --cpu-bf16), fp16, bf16, off", choices=AMP_CHOICES)
    cpu_bf16: bool = _option(False, "on CPU with --amp auto, run under bf16 autocast (faster on CPUs with AVX512-bf16/AMX; changes numerics)")
    channels_last: bool = _option(True, "NHWC memory layout on CUDA (tensor cores prefer it); CPU runs keep NCHW (compare both with `bench train --channels-last`)")
    compile: bool = _option(False, "torch.compile both networks (slow first steps, faster after)")
    num_workers: int = _option(-1, "data loading processes per GPU (-1 = min(4, CPUs per process, minus one for the loop on machines with more than 2))")
    sync_bn: bool = _option(False, "DDP: batch-norm statistics over all GPUs (SyncBatchNorm); default per-GPU, so each GPU normalises over its own batch_size images exactly like a single-GPU run")
    # What you see and what is kept.
    log_interval: int = _option(20, "steps between progress-bar loss updates and NaN checks")
    checkpoint_every: int = _option(1000, "steps between saves of last.pt (also saved at every epoch end and on Ctrl-C; 0 = epoch ends only)")
    save_epoch_weights: bool = _option(True, "write generator_{epoch}.pt / discriminator_{epoch}.pt after every epoch")
    sample_count: int = _option(4, "fixed val pairs drawn in the per-epoch sample grid (0 = no grid)")
    sample_mode: str = _option("train", "how the grid runs G: train (batch statistics and dropout, the official test default) or eval (running statistics)", choices=("train", "eval"))
    progress: bool = _option(True, "show a tqdm progress bar (rank 0 only)")

    def resolved_levels(self) -> int:
        """Explicit `levels`, else how many times the image size halves evenly (8 for 256, 6 for 64)."""
        if self.levels is not None:
            return self.levels
        levels, size = 0, self.image_size
        while size % 2 == 0 and size > 1:
            size //= 2
            levels += 1
        return levels

    def validate(self) -> None:
        problems = []
        if self.image_size < 4:
            problems.append(f"image_size must be at least 4, got {self.image_size}")
        elif self.resolved_levels() < 2 or self.image_size % (2 ** self.resolved_levels()):
            problems.append(
                f"image_size {self.image_size} does not fit a U-Net with {self.resolved_levels()} levels "
                "(it must be a multiple of 2**levels, with levels >= 2); use a power of two such as 256"
            )
        elif self.levels is None and self.resolved_levels() < 5:
            # Sizes like 100 halve only twice: the derived U-Net would be a shallow toy, not pix2pix.
            problems.append(
                f"image_size {self.image_size} halves evenly only {self.resolved_levels()} times, which would give a "
                "U-Net too shallow for pix2pix; use a power of two from 32 up (64, 128, 256), or set --levels explicitly"
            )
        for name in ("epochs", "batch_size", "ngf", "ndf", "log_interval"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_steps", "checkpoint_every", "sample_count", "decay_epochs"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.decay_epochs > self.epochs:
            problems.append(f"decay_epochs ({self.decay_epochs}) cannot exceed epochs ({self.epochs})")
        if self.lr <= 0 or self.lambda_l1 < 0:
            problems.append(f"lr must be positive and lambda_l1 non-negative (got {self.lr}, {self.lambda_l1})")
        if problems:
            raise ConfigError("; ".join(problems))

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(ngf=self.ngf, levels=self.resolved_levels(), norm=self.norm)

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(ndf=self.ndf, norm=self.norm)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown training options {', '.join(unknown)}")
        values = dict(values)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)

    @classmethod
    def from_run(cls, run: str | os.PathLike, **overrides: Any) -> "TrainConfig":
        """The config a run was started with (its config.json, else its last.pt), with `overrides`,
        set up to resume it: `resume` and `out` point at the run."""
        run_dir = _run_dir_of(Path(run))
        config_path = run_dir / CONFIG_NAME
        if config_path.is_file():
            try:
                saved = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ConfigError(f"{config_path}: not a readable run config ({error})") from None
        else:
            saved = checkpoints.load_checkpoint(_checkpoint_of(Path(run))).get("config", {})
        config = cls.from_dict(saved, str(config_path))
        return dataclasses.replace(config, **{"resume": str(run), "out": str(run_dir), **overrides})


# Settings that must match to resume: they change the shapes of the weights.
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm", "image_size")
# Settings that may change on resume, but then the continuation is no longer the same run.
TRAJECTORY_FIELDS = ("seed", "batch_size", "lambda_l1", "gan_mode", "d_loss_halve", "lr", "betas", "direction", "data")


def _run_dir_of(path: Path) -> Path:
    return path.parent if path.suffix == ".pt" else path


def _checkpoint_of(path: Path) -> Path:
    return path if path.suffix == ".pt" else path / CHECKPOINT_NAME


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """Learning-rate multiplier for `epoch` (from 0): 1, then linear towards 0 over the last
    `decay_epochs` epochs, as the official code's `linear` policy (never exactly 0)."""
    if decay_epochs <= 0:
        return 1.0
    first_decayed = epochs - decay_epochs
    if epoch < first_decayed:
        return 1.0
    return (epochs - epoch) / (decay_epochs + 1)


# --------------------------------------------------------------------------------------------------
# One training step, shared with the benchmark.


@dataclass
class StepParts:
    """What one step needs. `discriminator` may be wrapped in DDP (it is trained); `discriminator_for_g`
    is the bare network G's loss runs through, so G's backward never triggers D's gradient sync."""

    generator: nn.Module
    discriminator: nn.Module
    discriminator_for_g: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: Precision
    lambda_l1: float = DEFAULT_LAMBDA_L1
    gan_mode: str = "bce"
    d_loss_halve: bool = False
    g_params: list = field(default_factory=list)


def train_step(parts: StepParts, edges: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """One pix2pix step; returns the detached losses [G adversarial, G L1, D real, D fake].

    G runs forward once. D sees (edges, photo) and (edges, fake.detach()) and steps; then the
    updated D judges the same `fake` for G's loss, whose backward computes gradients for G's
    parameters only (`inputs=`), so no work is spent on D's weight gradients. No host sync.
    """
    with parts.precision.autocast():
        fake = parts.generator(edges)
        real_logits = parts.discriminator(edges, photo)
        fake_logits = parts.discriminator(edges, fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits, mode=parts.gan_mode, halve=parts.d_loss_halve)
    parts.opt_d.zero_grad(set_to_none=True)
    parts.scaler.scale(d_loss.total).backward()
    parts.scaler.step(parts.opt_d)

    with parts.precision.autocast():
        judged = parts.discriminator_for_g(edges, fake)
    g_loss = generator_loss(judged, fake, photo, lambda_l1=parts.lambda_l1, mode=parts.gan_mode)
    parts.opt_g.zero_grad(set_to_none=True)
    g_params = parts.g_params or [p for p in parts.generator.parameters() if p.requires_grad]
    parts.scaler.scale(g_loss.total).backward(inputs=g_params)
    parts.scaler.step(parts.opt_g)
    parts.scaler.update()
    return torch.stack([g_loss.adversarial, g_loss.l1, d_loss.real, d_loss.fake]).detach().float()


# --------------------------------------------------------------------------------------------------
# Data: the order of epoch e and the jitter of each pair are functions of the seed alone.


class EpochTagged(torch.utils.data.Sampler):
    """Yields `epoch * n + i` for each index i of the wrapped sampler, so the epoch travels with the
    index into loader workers (which, being persistent, never see later changes to the dataset)."""

    def __init__(self, sampler: ResumableSampler, n: int) -> None:
        self.sampler = sampler
        self.n = n

    def __iter__(self):
        offset = self.sampler.epoch * self.n
        return (offset + int(i) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch, NumPy and Python RNGs for one item and restore them afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
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
        return index, ((self.seed * 1_000_003 + epoch) * 10_000_019 + index) % 2**63

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
# Ctrl-C and SIGTERM: finish the current step, save, then stop.


class _StopRequests:
    """While active, SIGINT/SIGTERM only set a flag the loop checks between steps; a second Ctrl-C
    interrupts at once. Handlers can only be installed from the main thread; elsewhere the loop
    falls back to Python's KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> "_StopRequests":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, OSError):
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signum, handler)


# --------------------------------------------------------------------------------------------------
# The loop.


@dataclass
class StepContext:
    """Passed to `before_step` hooks (tests inject faults with them; notebooks can watch)."""

    epoch: int  # epoch in progress, from 0
    step: int  # optimiser steps done so far (global)
    edges: torch.Tensor  # the batch about to be trained on (on the device; may be modified)
    photo: torch.Tensor
    generator: nn.Module  # the bare networks
    discriminator: nn.Module


@dataclass
class TrainResult:
    run_dir: Path
    generator: nn.Module  # the trained generator (bare, on the training device, train mode)
    discriminator: nn.Module
    history: list[dict]  # one record per completed epoch (also in losses.json)
    epochs_completed: int
    steps: int  # optimiser steps done in total
    finished: bool  # all epochs done (False when max_steps stopped the run early)
    checkpoint: Path  # last.pt


def train(config: TrainConfig, *, before_step: Sequence[Callable[[StepContext], None]] = ()) -> TrainResult:
    """Train pix2pix as `config` says; under torchrun, one process per GPU with DDP.

    Raises TrainingDiverged on a NaN/inf loss (the last good last.pt is kept), re-raises
    KeyboardInterrupt after saving last.pt on Ctrl-C / SIGTERM, ConfigError / DataError on bad input.
    """
    config.validate()
    info = dist_info_from_env()
    device = pick_device(config.device, info.local_rank)
    check_cuda_supported(device)
    created = init_process_group(info, device)
    try:
        return _Trainer(config, info, device, list(before_step)).run()
    finally:
        destroy_process_group(created)


class _Trainer:
    def __init__(self, config: TrainConfig, info: DistInfo, device: torch.device, hooks: list) -> None:
        self.config = config
        self.info = info
        self.device = device
        self.hooks = hooks
        self.run_dir = Path(config.out)
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        self.bar = None
        configure_backends(device)
        self.precision = resolve_precision(config.amp, device, config.cpu_bf16)
        self.channels_last = config.channels_last and device.type == "cuda"

        resume_state = self._load_resume_state()
        self._seed_everything(config.seed)
        self.generator = UNetGenerator(config.generator_config())
        self.discriminator = PatchGANDiscriminator(config.discriminator_config())
        if info.enabled and config.sync_bn:
            if device.type != "cuda":
                raise ConfigError("--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU version); drop it on CPU")
            self.generator = nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)
            self.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(self.discriminator)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.generator.to(device, memory_format=memory_format)
        self.discriminator.to(device, memory_format=memory_format)
        self.opt_g = make_adam(self.generator.parameters(), config.lr, tuple(config.betas), device)
        self.opt_d = make_adam(self.discriminator.parameters(), config.lr, tuple(config.betas), device)
        self.scaler = self.precision.make_scaler()

        # Position and logs (replaced by the checkpoint's when resuming).
        self.epoch = 0  # epoch in progress
        self.samples_done = 0  # samples of this rank's share of `epoch` already trained on
        self.step = 0  # optimiser steps in total
        self.history: list[dict] = []
        self.epoch_sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float64)
        self.epoch_steps = 0
        self.epoch_seconds = 0.0
        self.epoch_skipped: list[str] = []
        self.window = torch.zeros(len(LOSS_NAMES), dtype=torch.float64)  # loss sums since the last sync
        self.window_steps = 0
        self._build_data()
        if resume_state is not None:
            self._restore(resume_state)
        else:
            # Dropout noise differs per rank (weights are identical: same seed above, DDP broadcasts).
            torch.manual_seed(config.seed + 1_000_003 * info.rank)

        self.step_parts = self._wrap_models()

    # -- setup ---------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        if not self.info.is_main:
            return
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    @staticmethod
    def _seed_everything(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def _load_resume_state(self) -> dict | None:
        config = self.config
        if config.resume is None:
            problem = None
            if self.info.is_main and self.checkpoint_path.exists():
                problem = (
                    f"{self.run_dir} already holds a training checkpoint ({self.checkpoint_path.name}); "
                    f"pass --resume {self.run_dir} to continue it, or choose another --out"
                )
            problem = broadcast_object(problem, self.info)
            if problem:
                raise ConfigError(problem)
            return None
        path = _checkpoint_of(Path(config.resume))
        state = checkpoints.load_checkpoint(path, map_location="cpu")
        saved = state.get("config", {})
        mismatched = [
            f"{k} (checkpoint {saved[k]!r}, now {getattr(config, k)!r})"
            for k in ARCHITECTURE_FIELDS
            if k in saved and saved[k] != getattr(config, k)
        ]
        if saved and TrainConfig.from_dict(saved, str(path)).resolved_levels() != config.resolved_levels():
            mismatched.append(f"levels (checkpoint {TrainConfig.from_dict(saved).resolved_levels()}, now {config.resolved_levels()})")
        if mismatched:
            raise ConfigError(f"{path}: cannot resume with different network settings: {'; '.join(mismatched)}")
        changed = [k for k in TRAJECTORY_FIELDS if k in saved and _plain(saved[k]) != _plain(getattr(config, k))]
        if changed and self.info.is_main:
            print(f"note: resuming with changed {', '.join(changed)}: the continuation differs from the original run", flush=True)
        return state

    def _build_data(self) -> None:
        from ..data import pairs as data  # the data module pulls in image decoding; import it only to train

        config = self.config
        root = data.resolve_dataset_root(config.data)
        self.data_root = Path(root)
        self.dataset = data.PairsDataset(
            root, split="train", image_size=config.image_size, direction=config.direction, strict=config.strict_data
        )
        if len(self.dataset) == 0:
            raise ConfigError(f"{root}: the training split holds no image pairs")
        self.items = SeededItems(self.dataset, config.seed)
        self.sampler = ResumableSampler(self.dataset, self.info, shuffle=True, seed=config.seed)
        if self.sampler.num_samples < config.batch_size:
            raise ConfigError(
                f"{root}: {len(self.dataset)} training pairs give {self.sampler.num_samples} per process, "
                f"fewer than one batch of {config.batch_size}; lower --batch-size"
            )
        self.steps_per_epoch = self.sampler.num_samples // config.batch_size
        workers = config.num_workers if config.num_workers >= 0 else data.default_num_workers(self.info.world_size)
        self.loader = data.make_dataloader(
            self.items, batch_size=config.batch_size, shuffle=False, num_workers=workers,
            sampler=EpochTagged(self.sampler, len(self.dataset)), drop_last=True, strict=config.strict_data,
            # the loader draws its worker base seed from here, not from the global RNG (dropout)
            generator=torch.Generator().manual_seed(config.seed),
        )
        self.num_workers = workers
        self.sample_edges = self.sample_photos = None
        if config.sample_count:
            self._load_sample_pairs(data, root)

    def _load_sample_pairs(self, data, root) -> None:
        """Fixed pairs for the per-epoch grid: the first val pairs (train pairs without jitter if
        there is no val split)."""
        config = self.config
        try:
            pairs = data.PairsDataset(root, split="val", image_size=config.image_size, jitter=False, direction=config.direction)
        except Edges2ShoesError:
            pairs = data.PairsDataset(root, split="train", image_size=config.image_size, jitter=False, direction=config.direction)
        count = min(config.sample_count, len(pairs))
        if count == 0:
            return
        loader = data.make_dataloader(
            torch.utils.data.Subset(pairs, range(count)), batch_size=count, shuffle=False, num_workers=0
        )
        with torch.random.fork_rng(devices=[]):
            batch = next(iter(loader))
        if len(batch.edges):
            self.sample_edges, self.sample_photos = batch.edges, batch.photo

    def _restore(self, state: dict) -> None:
        position = checkpoints.restore_training_state(
            state, self.generator, self.discriminator, self.opt_g, self.opt_d, self.scaler
        )
        extra = position["extra"]
        self.epoch = int(position["epoch"])
        self.step = int(position["step"])
        self.samples_done = int(extra.get("samples_done", 0))
        self.history = list(extra.get("history", []))
        self.epoch_sums = torch.tensor(extra.get("epoch_sums", [0.0] * len(LOSS_NAMES)), dtype=torch.float64)
        self.epoch_steps = int(extra.get("epoch_steps", 0))
        self.epoch_seconds = float(extra.get("epoch_seconds", 0.0))
        self.epoch_skipped = list(extra.get("epoch_skipped", []))
        saved_world = int(extra.get("world_size", self.info.world_size))
        if self.samples_done and saved_world != self.info.world_size:
            raise ConfigError(
                f"{self.checkpoint_path}: saved mid-epoch by {saved_world} process(es), resumed with "
                f"{self.info.world_size}; the data split differs, so resume with the same number of GPUs "
                "(or from a checkpoint taken at an epoch end)"
            )
        if self.samples_done > self.sampler.num_samples:
            self.log("note: the dataset shrank since the checkpoint; starting the interrupted epoch over")
            self.samples_done = 0
        self.log(
            f"resumed {_checkpoint_of(Path(self.config.resume))}: epoch {self.epoch + 1}/{self.config.epochs}, "
            f"{self.samples_done} samples into it, step {self.step}"
        )

    def _wrap_models(self) -> StepParts:
        generator, discriminator, for_g = self.generator, self.discriminator, self.discriminator
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Per-GPU batch norm (see the module docstring): no buffer broadcasts; rank 0's running
            # statistics are the ones saved.
            options: dict[str, Any] = dict(device_ids=ids, gradient_as_bucket_view=True)
            if "forward_sync_buffers" in inspect.signature(DDP).parameters:
                options["forward_sync_buffers"] = False  # newer PyTorch; buffers still match at start
            else:
                options["broadcast_buffers"] = False
            generator = DDP(self.generator, **options)
            discriminator = DDP(self.discriminator, **options)
        if self.config.compile:
            generator, discriminator, for_g = (torch.compile(m) for m in (generator, discriminator, for_g))
        return StepParts(
            generator=generator, discriminator=discriminator, discriminator_for_g=for_g,
            opt_g=self.opt_g, opt_d=self.opt_d, scaler=self.scaler, precision=self.precision,
            lambda_l1=self.config.lambda_l1, gan_mode=self.config.gan_mode,
            d_loss_halve=self.config.d_loss_halve, g_params=list(self.generator.parameters()),
        )

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        config = self.config
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale_temporaries(self.run_dir)
            atomic_write_text(self.run_dir / CONFIG_NAME, json.dumps(_plain(config.to_dict()), indent=2) + "\n")
        self._print_header()
        finished = False
        stops = _StopRequests()
        self.consistent = True  # the in-memory state is at a step boundary (safe to save)
        try:
            with stops:
                finished = self._epochs(stops)
        except KeyboardInterrupt:
            self._close_bar()
            if self.consistent and self._fold_window_locally() and self._weights_finite():
                self._save_checkpoint()
                how = "stopped" if stops.signal is not None else "interrupted"
                self.log(
                    f"{how} in epoch {self.epoch + 1}/{self.config.epochs}, step {self.step}: saved {self.checkpoint_path}; "
                    f"continue with: python -m edges2shoes_utils train --resume {self.run_dir}"
                )
            else:
                self.log(f"interrupted mid-step: {self.checkpoint_path} from the last save is kept")
            raise
        finally:
            self._close_bar()
        barrier(self.info)
        return TrainResult(
            run_dir=self.run_dir, generator=self.generator, discriminator=self.discriminator,
            history=list(self.history), epochs_completed=len(self.history), steps=self.step,
            finished=finished, checkpoint=self.checkpoint_path,
        )

    def _print_header(self) -> None:
        c, info = self.config, self.info
        self.log(
            f"pix2pix on {self.data_root}: {len(self.dataset)} training pairs, {c.image_size}x{c.image_size}, "
            f"{self.steps_per_epoch} steps per epoch of {c.batch_size} x {info.world_size} process(es)\n"
            f"G {count_parameters(self.generator):,} parameters (ngf {c.ngf}, {c.resolved_levels()} levels), "
            f"D {count_parameters(self.discriminator):,} (ndf {c.ndf}); device {self.device}, {self.precision.name}, "
            f"{'channels_last, ' if self.channels_last else ''}{'compiled, ' if c.compile else ''}"
            f"{self.num_workers} loader worker(s); lambda_l1 {c.lambda_l1}, lr {c.lr}; run folder {self.run_dir}"
        )

    def _epochs(self, stops: _StopRequests) -> bool:
        config = self.config
        global_batch = config.batch_size * self.info.world_size
        while self.epoch < config.epochs:
            factor = lr_factor(self.epoch, config.epochs, config.decay_epochs)
            for optimizer in (self.opt_g, self.opt_d):
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * factor
            self.sampler.set_position(self.epoch, self.samples_done)
            done_steps = self.samples_done // config.batch_size
            self._open_bar(done_steps * global_batch, self.steps_per_epoch * global_batch)
            self.window = torch.zeros(len(LOSS_NAMES), device=self.device, dtype=torch.float64)
            self.window_steps = 0
            started = time.perf_counter()
            for batch in self.loader:
                if stops.signal is not None:
                    raise KeyboardInterrupt
                self.consistent = False
                edges = batch.edges.to(self.device, non_blocking=True)
                photo = batch.photo.to(self.device, non_blocking=True)
                if self.channels_last:
                    edges = edges.contiguous(memory_format=torch.channels_last)
                    photo = photo.contiguous(memory_format=torch.channels_last)
                for hook in self.hooks:
                    self.consistent = True  # hooks run before anything changes
                    hook(StepContext(self.epoch, self.step, edges, photo, self.generator, self.discriminator))
                    self.consistent = False
                losses = train_step(self.step_parts, edges, photo)
                self.window += losses  # float64: sums do not depend on where windows start
                self.window_steps += 1
                self.step += 1
                # sampler positions used: good pairs plus the bad files reported with this batch
                self.samples_done += edges.shape[0] + len(batch.skipped)
                self.epoch_skipped.extend(batch.skipped)
                self.consistent = True
                if self.bar is not None:
                    self.bar.update(global_batch)
                at_limit = bool(config.max_steps) and self.step >= config.max_steps
                epoch_done = self.samples_done >= self.steps_per_epoch * config.batch_size
                checkpoint_due = bool(config.checkpoint_every) and self.step % config.checkpoint_every == 0
                if self.step % config.log_interval == 0 or checkpoint_due or at_limit or epoch_done:
                    self._close_window()
                if checkpoint_due and not epoch_done:
                    self._save_checkpoint()
                if at_limit and not epoch_done:
                    self.epoch_seconds += time.perf_counter() - started
                    self._save_checkpoint()
                    self._close_bar()
                    self.log(f"stopped after max_steps={config.max_steps} (epoch {self.epoch}); saved {self.checkpoint_path}")
                    return False
            self.epoch_seconds += time.perf_counter() - started
            self._close_bar()
            self._end_epoch()
            if config.max_steps and self.step >= config.max_steps and self.epoch < config.epochs:
                self.log(f"stopped after max_steps={config.max_steps}; saved {self.checkpoint_path}")
                return False
        return True

    def _close_window(self) -> None:
        """Sync point (every rank, same steps): add the losses since the last one to the epoch sums
        (averaged over ranks), stop on NaN/inf, show the losses."""
        steps = self.window_steps
        if not steps:
            return
        packed = torch.cat([self.window, torch.tensor([float(steps)], device=self.device, dtype=torch.float64)])
        self.window.zero_()
        self.window_steps = 0
        all_reduce_sum(packed, self.info)
        packed = packed.cpu()
        sums, count = packed[:-1], packed[-1].item()
        if not torch.isfinite(sums).all():
            self._diverged(sums / count)
        self.epoch_sums += sums / self.info.world_size
        self.epoch_steps += steps
        if self.bar is not None:
            means = (sums / count).tolist()
            self.bar.set_postfix({LOSS_TITLES[k].replace(" ", "_"): f"{v:.3f}" for k, v in zip(LOSS_NAMES, means)}, refresh=False)

    def _fold_window_locally(self) -> bool:
        """On an interrupt: count this rank's unsynced losses into the epoch; False if any is NaN/inf."""
        window, steps = self.window, self.window_steps
        if not steps:
            return True
        sums = window.cpu()
        if not torch.isfinite(sums).all():
            return False
        self.epoch_sums += sums
        self.epoch_steps += steps
        window.zero_()
        self.window_steps = 0
        return True

    def _weights_finite(self) -> bool:
        params = [*self.generator.parameters(), *self.discriminator.parameters()]
        norms = torch._foreach_norm([p.detach() for p in params])  # one pass, one host sync
        return bool(torch.isfinite(torch.stack(norms)).all())

    def _diverged(self, means: torch.Tensor) -> None:
        self._close_bar()
        shown = ", ".join(f"{LOSS_TITLES[k]} {v:.4g}" for k, v in zip(LOSS_NAMES, means.tolist()))
        kept = (
            f"the last good checkpoint {self.checkpoint_path} is kept" if self.checkpoint_path.exists()
            else "no checkpoint had been saved yet"
        )
        raise TrainingDiverged(
            f"a loss became NaN or infinite by step {self.step} (epoch {self.epoch}; {shown}); training stopped and "
            f"{kept}. Try --amp off, a lower --lr, or check the data; resume with --resume {self.run_dir}"
        )

    def _end_epoch(self) -> None:
        config = self.config
        skipped = self._gather_skipped()
        mean = (self.epoch_sums / max(self.epoch_steps, 1)).tolist()
        images = self.epoch_steps * config.batch_size * self.info.world_size
        record = {
            "epoch": self.epoch,
            "steps": self.epoch_steps,
            "images": images,
            "seconds": round(self.epoch_seconds, 3),
            "images_per_s": round(images / self.epoch_seconds, 3) if self.epoch_seconds > 0 else None,
            **dict(zip(LOSS_NAMES, mean)),
            "lr": self.opt_g.param_groups[0]["lr"],
            "skipped": len(skipped),
        }
        finished_epoch = self.epoch
        # Update the in-memory position first: from here on a save means "epoch finished".
        self.history.append(record)
        self.epoch += 1
        self.samples_done = 0
        self.epoch_sums.zero_()
        self.epoch_steps = 0
        self.epoch_seconds = 0.0
        self.epoch_skipped = []
        sample_images = self._sample_grid_images()
        if not self.info.is_main:
            return
        self._check_weights_finite()  # before any file of this epoch is written
        if skipped:
            self.log(f"epoch {finished_epoch}: skipped {len(skipped)} unreadable file(s): " + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
            with open(self.run_dir / "skipped.txt", "a", encoding="utf-8") as handle:
                handle.writelines(f"epoch {finished_epoch}\t{line}\n" for line in skipped)
        self._write_logs()
        if sample_images is not None:
            from ..util.images import image_grid, save_image

            save_image(image_grid(sample_images, cell=min(256, config.image_size * 2)), self.run_dir / "samples" / f"epoch_{finished_epoch}.png")
        if config.save_epoch_weights:
            checkpoints.save_epoch_weights(self.run_dir, finished_epoch, self.generator, self.discriminator)
        self._save_checkpoint(weights_checked=True)
        rate = record["images_per_s"]
        self.log(
            f"epoch {finished_epoch + 1}/{config.epochs} (files *_{finished_epoch}.pt): " + ", ".join(f"{LOSS_TITLES[k]} {record[k]:.4f}" for k in LOSS_NAMES)
            + f"; {record['images']} images in {record['seconds']:.1f} s ({rate if rate is not None else '?'} images/s)"
        )

    def _gather_skipped(self) -> list[str]:
        if not self.info.enabled:
            return list(self.epoch_skipped)
        import torch.distributed as dist

        gathered: list = [None] * self.info.world_size
        dist.all_gather_object(gathered, list(self.epoch_skipped))
        return [line for part in gathered for line in part]

    def _sample_grid_images(self) -> dict | None:
        """Generate the fixed sample pairs without changing training: BN running statistics are
        restored afterwards and dropout draws from its own seeded RNG. Every rank runs it (so
        SyncBatchNorm's collectives match); rank 0 saves it."""
        if self.sample_edges is None:
            return None
        generator = self.generator
        buffers = {name: b.clone() for name, b in generator.named_buffers()}
        was_training = generator.training
        generator.train(self.config.sample_mode == "train")
        try:
            cuda_devices = [self.device.index or 0] if self.device.type == "cuda" else []
            with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices):
                torch.manual_seed(self.config.seed)
                edges = self.sample_edges.to(self.device)
                with self.precision.autocast():
                    fake = generator(edges).float().cpu()
        finally:
            generator.train(was_training)
            with torch.no_grad():
                for name, b in generator.named_buffers():
                    b.copy_(buffers[name])
        return {"Input": list(self.sample_edges), "Ground truth": list(self.sample_photos), "Generated": list(fake)}

    def _write_logs(self) -> None:
        from ..util.images import plot_curves

        atomic_write_text(self.run_dir / "losses.json", json.dumps(self.history, indent=2) + "\n")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.history[0]))
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.run_dir / "losses.csv", buffer.getvalue())
        series = {LOSS_TITLES[k]: [r[k] for r in self.history] for k in LOSS_NAMES}
        plot_curves(series, self.run_dir / "losses.png", title="pix2pix losses per epoch", x=[r["epoch"] for r in self.history])

    def _check_weights_finite(self) -> None:
        if not self._weights_finite():
            raise TrainingDiverged(
                f"the weights became NaN or infinite by step {self.step} (epoch {self.epoch}); training stopped "
                f"and the last good checkpoint {self.checkpoint_path} is kept. Try --amp off or a lower --lr"
            )

    def _save_checkpoint(self, weights_checked: bool = False) -> None:
        """Write last.pt (rank 0), never with NaN/inf weights: those stop training instead."""
        if not self.info.is_main:
            return
        if not weights_checked:
            self._check_weights_finite()
        extra = {
            "samples_done": self.samples_done,
            "history": self.history,
            "epoch_sums": self.epoch_sums.tolist(),
            "epoch_steps": self.epoch_steps,
            "epoch_seconds": self.epoch_seconds,
            "epoch_skipped": self.epoch_skipped,
            "world_size": self.info.world_size,
        }
        state = checkpoints.training_state(
            self.generator, self.discriminator, self.opt_g, self.opt_d,
            epoch=self.epoch, step=self.step, config=_plain(self.config.to_dict()), scaler=self.scaler, extra=extra,
        )
        checkpoints.save_checkpoint(self.checkpoint_path, state)

    # -- progress bar --------------------------------------------------------------------------

    def _open_bar(self, initial: int, total: int) -> None:
        if not (self.info.is_main and self.config.progress):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total, initial=initial, unit="img", desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            dynamic_ncols=True, smoothing=0.1,
        )

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _plain(value: Any) -> Any:
    """JSON-friendly copy (tuples -> lists) so saved and current configs compare equal."""
    return json.loads(json.dumps(value))


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files a killed process left behind mid-write (the real files are intact)."""
    for path in run_dir.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            path.unlink()
    samples = run_dir / "samples"
    if samples.is_dir():
        for path in samples.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()


# --------------------------------------------------------------------------------------------------
# Command line: every TrainConfig field is a flag.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        kind = hints[spec.name]
        help_text = spec.metadata.get("help", "")
        default = spec.default
        shown = f" (default: {default})" if default is not None else ""
        options: dict[str, Any] = {"dest": spec.name, "default": argparse.SUPPRESS, "help": help_text + shown}
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
            options["help"] = help_text + f" (default: {'on' if default else 'off'})"
        elif typing.get_origin(kind) is tuple:
            options.update(nargs=len(typing.get_args(kind)), type=typing.get_args(kind)[0], metavar="X")
        else:
            base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
            options["type"] = base[0]
            if "choices" not in options:
                options["metavar"] = spec.name.upper()
        parser.add_argument(flag, **options)
    parser.set_defaults(run=run_cli)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Flags given on the command line over the defaults, or over the saved config with --resume."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if "betas" in given:
        given["betas"] = tuple(given["betas"])
    if given.get("resume"):
        return TrainConfig.from_run(given["resume"], **{k: v for k, v in given.items() if k != "resume"})
    return TrainConfig(**given)


def run_cli(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    result = train(config)
    if result.finished and dist_info_from_env().is_main:
        print(f"done: {result.epochs_completed} epoch(s), {result.steps} steps; weights and logs in {result.run_dir}")
    return 0


__all__ = ["TrainConfig", "TrainResult", "StepContext", "TrainingDiverged", "train", "train_step", "lr_factor"]
