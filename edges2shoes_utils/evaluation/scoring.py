"""How good is a generator? Scores on a val set, for one set of weights or many at once.

`evaluate(generator, dataset)` runs the generator over the set (batched, under inference mode) and
scores every image: L1, PSNR and SSIM always, LPIPS and FID when their backbones are available
(`metrics`). `evaluate_many(sources, dataset)` does the same for several weights (the epochs of a
run, the original notebook's weights, the official model) sharing one pass of FID statistics over
the real photos. `report.write_report` turns the results into a folder of JSON, CSV, pictures and
an index.html.

Test-time mode (as in pix2pix, Isola et al. 2017): "eval" uses the batch-norm running statistics and
no dropout, so results are deterministic; "train" is what the official code does at test time
unless `--eval` is given (each image normalised with its own statistics, as with its batch size of
1, and dropout on), seeded per image so a run repeats exactly. The published edges2shoes FIDs were
taken in train mode. Evaluation defaults to eval mode, so that comparing epochs or runs is not
blurred by dropout noise; pass mode="train" to compare with the published figures. The mode and
seed go into every report.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, Union

import torch
from torch import nn

from ..util.errors import ConfigError, DataError
from .metrics import (
    Downloader,
    FidScorer,
    LpipsScorer,
    Skipped,
    finite_or_none,
    make_fid,
    make_lpips,
    pixel_metrics,
    to_uint8,
)
from ..nets.models import UNetGenerator

Mode = Literal["eval", "train"]
MODES: tuple[str, ...] = ("eval", "train")

# Published edges2shoes FIDs on the 200 val images (MMagic's evaluation of the official pix2pix
# generator, and MMagic's own retrain at batch 4 for 190k iterations); both in train mode.
REFERENCE_FID: dict[str, float] = {
    "official pix2pix edges2shoes generator (evaluated by MMagic)": 75.8,
    "MMagic pix2pix retrain": 84.4,
}
REAL_VAL_SIZE = 200  # images in edges2shoes/val

# --------------------------------------------------------------------------------------------------
# Results.


@dataclass
class ImageScore:
    index: int  # position in the dataset
    name: str  # file name where the dataset knows it
    l1: float
    psnr: float | None  # None for identical images (infinite PSNR)
    ssim: float
    lpips: float | None = None


@dataclass
class Sample:
    """One val image kept for pictures: uint8 CHW tensors (small), with its score."""

    index: int
    name: str
    edges: torch.Tensor
    photo: torch.Tensor
    fake: torch.Tensor
    l1: float


@dataclass
class EvalResult:
    name: str  # label in tables, e.g. "generator_3" or "pix2pix-official"
    source: str | None  # what was loaded (path or named source)
    mode: str
    seed: int
    image_size: int
    scores: list[ImageScore]
    summary: dict[str, float | None]  # l1, psnr, ssim, lpips, fid (None = not computed)
    skipped_metrics: dict[str, str] = field(default_factory=dict)  # metric -> reason
    skipped_files: list[str] = field(default_factory=list)  # "path: reason"
    seconds: float = 0.0  # wall time of the whole evaluation
    generator_seconds: float = 0.0  # wall time spent in the generator alone
    samples: list[Sample] = field(default_factory=list)  # the first images, for the grid
    best: list[Sample] = field(default_factory=list)  # lowest L1 first
    worst: list[Sample] = field(default_factory=list)  # highest L1 first
    epoch: int | None = None

    @property
    def n_images(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the pictures, JSON-ready."""
        return {
            "name": self.name,
            "source": self.source,
            "epoch": self.epoch,
            "mode": self.mode,
            "seed": self.seed,
            "image_size": self.image_size,
            "n_images": self.n_images,
            "summary": self.summary,
            "skipped_metrics": self.skipped_metrics,
            "skipped_files": self.skipped_files,
            "seconds": round(self.seconds, 3),
            "generator_seconds": round(self.generator_seconds, 3),
            "images_per_second": round(self.n_images / self.generator_seconds, 2) if self.generator_seconds else None,
            "best": [s.name for s in self.best],
            "worst": [s.name for s in self.worst],
        }


# --------------------------------------------------------------------------------------------------
# Test-time modes.


