"""What a run shows and keeps besides its weights: messages and the progress bar, the loss history
(`losses.json`, `losses.csv`, `losses.png`), the per-epoch sample grids and the list of skipped files.

Only rank 0 prints and writes; on other ranks every method is a no-op.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..weights.formats import unwrap_model
from ..nets import count_parameters
from ..nets.runner import plain_runner
from ..util.atomic import atomic_write_text
from ..util.images import image_grid, plot_curves, save_image
from ..util.seeds import image_seed
from .config import TrainConfig
from .distributed import DistInfo
from .feed import TrainingFeed
from .networks import Networks
from .step import LOSS_NAMES, LOSS_TITLES


def describe_losses(values: Sequence[float], digits: str = ".4g") -> str:
    """"G adversarial 0.693, G L1 0.41, ..." for values in the order of LOSS_NAMES."""
    return ", ".join(f"{LOSS_TITLES[k]} {v:{digits}}" for k, v in zip(LOSS_NAMES, values))


class RunLog:
    """Messages (through the bar while one is open), the progress bar and the log files of a run."""

    def __init__(self, run_dir: Path, info: DistInfo, progress: bool) -> None:
        self.run_dir = run_dir
        self.is_main = info.is_main
        self.progress = progress
        self.bar: tqdm | None = None

    def message(self, text: str) -> None:
        if not self.is_main:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    # -- the progress bar, counting images -----------------------------------------------------

    def open_bar(self, initial: int, total: int, description: str) -> None:
        if not (self.is_main and self.progress):
            return
        self.bar = tqdm(total=total, initial=initial, unit="img", desc=description, dynamic_ncols=True, smoothing=0.1)

    def advance(self, images: int) -> None:
        if self.bar is not None:
            self.bar.update(images)

    def show_losses(self, means: Sequence[float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({LOSS_TITLES[k].replace(" ", "_"): f"{v:.3f}" for k, v in zip(LOSS_NAMES, means)}, refresh=False)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- files ---------------------------------------------------------------------------------

    def write_history(self, history: list[dict]) -> None:
        """losses.json and losses.csv (one record per epoch) and the curves in losses.png."""
        if not self.is_main:
            return
        atomic_write_text(self.run_dir / "losses.json", json.dumps(history, indent=2) + "\n")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(self.run_dir / "losses.csv", buffer.getvalue())
        series = {LOSS_TITLES[k]: [r[k] for r in history] for k in LOSS_NAMES}
        plot_curves(series, self.run_dir / "losses.png", title="pix2pix losses per epoch", x=[r["epoch"] for r in history])

    def save_samples(self, images: dict, epoch: int, cell: int) -> None:
        """samples/epoch_{epoch}.png: one column per entry of `images`, one row per sample pair."""
        if not self.is_main:
            return
        save_image(image_grid(images, cell=cell), self.run_dir / "samples" / f"epoch_{epoch}.png")

    def record_skipped(self, epoch: int, skipped: list[str]) -> None:
        """Say how many files the epoch skipped and append them to skipped.txt."""
        if not (skipped and self.is_main):
            return
        more = " ..." if len(skipped) > 5 else ""
        self.message(f"epoch {epoch}: skipped {len(skipped)} unreadable file(s): " + "; ".join(skipped[:5]) + more)
        with open(self.run_dir / "skipped.txt", "a", encoding="utf-8") as handle:
            handle.writelines(f"epoch {epoch}\t{line}\n" for line in skipped)


def run_header(
    config: TrainConfig, feed: TrainingFeed, nets: Networks, *,
    world_size: int, device: torch.device, channels_last: bool, run_dir: Path,
) -> str:
    """The two lines a run opens with: the data and batch, then the networks and the machinery."""
    c = config
    return (
        f"pix2pix on {feed.root}: {len(feed.dataset)} training pairs, {c.image_size}x{c.image_size}, "
        f"{feed.steps_per_epoch} steps per epoch of {c.batch_size} x {world_size} process(es)\n"
        f"G {count_parameters(nets.generator):,} parameters (ngf {c.ngf}, {c.resolved_levels()} levels), "
        f"D {count_parameters(nets.discriminator):,} (ndf {c.ndf}); device {device}, {nets.precision.name}, "
        f"{'channels_last, ' if channels_last else ''}{'compiled, ' if c.compile else ''}"
        f"{feed.num_workers} loader worker(s); lambda_l1 {c.lambda_l1}, lr {c.lr}; run folder {run_dir}"
    )


def epoch_summary(record: dict, epochs: int) -> str:
    """The line printed when an epoch ends: its losses, images and speed."""
    epoch, rate = record["epoch"], record["images_per_s"]
    return (
        f"epoch {epoch + 1}/{epochs} (files *_{epoch}.pt): " + describe_losses([record[k] for k in LOSS_NAMES], ".4f")
        + f"; {record['images']} images in {record['seconds']:.1f} s ({rate if rate is not None else '?'} images/s)"
    )


def sample_grid_images(
    generator: nn.Module, edges: torch.Tensor, photos: torch.Tensor, *, mode: str, seed: int, device: torch.device,
) -> dict[str, list[torch.Tensor]]:
    """The fixed sample pairs generated as `generate` and evaluation would (`nets.runner`): each image
    normalised on its own statistics, dropout seeded per image by `image_seed(seed, i)`. Nothing of
    training changes: no running statistic, no RNG state."""
    runner = plain_runner(unwrap_model(generator), mode)
    seeds = [image_seed(seed, i) for i in range(len(edges))] if mode == "train" else None
    fake = runner.run(edges.to(device), seeds).cpu()
    return {"Input": list(edges), "Ground truth": list(photos), "Generated": list(fake)}


__all__ = ["RunLog", "describe_losses", "run_header", "epoch_summary", "sample_grid_images"]
