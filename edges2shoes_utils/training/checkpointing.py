"""last.pt, the resumable training checkpoint: what it holds, and how a run writes it and comes back.

One dict, written atomically and loadable with `torch.load(..., weights_only=True)`:

    format, version, torch_version   `TRAINING_FORMAT`, and the versions that wrote it
    epoch, step                      the epoch in progress (from 0) and the optimiser steps done
    config                           the run's TrainConfig as plain data
    generator, discriminator         the bare networks' state dicts, and their architecture configs
    generator_config, ...            (`discriminator_config`), which inference rebuilds them from
    opt_g, opt_d, scaler             both Adam states and the GradScaler's
    rng                              Python, NumPy, torch and CUDA generator states (rank 0's)
    extra                            where the run stands (`RunState`), the number of processes, and
                                     under DDP every rank's RNG states

Restoring all of it and training on gives the same weights as never having stopped. The
weights stage reads only the weights of such a file (`weights.load`, by its format tag).

Under DDP each rank draws its own dropout noise, so one RNG state is not enough: a save gathers
every rank's (`gather_rank_rng`, a collective) into `extra["rank_rng"]`, indexed by rank, and each
rank restores its own. The top-level `rng` stays rank 0's, as in single-process runs and older
files. Where a rank has no saved state of its own (a Ctrl-C save, which cannot gather because the
ranks may stop at different steps; an older checkpoint; another number of processes at an epoch
boundary) it continues from a fresh seed of (seed, rank, step), and the run says so.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..weights import formats
from ..nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator
from ..util.errors import CheckpointError, ConfigError
from ..util.seeds import SEED_STRIDE, rank_seed, seed_everything
from ..util.version import __version__
from .config import TrainConfig, changes_on_resume, checkpoint_of
from .distributed import DistInfo, broadcast_object, gather_lists
from .initial_weights import InitialWeights, init_sources
from .networks import Networks
from .step import LOSS_NAMES

RANK_RNG_KEY = "rank_rng"  # extra[...]: every rank's `rng_states()`, indexed by rank (DDP saves)
_REQUIRED = ("generator", "discriminator", "opt_g", "opt_d", "rng", "epoch", "step")


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
    def from_checkpoint(cls, state: Mapping[str, Any]) -> "RunState":
        """From a training checkpoint (defaults for what older files lack)."""
        extra = state.get("extra", {})
        return cls(
            epoch=int(state["epoch"]),
            step=int(state["step"]),
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


# --------------------------------------------------------------------------------------------------
# RNG states in weights_only-loadable form.


def rng_states() -> dict:
    """Python, NumPy (legacy global), torch CPU and (if present) CUDA generator states."""
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = list(torch.cuda.get_rng_state_all())
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what `rng_states` captured (CUDA only where this machine has CUDA)."""
    py = states["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    npy = states["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(states["torch"].to(torch.uint8).cpu())
    if "cuda" in states and torch.cuda.is_available():
        saved = states["cuda"]
        for device in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(saved[device].cpu(), device)


# --------------------------------------------------------------------------------------------------
# Writing.


def checkpoint_state(
    networks: Networks, run: RunState, config: TrainConfig, world_size: int = 1, rank_rng: list[dict] | None = None
) -> dict:
    """Everything last.pt holds, taken now (this process's RNG states included).

    `rank_rng` (from `gather_rank_rng`): every rank's RNG states, stored beside rank 0's `rng`."""
    extra = run.to_extra(world_size)
    if rank_rng is not None:
        extra[RANK_RNG_KEY] = rank_rng
    return {
        "format": formats.TRAINING_FORMAT,
        "version": __version__,
        "torch_version": str(torch.__version__),
        "epoch": int(run.epoch),
        "step": int(run.step),
        "config": config.to_dict(),
        "generator": networks.generator.state_dict(),
        "generator_config": formats.network_config(networks.generator),
        "discriminator": networks.discriminator.state_dict(),
        "discriminator_config": formats.network_config(networks.discriminator),
        "opt_g": networks.opt_g.state_dict(),
        "opt_d": networks.opt_d.state_dict(),
        "rng": rng_states(),
        "scaler": networks.scaler.state_dict(),
        "extra": formats.plain_config(extra),
    }


def save_run(
    path: Path, networks: Networks, run: RunState, config: TrainConfig, world_size: int = 1,
    rank_rng: list[dict] | None = None,
) -> Path:
    """Write last.pt atomically (`checkpoint_state`); anything weights_only could not load is
    refused before a byte is written."""
    return formats.save_checkpoint(path, checkpoint_state(networks, run, config, world_size, rank_rng))


# --------------------------------------------------------------------------------------------------
# Reading.


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


def networks_for_resume(config: TrainConfig, state: Mapping[str, Any]) -> InitialWeights | None:
    """For resuming a run that started from published weights: fresh networks of the configs its
    last.pt saved (their layouts are not TrainConfig fields), for the checkpoint to fill."""
    if init_sources(config) == (None, None):
        return None
    try:
        generator = UNetGenerator(GeneratorConfig(**state["generator_config"]))
        discriminator = PatchGANDiscriminator(DiscriminatorConfig(**state["discriminator_config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{config.resume}: its network configs are missing or unreadable ({error}); "
                          "it cannot be resumed") from None
    return InitialWeights(generator, discriminator)


def restore_networks(state: Mapping[str, Any], networks: Networks) -> RunState:
    """Load a training checkpoint's weights, optimisers, scaler and (rank 0's) RNG states into
    `networks` and this process, in place; returns where the run stood.

    Restore after building the networks and before drawing any random numbers."""
    if state.get("format") != formats.TRAINING_FORMAT:
        raise CheckpointError(
            f"not an edges2shoes training checkpoint (format {state.get('format')!r}, expected {formats.TRAINING_FORMAT!r})"
        )
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"training checkpoint lacks {', '.join(missing)}")
    for name in ("generator", "discriminator"):
        try:
            getattr(networks, name).load_state_dict(state[name])
        except RuntimeError as exc:
            raise CheckpointError(
                f"the checkpoint's {name} does not fit this {name} (saved config {state.get(name + '_config')}): {exc}"
            ) from exc
    for name in ("opt_g", "opt_d"):
        try:
            getattr(networks, name).load_state_dict(state[name])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"the checkpoint's optimiser state {name} does not fit this optimiser: {exc}") from exc
    if state.get("scaler"):
        networks.scaler.load_state_dict(state["scaler"])
    set_rng_states(state["rng"])
    return RunState.from_checkpoint(state)


def restore_run(
    state: Mapping[str, Any], networks: Networks, info: DistInfo, samples_per_epoch: int, checkpoint_path: Path,
    log: Callable[[str], None], seed: int = 0,
) -> RunState:
    """`restore_networks`, then this rank's own RNG states; returns where the run stood.

    Refuses a mid-epoch checkpoint taken with another number of processes (the data split would
    differ); starts the interrupted epoch over if the dataset shrank below the saved position.
    `seed` (the run's) seeds the ranks that have no saved RNG state of their own.
    """
    run = restore_networks(state, networks)
    extra = state.get("extra", {})
    saved_world = int(extra.get("world_size", info.world_size))
    if run.samples_done and saved_world != info.world_size:
        raise ConfigError(
            f"{checkpoint_path}: saved mid-epoch by {saved_world} process(es), resumed with "
            f"{info.world_size}; the data split differs, so resume with the same number of GPUs "
            "(or from a checkpoint taken at an epoch end)"
        )
    if run.samples_done > samples_per_epoch:
        log("note: the dataset shrank since the checkpoint; starting the interrupted epoch over")
        run.samples_done = 0
    restore_rank_rng(extra, info, seed, run.step, checkpoint_path, log)
    return run


# --------------------------------------------------------------------------------------------------
# Every rank's RNG states under DDP.


def gather_rank_rng(info: DistInfo) -> list[dict] | None:
    """Every rank's RNG states in rank order, for rank 0 to save; None for one process (the
    checkpoint's `rng` is then the only one). A collective: every rank calls it at the same step."""
    if not info.enabled:
        return None
    return gather_lists([rng_states()], info)


def continuation_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a rank that resumes without a saved RNG state: different for every rank, and
    from the seed the rank started with (`rank_seed`), so its dropout noise is not a replay."""
    return (rank_seed(seed, rank) * SEED_STRIDE + step + 1) % 2**63


def restore_rank_rng(
    extra: Mapping[str, Any], info: DistInfo, seed: int, step: int, checkpoint_path: Path, log: Callable[[str], None]
) -> None:
    """Give this rank its own saved RNG states back (`restore_networks` set rank 0's on all).

    With no state of its own (see the module docstring) rank 0 keeps the checkpoint's `rng`, and
    every other rank is seeded with `continuation_seed`: the ranks' dropout masks still differ, but
    the continuation is no longer the one an uninterrupted run would have taken.
    """
    if not info.enabled:
        return  # one process: the checkpoint's `rng` is its own (rank 0's of a DDP run)
    saved = extra.get(RANK_RNG_KEY) or []
    saved_world = int(extra.get("world_size", 1))
    if len(saved) == info.world_size == saved_world:
        set_rng_states(saved[info.rank])
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
    "rng_states",
    "set_rng_states",
    "checkpoint_state",
    "save_run",
    "read_resume_state",
    "networks_for_resume",
    "restore_networks",
    "restore_run",
    "gather_rank_rng",
    "continuation_seed",
    "restore_rank_rng",
    "remove_stale_temporaries",
]