def image_seed(seed: int, index: int) -> int:
    """The dropout seed of dataset image `index` in train mode: fixed per (seed, image), so a score
    never depends on the batch size, on `limit` or on the images evaluated before it."""
    return seed * 1_000_003 + index


@contextlib.contextmanager
def generator_mode(generator: nn.Module, mode: str) -> Iterator[nn.Module]:
    """Put any module in test-time `mode` and restore it afterwards (the path for generators that
    are not a `UNetGenerator`; those go through `fastpath`).

    In "train" mode batch norm uses the statistics of the batch it sees but its running averages are
    left untouched (`track_running_stats` off for the duration), so evaluating never changes weights.
    """
    if mode not in MODES:
        raise ConfigError(f"test-time mode must be one of {MODES}, not {mode!r}")
    was_training = {m: m.training for m in generator.modules()}
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracking = [m.track_running_stats for m in norms]
    try:
        if mode == "eval":
            generator.eval()
        else:
            generator.train()
            for m in norms:
                m.track_running_stats = False
        yield generator
    finally:
        for m, flag in zip(norms, tracking):
            m.track_running_stats = flag
        for m, flag in was_training.items():
            m.train(flag)


def run_generator(generator: nn.Module, edges: torch.Tensor, *, mode: str, seed: int, first_index: int) -> torch.Tensor:
    """Generated photos for a batch from a module already in `mode` (see `generator_mode`).

    Train mode runs one image at a time (batch norm on that image's statistics, as the official
    test script's batch size of 1), with torch's RNG seeded by `image_seed` and the caller's
    random state restored afterwards.
    """
    if mode == "eval":
        return generator(edges)
    outputs = []
    devices = [edges.device] if edges.device.type == "cuda" else []
    for offset in range(len(edges)):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(image_seed(seed, first_index + offset))
            outputs.append(generator(edges[offset : offset + 1]))
    return torch.cat(outputs)


Forward = Callable[[torch.Tensor, int], torch.Tensor]  # (edges batch, index of its first image) -> photos


@contextlib.contextmanager
def forward_in_mode(
    generator: nn.Module, *, mode: str, seed: int, fast: bool, precision: str, device: torch.device
) -> Iterator[Forward]:
    """A function generating photos in test-time `mode`, fp32 in [-1, 1].

    A `UNetGenerator` runs through `fastpath.build_runner` (the inference code's runner: batched
    even in train mode, each image normalised on its own statistics, dropout masks from one seeded
    generator per image; `fast` adds folded norms and pre-packed weights); other modules through
    `generator_mode`. Neither changes the generator's weights or flags.
    """
    if mode not in MODES:
        raise ConfigError(f"test-time mode must be one of {MODES}, not {mode!r}")
    if isinstance(generator, UNetGenerator):
        from ..inference.fastpath import build_runner

        runner = build_runner(generator, mode=mode, fast=fast, device=device, precision=precision)

        def forward(edges: torch.Tensor, first: int) -> torch.Tensor:
            seeds = [image_seed(seed, first + i) for i in range(len(edges))] if mode == "train" else None
            return runner.run(edges, seeds)

        yield forward
    else:
        with generator_mode(generator, mode):
            yield lambda edges, first: run_generator(
                generator, edges, mode=mode, seed=seed, first_index=first
            ).float().clamp(-1, 1)


# --------------------------------------------------------------------------------------------------
# Evaluation.


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


def _keep_extremes(pool: list[Sample], new: Iterable[Sample], k: int, worst: bool) -> list[Sample]:
    merged = sorted([*pool, *new], key=lambda s: (s.l1, s.index), reverse=worst)
    return merged[:k]


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


