"""last.pt: what it holds beyond the weights, how a run comes back from it, and what a kill leaves.

The checkpoint (`checkpoints.formats.training_state`) holds the weights, both optimisers, the
GradScaler, every RNG state and the run config; `RunState` adds where the run stands: the epoch in
progress, the samples of it already trained on, the loss history and the epoch's running sums.
Restoring all of it and training on gives the same weights as never having stopped.

Under DDP each rank draws its own dropout noise, so one RNG state is not enough: a save gathers
every rank's (`gather_rank_rng`, a collective) into `extra["rank_rng"]`, indexed by rank, and each
rank restores its own. The top-level `rng` stays rank 0's, as in single-process runs and older
files. Where a rank has no saved state of its own (a Ctrl-C save, which cannot gather because the
ranks may stop at different steps; an older checkpoint; another number of processes at an epoch
boundary) it continues from a fresh seed of (seed, rank, step), and the run says so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..checkpoints import formats
from ..util.errors import ConfigError
from ..util.seeds import SEED_STRIDE, rank_seed, seed_everything
from .config import TrainConfig, changes_on_resume, checkpoint_of
from .distributed import DistInfo, broadcast_object, gather_lists
from .networks import Networks
from .step import LOSS_NAMES


RANK_RNG_KEY = "rank_rng"  # extra[...]: every rank's `formats.rng_states()`, indexed by rank (DDP saves)


def _zero_sums() -> torch.Tensor:
    return torch.zeros(len(LOSS_NAMES), dtype=torch.float64)


@dataclass
class RunState:
    """Where a run stands: its position and the running totals of the epoch in progress."""

    epoch: int = 0  # epoch in progress, from 0
    step: int = 0  # optimiser steps in total
    samples_done: int = 0  # samples of this rank's share of `epoch` already trained on
    history: list[dict] = field(default_factory=list)  # one record per finished epoch
    epoch_sums: torch.Tensor = field(default_factory=_zero_sums)  # loss sums, averaged over ranks
    epoch_steps: int = 0
    epoch_seconds: float = 0.0
    epoch_skipped: list[str] = field(default_factory=list)  # "path: reason" of files skipped

    def to_extra(self, world_size: int) -> dict:
        """The checkpoint's `extra` entry (the epoch and step are stored beside it)."""
        return {
            "samples_done": self.samples_done,
            "history": self.history,
            "epoch_sums": self.epoch_sums.tolist(),
            "epoch_steps": self.epoch_steps,
            "epoch_seconds": self.epoch_seconds,
            "epoch_skipped": self.epoch_skipped,
            "world_size": world_size,
        }

    @classmethod
    def from_position(cls, position: dict) -> "RunState":
        """From what `formats.restore_training_state` returns (defaults for older files)."""
        extra = position["extra"]
        return cls(
            epoch=int(position["epoch"]),
            step=int(position["step"]),
            samples_done=int(extra.get("samples_done", 0)),
            history=list(extra.get("history", [])),
            epoch_sums=torch.tensor(extra.get("epoch_sums", [0.0] * len(LOSS_NAMES)), dtype=torch.float64),
            epoch_steps=int(extra.get("epoch_steps", 0)),
            epoch_seconds=float(extra.get("epoch_seconds", 0.0)),
            epoch_skipped=list(extra.get("epoch_skipped", [])),
        )

    def add_losses(self, sums: torch.Tensor, steps: int) -> None:
        """Count `steps` more steps, whose losses add up to `sums`, into the epoch in progress."""
        self.epoch_sums += sums
        self.epoch_steps += steps

    def epoch_record(self, images_per_step: int, lr: float, skipped: int) -> dict:
        """The epoch in progress as one line of losses.json: mean losses, images, time, lr."""
        mean = (self.epoch_sums / max(self.epoch_steps, 1)).tolist()
        images = self.epoch_steps * images_per_step
        seconds = self.epoch_seconds
        return {
            "epoch": self.epoch,
            "steps": self.epoch_steps,
            "images": images,
            "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 3) if seconds > 0 else None,
            **dict(zip(LOSS_NAMES, mean)),
            "lr": lr,
            "skipped": skipped,
        }

    def finish_epoch(self, record: dict) -> None:
        """Log the finished epoch and move to the start of the next one."""
        self.history.append(record)
        self.epoch += 1
        self.samples_done = 0
        self.epoch_sums.zero_()
        self.epoch_steps = 0
        self.epoch_seconds = 0.0
        self.epoch_skipped = []


def read_resume_state(config: TrainConfig, info: DistInfo, checkpoint_path: Path) -> dict | None:
    """The checkpoint `config.resume` names, checked against `config`; None for a new run.

    A new run refuses an `--out` that already holds a checkpoint (rank 0 decides for all ranks);
    a resumed run refuses different network settings and notes changed trajectory settings.
    """
    if config.resume is None:
        problem = None
        if info.is_main and checkpoint_path.exists():
            problem = (
                f"{checkpoint_path.parent} already holds a training checkpoint ({checkpoint_path.name}); "
                f"pass --resume {checkpoint_path.parent} to continue it, or choose another --out"
            )
        problem = broadcast_object(problem, info)
        if problem:
            raise ConfigError(problem)
        return None
    path = checkpoint_of(Path(config.resume))
    state = formats.load_checkpoint(path, map_location="cpu")
    changed = changes_on_resume(state.get("config", {}), config, str(path))
    if changed and info.is_main:
        print(f"note: resuming with changed {', '.join(changed)}: the continuation differs from the original run", flush=True)
    return state


