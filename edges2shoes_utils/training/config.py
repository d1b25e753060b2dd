"""The run config: every field is a command-line flag (`--lambda-l1`, `--no-channels-last`, ...).

A `TrainConfig` says everything about a run; it is written to the run folder as `config.json` and
into every `last.pt`, so `TrainConfig.from_run(folder)` rebuilds it to resume. Two groups of fields
matter on resume: the architecture fields must match the checkpoint (they shape the weights), the
trajectory fields may change, but then the continuation is a different run. The `init` fields say
which published weights a run started from (`initial_weights`); a resumed run keeps them as a record.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..weights import formats
from ..nets.losses import DEFAULT_LAMBDA_L1
from ..nets import DiscriminatorConfig, GeneratorConfig
from ..util.errors import ConfigError
from .device import LEGACY_PRECISIONS, PRECISIONS, deprecated, pick_device

CHECKPOINT_NAME = "last.pt"  # the resumable checkpoint in a run folder
CONFIG_NAME = "config.json"  # the run's config, as JSON

# Settings that must match to resume: they change the shapes of the weights (or, bn_eps, what they compute).
ARCHITECTURE_FIELDS = ("ngf", "ndf", "norm", "image_size", "bn_eps")
# Where a run's weights started; fixed for the life of the run.
INIT_FIELDS = ("init", "init_generator", "init_discriminator")
# Options of earlier versions that TrainConfig still reads (into `precision`), but no longer writes.
OLD_SPELLINGS = ("amp", "cpu_bf16")
AMP_WORDS = ("auto", "fp16", "bf16", "off")  # what `amp` (`--amp`) took up to 0.1.0
# Settings that may change on resume, but then the continuation is no longer the same run.
TRAJECTORY_FIELDS = ("seed", "batch_size", "lambda_l1", "gan_mode", "d_loss_halve", "lr", "betas", "direction", "data")


def _option(default: Any, help: str, **extra: Any) -> Any:
    """A field whose metadata holds its flag's help text (and argparse extras such as `choices`)."""
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
    bn_eps: Optional[float] = _option(None, "batch-norm epsilon (default: PyTorch's 1e-5; --init weights pickled with another bring theirs)")
    # Starting from published weights (see initial_weights.py).
    init: Optional[str] = _option(
        None, "start from published weights: G from SOURCE (a weights file, kaggle, pix2pix-official or huggan), D too "
        "where SOURCE has one (kaggle, our run files); the architecture comes from the weights, the optimisers start fresh",
        metavar="SOURCE")
    init_generator: Optional[str] = _option(None, "start G from these weights (a file or a named source; overrides --init for G)", metavar="SOURCE")
    init_discriminator: Optional[str] = _option(None, "start D from these weights (a file or kaggle; overrides --init for D)", metavar="SOURCE")
    # Speed.
    device: str = _option("auto", "auto (CUDA if present), cuda or cpu", choices=("auto", "cuda", "cpu"))
    precision: str = _option(
        "auto", "number format: auto (GPU: bf16 on compute capability >= 8, else fp16 with a GradScaler; CPU: fp32), "
        "fp32, bf16 (faster on CPUs with AVX512-bf16 or AMX; changes numerics) or fp16 (GPUs only)", choices=PRECISIONS)
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
    # Old spellings, read into `precision` (see `__post_init__`); not fields, so never written back.
    amp: InitVar[Optional[str]] = None  # training's number format up to 0.1.0 (`AMP_WORDS`)
    cpu_bf16: InitVar[Optional[bool]] = None  # with amp auto, bf16 on a CPU

    def __post_init__(self, amp: Optional[str], cpu_bf16: Optional[bool]) -> None:
        """Read the old `amp` and `cpu_bf16` (a 0.1.0 config.json or last.pt, `--amp`, `--cpu-bf16`,
        `TrainConfig(amp=...)`) as `precision`, with a notice; `amp`, when given, sets it."""
        if amp is None and cpu_bf16 is None:
            return
        if amp is not None:
            if amp not in LEGACY_PRECISIONS and amp not in PRECISIONS:
                raise ConfigError(f"amp must be one of {', '.join(AMP_WORDS)}, not {amp!r}")
            self.precision = LEGACY_PRECISIONS.get(amp, amp)
        if cpu_bf16 and self.precision == "auto" and self._trains_on_cpu():
            self.precision = "bf16"  # with amp auto, cpu_bf16 meant bf16 on a CPU and nothing on a GPU
        said = [f"amp {amp!r}"] if amp is not None else []
        if cpu_bf16 is not None:
            said.append(f"cpu_bf16 {bool(cpu_bf16)}")  # 0.1.0's last.pt stores it as 0 or 1
        # stacklevel 3: the notice names the caller of TrainConfig(...), past the generated __init__.
        deprecated(f"{', '.join(said)}: the old spelling of precision {self.precision!r}; it still works, but write "
                   f"precision {self.precision!r} (--precision {self.precision})", stacklevel=3)

    def _trains_on_cpu(self) -> bool:
        """Whether `device` puts this run on the CPU on this machine (as `pick_device` decides)."""
        return self.device != "cuda" and pick_device(self.device).type == "cpu"

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
        if self.bn_eps is not None and not self.bn_eps > 0:
            problems.append(f"bn_eps must be positive, got {self.bn_eps}")
        if self.lr <= 0 or self.lambda_l1 < 0:
            problems.append(f"lr must be positive and lambda_l1 non-negative (got {self.lr}, {self.lambda_l1})")
        if problems:
            raise ConfigError("; ".join(problems))

    def generator_config(self) -> GeneratorConfig:
        return GeneratorConfig(ngf=self.ngf, levels=self.resolved_levels(), norm=self.norm)

    def discriminator_config(self) -> DiscriminatorConfig:
        return DiscriminatorConfig(ndf=self.ndf, norm=self.norm)

    def to_dict(self) -> dict:
        """Plain JSON-ready data (tuples as lists, paths as strings): config.json and last.pt's `config`."""
        return formats.plain_config(self, json_ready=True)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)} | set(OLD_SPELLINGS)
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
        run_dir = run_dir_of(Path(run))
        config_path = run_dir / CONFIG_NAME
        if config_path.is_file():
            try:
                saved = json.loads(config_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ConfigError(f"{config_path}: not a readable run config ({error})") from None
        else:
            saved = formats.load_checkpoint(checkpoint_of(Path(run))).get("config", {})
        config = cls.from_dict(saved, str(config_path))
        return dataclasses.replace(config, **{"resume": str(run), "out": str(run_dir), **overrides})


def run_dir_of(path: Path) -> Path:
    """The run folder of a run folder or of a checkpoint file in it."""
    return path.parent if path.suffix == ".pt" else path


def checkpoint_of(path: Path) -> Path:
    """The resumable checkpoint of a run folder, or the checkpoint file itself."""
    return path if path.suffix == ".pt" else path / CHECKPOINT_NAME


def changes_on_resume(saved: dict, config: TrainConfig, where: str) -> list[str]:
    """The trajectory fields `config` changes from the `saved` config of the run it resumes.

    Raises ConfigError, naming `where`, when an architecture field differs: the weights would not fit.
    """
    mismatched = [
        f"{k} (checkpoint {saved[k]!r}, now {getattr(config, k)!r})"
        for k in ARCHITECTURE_FIELDS
        if k in saved and saved[k] != getattr(config, k)
    ]
    if saved and TrainConfig.from_dict(saved, where).resolved_levels() != config.resolved_levels():
        mismatched.append(f"levels (checkpoint {TrainConfig.from_dict(saved).resolved_levels()}, now {config.resolved_levels()})")
    if mismatched:
        raise ConfigError(f"{where}: cannot resume with different network settings: {'; '.join(mismatched)}")
    changed_init = [f"--{k.replace('_', '-')} {getattr(config, k)} (the run: {saved.get(k)})"
                    for k in INIT_FIELDS if saved.get(k) != getattr(config, k)]
    if saved and changed_init:
        raise ConfigError(
            f"{where}: a resumed run continues from its own checkpoint, so it cannot start from other weights: "
            f"{'; '.join(changed_init)}. To start from published weights, start a new run (another --out)"
        )
    now = config.to_dict()
    return [k for k in TRAJECTORY_FIELDS if k in saved and formats.plain_config(saved[k], json_ready=True) != now[k]]


__all__ = [
    "TrainConfig",
    "CHECKPOINT_NAME",
    "CONFIG_NAME",
    "ARCHITECTURE_FIELDS",
    "INIT_FIELDS",
    "TRAJECTORY_FIELDS",
    "OLD_SPELLINGS",
    "run_dir_of",
    "checkpoint_of",
    "changes_on_resume",
]