def evaluate(
    generator: nn.Module,
    dataset: Any,
    *,
    mode: Mode = "eval",  # "eval" (deterministic) or "train" (the official test-time behaviour)
    seed: int = 0,  # dropout seed in train mode (each image gets its own, see `image_seed`)
    batch_size: int = 8,  # images per generator call
    fast: bool = True,  # the inference fast path (folded norms, pre-packed weights) for a UNetGenerator
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
    if device is None:
        first = next(generator.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    fid_scorer = _resolve_fid(fid, download, downloader)
    lpips_scorer = _resolve_lpips(lpips, download, downloader)
    skipped_metrics = {s.what: s.reason for s in (fid_scorer, lpips_scorer) if isinstance(s, Skipped)}
    need_real = isinstance(fid_scorer, FidScorer) and fid_scorer.n_real == 0
    if isinstance(fid_scorer, FidScorer):
        fid_scorer.reset_fake()

    scores: list[ImageScore] = []
    samples: list[Sample] = []
    best: list[Sample] = []
    worst: list[Sample] = []
    skipped_files: list[str] = []
    image_size = 0
    generator_seconds = 0.0
    start = time.perf_counter()
    step = batch_size
    batches = range(0, n, step)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"evaluate {name}", unit="batch")
    forward_context = forward_in_mode(generator, mode=mode, seed=seed, fast=fast, precision=precision, device=device)
    with forward_context as forward, torch.inference_mode():
        for first in batches:
            kept, edges_list, photos_list, bad = _load_items(dataset, range(first, min(first + step, n)))
            skipped_files += bad
            if not kept:
                continue
            edges = torch.stack(edges_list).to(device)
            photos = torch.stack(photos_list).to(device)
            image_size = edges.shape[-1]
            t0 = time.perf_counter()
            fakes = forward(edges, first)
            generator_seconds += time.perf_counter() - t0
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
                scores.append(
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
            samples += batch_samples[: max(0, grid_images - len(samples))]
            best = _keep_extremes(best, batch_samples, keep, worst=False)
            worst = _keep_extremes(worst, batch_samples, keep, worst=True)
    if not scores:
        raise DataError(f"no image of the evaluation set could be read ({len(skipped_files)} skipped): {skipped_files[:3]}")

    summary = summarize(scores)
    summary["fid"] = None
    if isinstance(fid_scorer, FidScorer):
        try:
            summary["fid"] = fid_scorer.compute()
        except Exception as error:  # e.g. too few images: report, never crash
            skipped_metrics["fid"] = f"could not compute FID: {type(error).__name__}: {error}"
    return EvalResult(
        name=name,
        source=source,
        mode=mode,
        seed=seed,
        image_size=image_size,
        scores=scores,
        summary=summary,
        skipped_metrics=skipped_metrics,
        skipped_files=skipped_files,
        seconds=time.perf_counter() - start,
        generator_seconds=generator_seconds,
        samples=samples,
        best=best,
        worst=worst,
        epoch=epoch,
    )


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
# Several weights at once.

EPOCH_FILE = re.compile(r"generator_(\d+)\.pt$")


def epoch_of(source: str) -> int | None:
    """5 for '.../generator_5.pt' (the per-epoch files of a run), else None."""
    match = EPOCH_FILE.search(str(source))
    return int(match.group(1)) if match else None


def expand_sources(sources: Sequence[str]) -> list[str]:
    """A run folder stands for its per-epoch generator files, in epoch order; anything else (a file,
    'kaggle', 'pix2pix-official') is passed through."""
    expanded: list[str] = []
    for source in sources:
        path = Path(source)
        epoch_files = sorted(path.glob("generator_*.pt"), key=lambda p: epoch_of(p.name) or 0) if path.is_dir() else []
        epoch_files = [p for p in epoch_files if epoch_of(p.name) is not None]
        expanded += [str(p) for p in epoch_files] if epoch_files else [source]
    return expanded


def source_labels(sources: Sequence[str]) -> list[str]:
    """Short unique labels: file stems ('generator_3'), with the parent folder added where two
    sources would share a label."""
    def short(source: str, parents: int) -> str:
        path = Path(source)
        if not path.exists():
            return source
        parts = [*path.parent.parts[-parents:], path.stem] if parents else [path.stem]
        return "/".join(parts)

    labels = [short(s, 0) for s in sources]
    for parents in (1, 2, 3):
        duplicated = {label for label in labels if labels.count(label) > 1}
        if not duplicated:
            break
        labels = [short(s, parents) if label in duplicated else label for s, label in zip(sources, labels)]
    return labels


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
            from ..checkpoints.weights import load_generator

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


def is_real_val_set(dataset: Any, results: Sequence[EvalResult]) -> bool:
    """True when the results cover the whole edges2shoes val split (200 pairs), the set the
    published FIDs were measured on. The synthetic set marks itself, so it never passes."""
    root = getattr(dataset, "root", None)
    if root is not None and any((Path(root) / marker).exists() for marker in ("SYNTHETIC.json",)):
        return False
    split = getattr(dataset, "split", "val")
    return split == "val" and len(dataset) == REAL_VAL_SIZE and all(r.n_images == REAL_VAL_SIZE for r in results)


def smoke_inputs(folder: str | Path, *, size: int = 64, n_train: int = 8, n_val: int = 4, epochs: int = 3) -> tuple[Path, list[str]]:
    """Everything the evaluation notebook needs in smoke mode (CI), made on the spot in seconds: a
    synthetic set, a 'run' folder of tiny per-epoch generators (a few L1 steps apart, so the
    per-epoch curve has something to show) and one exported generator. Returns (data root, sources).
    """
    from ..checkpoints.formats import export_generator, save_epoch_weights
    from ..data.pairs import PairsDataset
    from ..nets.models import PatchGANDiscriminator
    from ..data.synthetic import make_synthetic

    folder = Path(folder)
    root = make_synthetic(folder / "data", n=n_train, size=size, seed=0, n_val=n_val)
    train = PairsDataset(root, split="train", image_size=size, jitter=False)
    edges = torch.stack([train[i][0] for i in range(len(train))])
    photos = torch.stack([train[i][1] for i in range(len(train))])
    torch.manual_seed(0)
    levels = max(2, size.bit_length() - 1)  # 64 -> 6 levels, 256 -> 8
    generator = UNetGenerator(ngf=8, levels=levels)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    run = folder / "run"
    for epoch in range(epochs):
        for _ in range(5):
            optimizer.zero_grad()
            (generator(edges) - photos).abs().mean().backward()
            optimizer.step()
        save_epoch_weights(run, epoch, generator, PatchGANDiscriminator(ndf=8))
    exported = export_generator(generator, folder / "exported.safetensors")
    return root, [str(run), str(exported)]


# --------------------------------------------------------------------------------------------------
# Command line.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset root (holding val/*.jpg); default: discover it as training does")
    parser.add_argument(
        "--weights",
        action="append",
        required=True,
        metavar="SOURCE",
        help="a weights file, a run folder (all its generator_N.pt), 'kaggle' or 'pix2pix-official'; repeat to compare",
    )
    parser.add_argument("--out", required=True, help="report folder (metrics.json, CSVs, pictures, index.html)")
    parser.add_argument("--mode", choices=MODES, default="eval", help="test-time mode (default eval; the official numbers used train)")
    parser.add_argument("--seed", type=int, default=0, help="dropout seed in train mode")
    parser.add_argument("--limit", type=int, help="score only the first N images")
    parser.add_argument("--split", default="val", help="dataset split folder (default val)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                        help="arithmetic of the fast path (default fp32: scores comparable across machines)")
    parser.add_argument("--plain", dest="fast", action="store_false", help="run the generator's own layers, not the fast path")
    parser.add_argument("--no-fid", action="store_true", help="skip FID")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--offline", action="store_true", help="never download FID/LPIPS backbones; use cached files only")
    parser.add_argument("--keep", type=int, default=4, help="best and worst images shown (by L1)")
    parser.set_defaults(run=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from ..data.pairs import PairsDataset, resolve_dataset_root
    from ..training.device import pick_device
    from .report import summary_text, write_report

    root = resolve_dataset_root(args.data)
    dataset = PairsDataset(root, split=args.split, image_size=args.image_size, jitter=False)
    sources = expand_sources(args.weights)
    device = pick_device(args.device)
    print(f"evaluating {len(sources)} weights on {len(dataset)} images of {root} ({args.split}), mode {args.mode}, seed {args.seed}")
    results = evaluate_many(
        sources,
        dataset,
        fid=not args.no_fid,
        lpips=not args.no_lpips,
        download=not args.offline,
        device=device,
        mode=args.mode,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        fast=args.fast,
        precision=args.precision,
        keep=args.keep,
        progress=True,
    )
    files = write_report(results, args.out, dataset=dataset, data_root=root, split=args.split)
    print(summary_text(results, real_val_set=is_real_val_set(dataset, results)))
    for r in results:
        rate = r.n_images / r.generator_seconds if r.generator_seconds else float("nan")
        print(f"{r.name}: {r.n_images} images in {r.seconds:.1f} s ({r.generator_seconds:.1f} s in the generator, {rate:.1f} images/s)")
    print(f"report: {files.index}")
    return 0