def restore_run(
    state: dict, networks: Networks, info: DistInfo, samples_per_epoch: int, checkpoint_path: Path,
    log: Callable[[str], None], seed: int = 0,
) -> RunState:
    """Load `state` into `networks` (and this rank's RNG states) and return where the run stood.

    Refuses a mid-epoch checkpoint taken with another number of processes (the data split would
    differ); starts the interrupted epoch over if the dataset shrank below the saved position.
    `seed` (the run's) seeds the ranks that have no saved RNG state of their own.
    """
    position = formats.restore_training_state(
        state, networks.generator, networks.discriminator, networks.opt_g, networks.opt_d, networks.scaler
    )
    run = RunState.from_position(position)
    saved_world = int(position["extra"].get("world_size", info.world_size))
    if run.samples_done and saved_world != info.world_size:
        raise ConfigError(
            f"{checkpoint_path}: saved mid-epoch by {saved_world} process(es), resumed with "
            f"{info.world_size}; the data split differs, so resume with the same number of GPUs "
            "(or from a checkpoint taken at an epoch end)"
        )
    if run.samples_done > samples_per_epoch:
        log("note: the dataset shrank since the checkpoint; starting the interrupted epoch over")
        run.samples_done = 0
    restore_rank_rng(position["extra"], info, seed, run.step, checkpoint_path, log)
    return run


def gather_rank_rng(info: DistInfo) -> list[dict] | None:
    """Every rank's RNG states in rank order, for rank 0 to save; None for one process (the
    checkpoint's `rng` is then the only one). A collective: every rank calls it at the same step."""
    if not info.enabled:
        return None
    return gather_lists([formats.rng_states()], info)


def continuation_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a rank that resumes without a saved RNG state: different for every rank, and
    from the seed the rank started with (`rank_seed`), so its dropout noise is not a replay."""
    return (rank_seed(seed, rank) * SEED_STRIDE + step + 1) % 2**63


def restore_rank_rng(
    extra: dict, info: DistInfo, seed: int, step: int, checkpoint_path: Path, log: Callable[[str], None]
) -> None:
    """Give this rank its own saved RNG states back (`restore_training_state` set rank 0's on all).

    With no state of its own (see the module docstring) rank 0 keeps the checkpoint's `rng`, and
    every other rank is seeded with `continuation_seed`: the ranks' dropout masks still differ, but
    the continuation is no longer the one an uninterrupted run would have taken.
    """
    if not info.enabled:
        return  # one process: the checkpoint's `rng` is its own (rank 0's of a DDP run)
    saved = extra.get(RANK_RNG_KEY) or []
    saved_world = int(extra.get("world_size", 1))
    if len(saved) == info.world_size == saved_world:
        formats.set_rng_states(saved[info.rank])
        return
    if info.rank:
        seed_everything(continuation_seed(seed, info.rank, step))
    why = (
        f"it was saved by {saved_world} process(es)" if saved_world != info.world_size
        else "it was saved without them (on Ctrl-C, or by an older version)"
    )
    others = "rank 1" if info.world_size == 2 else f"ranks 1-{info.world_size - 1}"
    log(
        f"note: {checkpoint_path} holds no random state for {others} ({why}), so {others} continue(s) with "
        "fresh dropout noise seeded from (seed, rank, step); this continuation differs from an uninterrupted run"
    )


def save_run(
    path: Path, networks: Networks, run: RunState, config: TrainConfig, world_size: int,
    rank_rng: list[dict] | None = None,
) -> None:
    """Write last.pt atomically: weights, optimisers, scaler, RNG states, config and `run`.

    `rank_rng` (from `gather_rank_rng`): every rank's RNG states, stored beside rank 0's `rng`."""
    extra = run.to_extra(world_size)
    if rank_rng is not None:
        extra[RANK_RNG_KEY] = rank_rng
    state = formats.training_state(
        networks.generator, networks.discriminator, networks.opt_g, networks.opt_d,
        epoch=run.epoch, step=run.step, config=formats.plain_config(config, json_ready=True),
        scaler=networks.scaler, extra=extra,
    )
    formats.save_checkpoint(path, state)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files a killed process left behind mid-write (the real files are intact)."""
    for folder in (run_dir, run_dir / "samples"):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    path.unlink()


__all__ = [
    "RANK_RNG_KEY",
    "RunState",
    "read_resume_state",
    "restore_run",
    "gather_rank_rng",
    "continuation_seed",
    "restore_rank_rng",
    "save_run",
    "remove_stale_temporaries",
]
