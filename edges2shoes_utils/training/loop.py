"""The training loop: `train(config)` builds a run, trains epoch by epoch and keeps it resumable.

Each epoch sets the learning rate, positions the sampler (part-way through after a resume), and runs
`train_step` on every batch. The step's losses stay on the device, summed in a window; at sync points
(every `log_interval` steps, before a save, at an epoch's end) the windows of all ranks are added up,
checked for NaN/inf and shown. last.pt is saved every `checkpoint_every` steps, at every epoch end,
at `max_steps` and on Ctrl-C / SIGTERM, never with NaN/inf weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..weights import formats
from ..data.loader import PairBatch
from ..util.atomic import atomic_write_text
from ..util.errors import Edges2ShoesError
from ..util.seeds import rank_seed
from .checkpointing import (
    RunState,
    gather_rank_rng,
    networks_for_resume,
    read_resume_state,
    remove_stale_temporaries,
    restore_run,
    save_run,
)
from .config import CHECKPOINT_NAME, CONFIG_NAME, TrainConfig, checkpoint_of
from .device import check_cuda_supported, configure_backends, pick_device
from .distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    destroy_process_group,
    dist_info_from_env,
    gather_lists,
    init_process_group,
)
from .feed import build_feed
from .initial_weights import InitialWeights, prepare_initial_weights
from .interrupts import StopRequests
from .networks import Networks, build_networks, wrap_for_step
from .run_log import RunLog, describe_losses, epoch_summary, run_header, sample_grid_images
from .step import LOSS_NAMES, lr_factor, set_learning_rate, train_step


class TrainingDiverged(Edges2ShoesError):
    """A loss or a weight became NaN or infinite: training stops, the last good checkpoint stays."""


@dataclass
class StepContext:
    """Passed to `before_step` hooks (tests inject faults with them; notebooks can watch)."""

    epoch: int  # epoch in progress, from 0
    step: int  # optimiser steps done so far (global)
    edges: torch.Tensor  # the batch about to be trained on (on the device; may be modified)
    photo: torch.Tensor
    networks: Networks  # what the step is about to update: the bare G and D, optimisers, scaler


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


def train(
    config: TrainConfig,
    *,
    before_step: Sequence[Callable[[StepContext], None]] = (),
) -> TrainResult:
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
        config, start = prepare_initial_weights(config, info)  # --init: published weights, their architecture
        return _Run(config, info, device, list(before_step), start).run()
    finally:
        destroy_process_group(created)


class LossWindow:
    """The losses of the steps since the last sync point, summed on the device in float64 (so the
    sums do not depend on where windows start); the host reads them only at sync points."""

    def __init__(self, device: torch.device | None = None) -> None:
        self.sums = torch.zeros(len(LOSS_NAMES), device=device, dtype=torch.float64)
        self.steps = 0

    def add(self, losses: torch.Tensor) -> None:
        self.sums += losses
        self.steps += 1

    def take_all_ranks(self, info: DistInfo) -> tuple[torch.Tensor, float]:
        """Empty every rank's window (a collective: all ranks call it at the same steps); returns the
        loss sums over all ranks and the number of steps they cover, on the host."""
        packed = torch.cat([self.sums, torch.tensor([float(self.steps)], device=self.sums.device, dtype=torch.float64)])
        self.sums.zero_()
        self.steps = 0
        all_reduce_sum(packed, info)
        packed = packed.cpu()
        return packed[:-1], packed[-1].item()

    def take_local(self) -> tuple[torch.Tensor, int] | None:
        """Empty this rank's window and return its sums (on the host) and steps; None, leaving the
        window as it is, if any sum is NaN/inf."""
        sums = self.sums.to("cpu", copy=True)  # a copy: on a CPU run .cpu() would alias the window
        if not torch.isfinite(sums).all():
            return None
        steps = self.steps
        self.sums.zero_()
        self.steps = 0
        return sums, steps


class _Run:
    """One training run in this process: its networks, data feed, position and log."""

    def __init__(
        self, config: TrainConfig, info: DistInfo, device: torch.device, hooks: list,
        start: InitialWeights | None = None,
    ) -> None:
        self.config, self.info, self.device, self.hooks = config, info, device, hooks
        self.run_dir = Path(config.out)
        self.checkpoint_path = self.run_dir / CHECKPOINT_NAME
        self.log = RunLog(self.run_dir, info, config.progress)
        configure_backends(device)
        self.channels_last = config.channels_last and device.type == "cuda"

        resume_state = read_resume_state(config, info, self.checkpoint_path)
        start = start if resume_state is None else networks_for_resume(config, resume_state)
        self.nets = build_networks(config, device, info=info, channels_last=self.channels_last, start=start)
        self.feed = build_feed(config, info)
        if resume_state is None:
            self.state = RunState()
            # Dropout noise differs per rank (weights are identical: same seed above, DDP broadcasts).
            torch.manual_seed(rank_seed(config.seed, info.rank))
        else:
            self.state = restore_run(
                resume_state, self.nets, info, self.feed.sampler.num_samples, self.checkpoint_path, self.log.message,
                seed=config.seed,
            )
            self.log.message(
                f"resumed {checkpoint_of(Path(config.resume))}: epoch {self.state.epoch + 1}/{config.epochs}, "
                f"{self.state.samples_done} samples into it, step {self.state.step}"
            )
        self.nets = wrap_for_step(self.nets, info, device, "inductor" if config.compile else None)
        self.window = LossWindow()
        self.consistent = True  # the in-memory state is at a step boundary (safe to save)

    def run(self) -> TrainResult:
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
            config_text = json.dumps(self.config.to_dict(), indent=2) + "\n"
            atomic_write_text(self.run_dir / CONFIG_NAME, config_text)
        self.log.message(run_header(
            self.config, self.feed, self.nets, world_size=self.info.world_size,
            device=self.device, channels_last=self.channels_last, run_dir=self.run_dir,
        ))
        finished = False
        stops = StopRequests()
        try:
            with stops:
                finished = self._epochs(stops)
        except KeyboardInterrupt:
            self._save_on_interrupt(stopped=stops.signal is not None)
            raise
        finally:
            self.log.close_bar()
        barrier(self.info)
        state = self.state
        return TrainResult(
            run_dir=self.run_dir, generator=self.nets.generator, discriminator=self.nets.discriminator,
            history=list(state.history), epochs_completed=len(state.history), steps=state.step,
            finished=finished, checkpoint=self.checkpoint_path,
        )

    # -- epochs and steps ----------------------------------------------------------------------

    def _epochs(self, stops: StopRequests) -> bool:
        """Train the remaining epochs; False when `max_steps` stopped the run first."""
        config, state = self.config, self.state
        while state.epoch < config.epochs:
            self._start_epoch()
            started = time.perf_counter()
            at_limit = self._train_epoch(stops)
            state.epoch_seconds += time.perf_counter() - started
            if at_limit:
                self._save()
                self.log.close_bar()
                self.log.message(f"stopped after max_steps={config.max_steps} (epoch {state.epoch}); saved {self.checkpoint_path}")
                return False
            self.log.close_bar()
            self._end_epoch()
            if config.max_steps and state.step >= config.max_steps and state.epoch < config.epochs:
                self.log.message(f"stopped after max_steps={config.max_steps}; saved {self.checkpoint_path}")
                return False
        return True

    def _start_epoch(self) -> None:
        config, state = self.config, self.state
        set_learning_rate(self.nets.optimizers, config.lr * lr_factor(state.epoch, config.epochs, config.decay_epochs))
        self.feed.sampler.set_position(state.epoch, state.samples_done)
        global_batch = config.batch_size * self.info.world_size
        done_steps = state.samples_done // config.batch_size
        self.log.open_bar(
            done_steps * global_batch, self.feed.steps_per_epoch * global_batch, f"epoch {state.epoch + 1}/{config.epochs}"
        )
        self.window = LossWindow(self.device)

    def _train_epoch(self, stops: StopRequests) -> bool:
        """Train on the rest of the epoch; True when `max_steps` was reached before its end."""
        config, state = self.config, self.state
        for batch in self.feed.loader:
            if stops.signal is not None:
                raise KeyboardInterrupt
            self.consistent = False
            edges, photo = self._on_device(batch)
            for hook in self.hooks:
                self.consistent = True  # hooks run before anything changes
                hook(StepContext(state.epoch, state.step, edges, photo, self.nets))
                self.consistent = False
            self.window.add(train_step(
                self.nets, edges, photo,
                lambda_l1=config.lambda_l1, gan_mode=config.gan_mode, d_loss_halve=config.d_loss_halve,
            ))
            state.step += 1
            # sampler positions used: good pairs plus the bad files reported with this batch
            state.samples_done += edges.shape[0] + len(batch.skipped)
            state.epoch_skipped.extend(batch.skipped)
            self.consistent = True
            self.log.advance(config.batch_size * self.info.world_size)
            at_limit = bool(config.max_steps) and state.step >= config.max_steps
            epoch_done = state.samples_done >= self.feed.steps_per_epoch * config.batch_size
            checkpoint_due = bool(config.checkpoint_every) and state.step % config.checkpoint_every == 0
            if state.step % config.log_interval == 0 or checkpoint_due or at_limit or epoch_done:
                self._close_window()
            if checkpoint_due and not epoch_done:
                self._save()
            if at_limit and not epoch_done:
                return True
        return False

    def _on_device(self, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        edges = batch.edges.to(self.device, non_blocking=True)
        photo = batch.photo.to(self.device, non_blocking=True)
        if self.channels_last:
            edges = edges.contiguous(memory_format=torch.channels_last)
            photo = photo.contiguous(memory_format=torch.channels_last)
        return edges, photo

    def _close_window(self) -> None:
        """Sync point (every rank, same steps): add the losses since the last one to the epoch sums
        (averaged over ranks), stop on NaN/inf, show the losses."""
        steps = self.window.steps
        if not steps:
            return
        sums, count = self.window.take_all_ranks(self.info)
        if not torch.isfinite(sums).all():
            self._diverged(sums / count)
        self.state.add_losses(sums / self.info.world_size, steps)
        self.log.show_losses((sums / count).tolist())

    def _end_epoch(self) -> None:
        config, state = self.config, self.state
        skipped = gather_lists(state.epoch_skipped, self.info)
        images_per_step = config.batch_size * self.info.world_size
        record = state.epoch_record(images_per_step, lr=self.nets.opt_g.param_groups[0]["lr"], skipped=len(skipped))
        finished_epoch = state.epoch
        state.finish_epoch(record)  # from here on a save means "epoch finished"
        sample_images = None
        if self.feed.sample_edges is not None and self.info.is_main:
            sample_images = sample_grid_images(
                self.nets.generator, self.feed.sample_edges, self.feed.sample_photos,
                mode=config.sample_mode, seed=config.seed, device=self.device,
            )
        if self.info.is_main:
            self._check_weights_finite()  # before any file of this epoch is written
            self.log.record_skipped(finished_epoch, skipped)
            self.log.write_history(state.history)
            if sample_images is not None:
                self.log.save_samples(sample_images, finished_epoch, cell=min(256, config.image_size * 2))
            if config.save_epoch_weights:
                formats.save_epoch_weights(self.run_dir, finished_epoch, self.nets.generator, self.nets.discriminator)
        self._save(weights_checked=True)  # every rank: each hands rank 0 its RNG states
        self.log.message(epoch_summary(record, config.epochs))

    # -- saving and stopping -------------------------------------------------------------------

    def _save(self, weights_checked: bool = False, gather: bool = True) -> None:
        """Write last.pt (rank 0), never with NaN/inf weights: those stop training instead.

        Called by every rank at the same step: the RNG states of all ranks are gathered into it
        (a collective), so each rank resumes with its own dropout noise. `gather=False` (Ctrl-C,
        where ranks may have stopped at different steps) saves rank 0's alone."""
        rank_rng = gather_rank_rng(self.info) if gather else None
        if not self.info.is_main:
            return
        if not weights_checked:
            self._check_weights_finite()
        save_run(self.checkpoint_path, self.nets, self.state, self.config, self.info.world_size, rank_rng)

    def _save_on_interrupt(self, stopped: bool) -> None:
        """Ctrl-C or SIGTERM: save last.pt if the state is whole and finite, else keep the last one."""
        self.log.close_bar()
        if self.consistent and self._fold_window_locally() and self.nets.weights_finite():
            self._save(weights_checked=True, gather=False)
            self.log.message(
                f"{'stopped' if stopped else 'interrupted'} in epoch {self.state.epoch + 1}/{self.config.epochs}, "
                f"step {self.state.step}: saved {self.checkpoint_path}; "
                f"continue with: python -m edges2shoes_utils train --resume {self.run_dir}"
            )
        else:
            self.log.message(f"interrupted mid-step: {self.checkpoint_path} from the last save is kept")

    def _fold_window_locally(self) -> bool:
        """On an interrupt: count this rank's unsynced losses into the epoch; False if any is NaN/inf."""
        if not self.window.steps:
            return True
        taken = self.window.take_local()
        if taken is None:
            return False
        self.state.add_losses(*taken)
        return True

    def _check_weights_finite(self) -> None:
        if not self.nets.weights_finite():
            raise TrainingDiverged(
                f"the weights became NaN or infinite by step {self.state.step} (epoch {self.state.epoch}); training stopped "
                f"and the last good checkpoint {self.checkpoint_path} is kept. Try --precision fp32 or a lower --lr"
            )

    def _diverged(self, means: torch.Tensor) -> None:
        self.log.close_bar()
        kept = (
            f"the last good checkpoint {self.checkpoint_path} is kept" if self.checkpoint_path.exists()
            else "no checkpoint had been saved yet"
        )
        raise TrainingDiverged(
            f"a loss became NaN or infinite by step {self.state.step} (epoch {self.state.epoch}; "
            f"{describe_losses(means.tolist())}); training stopped and "
            f"{kept}. Try --precision fp32, a lower --lr, or check the data; resume with --resume {self.run_dir}"
        )


__all__ = ["TrainConfig", "TrainResult", "StepContext", "TrainingDiverged", "train"]
