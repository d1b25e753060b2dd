"""How good is a generator? Scores on a val set, for one set of weights or many at once.

`evaluate(generator, dataset)` runs the generator over the set (batched, under inference mode) and
scores every image: L1, PSNR and SSIM always, LPIPS and FID when their backbones are available
(`metrics`). `evaluate_many(sources, dataset)` does the same for several weights (the epochs of a
run, the original notebook's weights, the official model) sharing one pass of FID statistics over
the real photos. `report.write_report` turns the results into a folder of JSON, CSV, pictures and
an index.html.

Test-time mode (as in pix2pix, Isola et al. 2017; see `modes`): "eval" uses the batch-norm running
statistics and no dropout, so results are deterministic; "train" is what the official code does at
test time unless `--eval` is given (each image normalised with its own statistics, as with its batch
size of 1, and dropout on), seeded per image so a run repeats exactly. The published edges2shoes
FIDs were taken in train mode. Evaluation defaults to eval mode, so that comparing epochs or runs is
not blurred by dropout noise; pass mode="train" to compare with the published figures. The mode and
seed go into every report.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from ..weights.load import load_generator
from ..util.errors import ConfigError, DataError, Skipped
from .metrics import (
    Downloader,
    FidScorer,
    LpipsScorer,
    finite_or_none,
    make_fid,
    make_lpips,
    pixel_metrics,
    to_uint8,
)
from .modes import Forward, Mode, forward_in_mode
from .results import EvalResult, ImageScore, Sample
from .sources import epoch_of, source_labels

# --------------------------------------------------------------------------------------------------
# Reading the set.


def item_name(dataset: Any, index: int) -> str:
    """The file name behind `dataset[index]` when the dataset lists its files, else '#index'."""
    for attribute in ("files", "paths", "samples", "image_paths"):
        files = getattr(dataset, attribute, None)
        if files is not None:
            with contextlib.suppress(IndexError, TypeError, KeyError):
                entry = files[index]
                entry = entry[0] if isinstance(entry, (tuple, list)) else entry
                return Path(str(entry)).name
    return f"#{index}"


def _load_items(dataset: Any, indices: Sequence[int]) -> tuple[list[int], list[torch.Tensor], list[torch.Tensor], list[str]]:
    kept, edges, photos, skipped = [], [], [], []
    for index in indices:
        try:
            edge, photo = dataset[index][:2]
        except DataError as error:  # an unreadable file is reported, not fatal
            skipped.append(f"{item_name(dataset, index)}: {error}")
            continue
        kept.append(index)
        edges.append(edge)
        photos.append(photo)
    return kept, edges, photos, skipped


# --------------------------------------------------------------------------------------------------
# The metrics an evaluation computes.


def _resolve_fid(
    fid: Union[bool, nn.Module, FidScorer, Skipped], download: bool, downloader: Downloader | None
) -> FidScorer | Skipped:
    if isinstance(fid, (FidScorer, Skipped)):
        return fid
    if fid is False or fid is None:
        return Skipped("fid", "turned off")
    if isinstance(fid, nn.Module):
        return make_fid(feature=fid)
    return make_fid(download=download, downloader=downloader)


def _resolve_lpips(
    lpips: Union[bool, LpipsScorer, Skipped], download: bool, downloader: Downloader | None
) -> LpipsScorer | Skipped:
    if isinstance(lpips, (LpipsScorer, Skipped)):
        return lpips
    if lpips is False or lpips is None:
        return Skipped("lpips", "turned off")
    return make_lpips(download=download, downloader=downloader)


def summarize(scores: Sequence[ImageScore]) -> dict[str, float | None]:
    """Means over images. PSNR of identical pairs is infinite: the mean is then infinite too
    (written as None), as any average including it would be."""
    summary: dict[str, float | None] = {}
    for metric in ("l1", "psnr", "ssim", "lpips"):
        values = [getattr(s, metric) for s in scores]
        if metric == "lpips" and any(v is None for v in values):
            summary[metric] = None
        elif metric == "psnr" and any(v is None for v in values):
            summary[metric] = None
        else:
            summary[metric] = sum(values) / len(values)
    return summary


# --------------------------------------------------------------------------------------------------
# One pass over the set.


@dataclass
class _Tally:
    """What the batches of one evaluation have gathered so far."""

    keep: int  # best and worst images kept
    grid_images: int  # first images kept
    scores: list[ImageScore] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    best: list[Sample] = field(default_factory=list)
    worst: list[Sample] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    image_size: int = 0
    generator_seconds: float = 0.0

    def add_samples(self, batch: list[Sample]) -> None:
        self.samples += batch[: max(0, self.grid_images - len(self.samples))]
        self.best = _keep_extremes(self.best, batch, self.keep, worst=False)
        self.worst = _keep_extremes(self.worst, batch, self.keep, worst=True)


def _keep_extremes(pool: list[Sample], new: Iterable[Sample], k: int, worst: bool) -> list[Sample]:
    merged = sorted([*pool, *new], key=lambda s: (s.l1, s.index), reverse=worst)
    return merged[:k]


def _score_batch(
    tally: _Tally,
    dataset: Any,
    indices: range,
    forward: Forward,
    device: torch.device,
    fid_scorer: FidScorer | Skipped,
    lpips_scorer: LpipsScorer | Skipped,
    need_real: bool,
) -> None:
    """Generate and score the images `indices` of `dataset`, adding everything to `tally`."""
    kept, edges_list, photos_list, bad = _load_items(dataset, indices)
    tally.skipped_files += bad
    if not kept:
        return
    edges = torch.stack(edges_list).to(device)
    photos = torch.stack(photos_list).to(device)
    tally.image_size = edges.shape[-1]
    t0 = time.perf_counter()
    fakes = forward(edges, indices.start)
    tally.generator_seconds += time.perf_counter() - t0
    # One 8-bit conversion per batch serves the metrics, FID and the kept pictures.
    fake_u8, photo_u8 = to_uint8(fakes), to_uint8(photos)
    batch_scores = {k: v.tolist() for k, v in pixel_metrics(fake_u8, photo_u8).items()}
    fake_u8, photo_u8, edges_u8 = fake_u8.cpu(), photo_u8.cpu(), to_uint8(edges).cpu()
    batch_lpips = lpips_scorer(fake_u8, photo_u8).tolist() if isinstance(lpips_scorer, LpipsScorer) else None
    if isinstance(fid_scorer, FidScorer):
        fid_scorer.add_fake(fake_u8)
        if need_real:
            fid_scorer.add_real(photo_u8)
    batch_samples = []
    for j, index in enumerate(kept):
        label = item_name(dataset, index)
        tally.scores.append(
            ImageScore(
                index=index,
                name=label,
                l1=batch_scores["l1"][j],
                psnr=finite_or_none(batch_scores["psnr"][j]),
                ssim=batch_scores["ssim"][j],
                lpips=batch_lpips[j] if batch_lpips is not None else None,
            )
        )
        batch_samples.append(Sample(index, label, edges_u8[j], photo_u8[j], fake_u8[j], batch_scores["l1"][j]))
    tally.add_samples(batch_samples)


def _final_fid(fid_scorer: FidScorer | Skipped, skipped_metrics: dict[str, str]) -> float | None:
    """The FID of everything added, or None (the reason, if it failed, goes into `skipped_metrics`)."""
    if not isinstance(fid_scorer, FidScorer):
        return None
    try:
        return fid_scorer.compute()
    except Exception as error:  # e.g. too few images: report, never crash
        skipped_metrics["fid"] = f"could not compute FID: {type(error).__name__}: {error}"
        return None


def _default_device(generator: nn.Module) -> torch.device:
    """Where the generator's weights are (the CPU for a module without any)."""
    first = next(generator.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# --------------------------------------------------------------------------------------------------
# Evaluation.


def evaluate(
    generator: nn.Module,
    dataset: Any,
    *,
    mode: Mode = "eval",  # "eval" (deterministic) or "train" (the official test-time behaviour)
    seed: int = 0,  # dropout seed in train mode (each image gets its own, see `util.seeds.image_seed`)
    batch_size: int = 8,  # images per generator call
    fast: bool = True,  # the inference fast path (pre-packed weights) for a UNetGenerator
    precision: str = "fp32",  # fast-path arithmetic: fp32 keeps scores comparable across machines; "auto" may pick bf16
    limit: int | None = None,  # score only the first `limit` images
    fid: Union[bool, nn.Module, FidScorer, Skipped] = True,  # True: Inception FID if available; a module: custom features
    lpips: Union[bool, LpipsScorer, Skipped] = True,
    download: bool = True,  # may FID/LPIPS backbones be downloaded (short timeout) when not cached
    downloader: Downloader | None = None,  # injected by tests
    name: str = "generator",
    source: str | None = None,
    epoch: int | None = None,
    keep: int = 4,  # best and worst images kept for the report
    grid_images: int = 8,  # first images kept for the grid
    device: str | torch.device | None = None,  # default: where the generator's weights are
    progress: bool = False,
) -> EvalResult:
    """Score `generator` on `dataset` (items `(edges, photo)` in [-1, 1]); see the module docstring."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1, got {limit}")
    n_total = len(dataset)
    n = n_total if limit is None else min(limit, n_total)
    if n == 0:
        raise DataError("the evaluation set is empty")
    device = torch.device(device if device is not None else _default_device(generator))

    fid_scorer = _resolve_fid(fid, download, downloader)
    lpips_scorer = _resolve_lpips(lpips, download, downloader)
    skipped_metrics = {s.what: s.reason for s in (fid_scorer, lpips_scorer) if isinstance(s, Skipped)}
    need_real = isinstance(fid_scorer, FidScorer) and fid_scorer.n_real == 0
    if isinstance(fid_scorer, FidScorer):
        fid_scorer.reset_fake()

    tally = _Tally(keep=keep, grid_images=grid_images)
    start = time.perf_counter()
    batches = range(0, n, batch_size)
    if progress:
        batches = tqdm(batches, desc=f"evaluate {name}", unit="batch")
    forward_context = forward_in_mode(generator, mode=mode, seed=seed, fast=fast, precision=precision, device=device)
    with forward_context as forward, torch.inference_mode():
        for first in batches:
            indices = range(first, min(first + batch_size, n))
            _score_batch(tally, dataset, indices, forward, device, fid_scorer, lpips_scorer, need_real)
    if not tally.scores:
        raise DataError(
            f"no image of the evaluation set could be read ({len(tally.skipped_files)} skipped): {tally.skipped_files[:3]}"
        )

    summary = summarize(tally.scores)
    summary["fid"] = _final_fid(fid_scorer, skipped_metrics)
    return EvalResult(
        name=name,
        source=source,
        mode=mode,
        seed=seed,
        image_size=tally.image_size,
        scores=tally.scores,
        summary=summary,
        skipped_metrics=skipped_metrics,
        skipped_files=tally.skipped_files,
        seconds=time.perf_counter() - start,
        generator_seconds=tally.generator_seconds,
        samples=tally.samples,
        best=tally.best,
        worst=tally.worst,
        epoch=epoch,
    )


def evaluate_many(
    sources: Sequence[Union[str, tuple[str, nn.Module]]],
    dataset: Any,
    *,
    fid: Union[bool, nn.Module] = True,
    lpips: bool = True,
    download: bool = True,
    downloader: Downloader | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **options: Any,
) -> list[EvalResult]:
    """`evaluate` for each source (a weights source for `weights.load_generator`, or a
    `(label, generator)` pair), loading one generator at a time. FID's real-photo statistics and
    the metric backbones are built once and shared."""
    fid_scorer = _resolve_fid(fid, download, downloader)
    lpips_scorer = _resolve_lpips(lpips, download, downloader)
    named = [s for s in sources if isinstance(s, str)]
    labels = iter(source_labels(named))
    results = []
    for source in sources:
        if isinstance(source, str):
            label, generator, origin = next(labels), load_generator(source, device=device), source
        else:
            (label, generator), origin = source, None
        results.append(
            evaluate(
                generator,
                dataset,
                fid=fid_scorer,
                lpips=lpips_scorer,
                name=label,
                source=origin,
                epoch=epoch_of(origin) if origin else None,
                device=device,
                progress=progress,
                **options,
            )
        )
        del generator
    return results
