"""Sketch to shoe: load a pix2pix generator once, turn many sketches or edge maps into photos.

pix2pix (Isola et al. 2017, arXiv 1611.07004). `Sketch2Shoe` wraps a `UNetGenerator` with the
sketch clean-up (`sketch.prepare_sketch`), batching, a fast CPU path (`fastpath.py`) and a choice
of test-time behaviour:

* ``mode="train"`` (the default): the generator runs as the paper runs it at test time, with batch
  norm on the statistics of the image itself and dropout on (the paper, section 3.2: "we apply
  dropout at test time, and we apply batch normalization using the statistics of the test batch";
  the official test script does this with batch size 1 unless `--eval`). It is the default because
  the published results were made that way (the FID 75.8 of the official edges2shoes generator,
  as MMagic evaluated it, calls `.train()` before generating), and because per-image statistics
  adapt to inputs unlike the training edges, such as hand-drawn sketches, where running statistics
  are a guess; users of the official code report `--eval` is sometimes worse. The official
  innermost block has no norm, so one image is a valid batch. Each image is normalised on its own
  even in a batch, so results never depend on batching. Dropout makes results vary: pass `seed`
  for reproducible ones (the same sketch and seed give the same shoe at any batch size, and fast
  or plain alike up to bf16 rounding).
* ``mode="eval"``: running statistics, no dropout. Deterministic and slightly faster (batch norm
  folds into the convolutions); a good choice for a generator trained with large batches.

The CLI: ``python -m edges2shoes_utils generate SKETCH... --weights SOURCE --out DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..util.errors import ConfigError, SketchError
from .fastpath import MODES, Mode, Precision, Runner, build_runner
from ..nets.models import UNetGenerator
from ..util.images import image_grid, save_image, to_pil

DEFAULT_MODE: Mode = "train"

ImageLike = Any  # path, bytes, PIL image, numpy array or tensor (CHW or 1CHW in [-1, 1])


@dataclass(frozen=True)
class Prepared:
    """One input as the model sees it: a (1, C, S, S) tensor in [-1, 1] and its picture."""

    tensor: torch.Tensor
    preview: Image.Image
    label: str


class Sketch2Shoe:
    """Load once, generate many.

    `generator`: a `UNetGenerator` (its weights are snapshotted by the fast path; build a new
    Sketch2Shoe after changing them). `mode`: "train" (default) or "eval", see the module docstring.
    `seed`: dropout seed for train mode (None: fresh masks each image, from torch's global RNG).
    `fast`: the optimised path (bf16 on CPUs with native bf16, pre-packed oneDNN weights, folded
    norms in eval mode; autocast on CUDA); False runs the generator's own fp32 layers.
    `device`: "cpu", "cuda", "auto" or None (the generator's device). `precision`: "auto", "fp32",
    "bf16" (or "fp16" on CUDA) for the fast path. `image_size`: the side sketches are prepared at
    (default 2**levels: 256 for the paper's 8-level generator). `compile`: also `torch.compile` the
    fast path (off by default: compiling takes tens of seconds; see `fastpath.build_runner`).
    """

    def __init__(
        self,
        generator: UNetGenerator,
        *,
        mode: Mode = DEFAULT_MODE,
        seed: int | None = None,
        fast: bool = True,
        device: str | torch.device | None = None,
        precision: Precision = "auto",
        image_size: int | None = None,
        compile: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode must be 'eval' or 'train', not {mode!r}")
        if not isinstance(generator, UNetGenerator):
            raise ConfigError(f"Sketch2Shoe needs a UNetGenerator, got {type(generator).__name__}")
        self.generator = generator
        self.mode: Mode = mode
        self.seed = seed
        self.fast = fast
        self.device = _resolve_device(device, generator)
        self.image_size = image_size or generator.config.multiple
        generator.check_size(self.image_size, self.image_size)
        self.runner: Runner = build_runner(generator, mode=mode, fast=fast, device=self.device,
                                           precision=precision, compile=compile)

    @classmethod
    def from_weights(cls, source: str | os.PathLike, *, device: str | torch.device | None = None,
                     load_options: dict | None = None, **kwargs: Any) -> "Sketch2Shoe":
        """Load a generator with `weights.load_generator` (any format it reads: our exports and
        checkpoints, the official model, the original notebook's files; "kaggle" and
        "pix2pix-official" fetch them) and wrap it. `kwargs` go to `Sketch2Shoe`."""
        from ..checkpoints.weights import load_generator

        target = _resolve_device(device, None)
        generator = load_generator(source, device=str(target), **(load_options or {}))
        return cls(generator, device=target, **kwargs)

    # ----------------------------------------------------------------------------------------------

    @property
    def precision(self) -> str:
        return self.runner.precision

    def describe(self) -> str:
        path = (f"fast {self.precision}" + (" compiled" if self.runner.compiled else "")) if self.fast else "plain fp32"
        seed = f", seed {self.seed}" if self.mode == "train" and self.seed is not None else ""
        return f"{self.mode} mode{seed}, {path} on {self.device}"

    def prepare(self, image: ImageLike, *, prepare: bool = True, name: str | None = None) -> Prepared:
        """One input as the model will see it. Files, bytes, PIL images and arrays go through
        `sketch.prepare_sketch` (or, with prepare=False, are only loaded and resized, for inputs that
        already look like the dataset's edge maps); tensors are taken as model input as they are."""
        label = name or _label(image)
        if isinstance(image, torch.Tensor):
            tensor = image.detach()
            if tensor.dim() == 3:
                tensor = tensor.unsqueeze(0)
            if tensor.dim() != 4 or tensor.shape[0] != 1:
                raise ConfigError(f"{label}: expected a (C, H, W) or (1, C, H, W) tensor, got {tuple(tensor.shape)}")
            tensor = tensor.float().cpu()
            return Prepared(tensor, to_pil(tensor), label)
        if prepare:
            from .sketch import prepare_sketch

            tensor, preview = prepare_sketch(image, size=self.image_size, name=label)
            return Prepared(tensor, preview, label)
        preview = load_rgb(image, label).resize((self.image_size, self.image_size), Image.Resampling.LANCZOS)
        array = np.asarray(preview, dtype=np.float32) / 127.5 - 1.0
        return Prepared(torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous(), preview, label)

    def generate_batch(self, batch: torch.Tensor, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """A (N, C, H, W) batch in [-1, 1] to photos, fp32 in [-1, 1] (clamped), on the CPU."""
        if self.mode == "train" and seeds is None:
            seeds = self._seeds(batch.shape[0])
        return self.runner.run(batch, seeds if self.mode == "train" else None).cpu()

    def generate(self, images: ImageLike | Iterable[ImageLike], *, prepare: bool = True,
                 batch_size: int = 8) -> list[Image.Image]:
        """Photos (RGB PIL images, clamped to the valid range) for one input or a list of inputs."""
        pairs = self.generate_with_previews(images, prepare=prepare, batch_size=batch_size)
        return [generated for _, generated in pairs]

    def generate_with_previews(self, images: ImageLike | Iterable[ImageLike], *, prepare: bool = True,
                               batch_size: int = 8) -> list[tuple[Image.Image, Image.Image]]:
        """(sketch as the model saw it, generated photo) for each input, in order.

        Raises SketchError (naming the file) on the first input that cannot be used; to skip bad
        inputs instead, `prepare` each one yourself and pass the tensors (as the CLI does).
        """
        prepared = [self.prepare(item, prepare=prepare) for item in _as_list(images)]
        photos = self.generate_prepared(prepared, batch_size=batch_size)
        return [(item.preview, photo) for item, photo in zip(prepared, photos)]

    def generate_prepared(self, prepared: Sequence[Prepared], *, batch_size: int = 8) -> list[Image.Image]:
        """Photos for inputs already through `prepare`, batched (consecutive inputs of one size)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        photos: list[Image.Image] = []
        for chunk in _chunks(prepared, batch_size):
            batch = torch.cat([item.tensor for item in chunk])
            photos.extend(to_pil(image) for image in self.generate_batch(batch))
        return photos

    def _seeds(self, n: int) -> list[int]:
        if self.seed is not None:
            return [int(self.seed)] * n
        return torch.randint(0, 2**62, (n,)).tolist()  # the global RNG: torch.manual_seed governs it


# --------------------------------------------------------------------------------------------------
# Inputs.


def load_rgb(image: ImageLike, label: str) -> Image.Image:
    """An input as an RGB PIL image, orientation applied, transparency on white (no clean-up)."""
    from .sketch import load_image

    return load_image(image, label)


def _label(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    filename = getattr(image, "filename", "")
    return str(filename) if filename else "the sketch"


def _as_list(images: ImageLike | Iterable[ImageLike]) -> list[ImageLike]:
    """A single input or a list of them; a 4-D tensor is a batch of inputs."""
    if isinstance(images, torch.Tensor):
        return list(images.unbind(0)) if images.dim() == 4 else [images]
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        return [images]
    return list(images)


def _chunks(prepared: Sequence[Prepared], size: int) -> Iterator[list[Prepared]]:
    chunk: list[Prepared] = []
    for item in prepared:
        if chunk and (len(chunk) == size or item.tensor.shape != chunk[0].tensor.shape):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def _resolve_device(device: str | torch.device | None, generator: UNetGenerator | None) -> torch.device:
    from ..training.device import check_cuda_supported, pick_device

    if device is None and generator is not None:
        return next(generator.parameters()).device
    if device is None or (isinstance(device, str) and device in ("auto", "cuda", "cpu")):
        resolved = pick_device(device or "auto")
    else:
        resolved = torch.device(device)
    check_cuda_supported(resolved)
    return resolved


# --------------------------------------------------------------------------------------------------
# The command line.


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Turn sketches or edge maps into shoe photos. For each input writes NAME.png (the photo) and "
        "NAME_side_by_side.png (the sketch as the model saw it | the photo) into --out. Inputs that "
        "cannot be used are reported and skipped; the exit status is then 2."
    )
    parser.add_argument("sketches", nargs="+", metavar="SKETCH", type=Path,
                        help="image files: JPEG, PNG, WebP, BMP or GIF")
    parser.add_argument("--weights", required=True, metavar="SOURCE",
                        help="a weights file (any format `weights` reads), 'kaggle' or 'pix2pix-official'")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the results")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help="test-time mode: 'train' (paper: per-image batch statistics and dropout; "
                             "the default) or 'eval' (running statistics, deterministic)")
    parser.add_argument("--seed", type=int, default=None,
                        help="dropout seed for --mode train: the same sketch and seed give the same photo")
    parser.add_argument("--no-prepare", dest="prepare", action="store_false",
                        help="skip the sketch clean-up (inputs already look like the dataset's edge maps); "
                             "they are only resized")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if present), 'cpu' or 'cuda'")
    parser.add_argument("--plain", dest="fast", action="store_false",
                        help="run the generator's own fp32 layers instead of the fast path")
    parser.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    model = Sketch2Shoe.from_weights(args.weights, device=args.device, mode=args.mode, seed=args.seed,
                                     fast=args.fast)
    print(f"generating with {model.describe()}")
    written, failed = generate_files(model, args.sketches, args.out, prepare=args.prepare,
                                     batch_size=args.batch_size)
    for source, photo_path, pair_path in written:
        print(f"{source} -> {photo_path}  (side by side: {pair_path})")
    for message in failed:
        print(f"skipped {message}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(args.sketches)} input(s) could not be used", file=sys.stderr)
        return 2
    return 0


def generate_files(
    model: Sketch2Shoe,
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    prepare: bool = True,
    batch_size: int = 8,
) -> tuple[list[tuple[Path, Path, Path]], list[str]]:
    """For each input file write OUT/NAME_shoe.png (the photo) and OUT/NAME_side_by_side.png (model
    input | photo), never over an input or another output. Files that cannot be used are skipped,
    not fatal: returns ([(input, photo, pair)], ["file: reason", ...])."""
    out = Path(out_dir)
    prepared: list[Prepared] = []
    failed: list[str] = []
    for path in paths:
        try:
            prepared.append(model.prepare(path, prepare=prepare, name=str(path)))
        except SketchError as error:
            failed.append(str(error))
    photos = model.generate_prepared(prepared, batch_size=batch_size) if prepared else []
    written = []
    inputs = [Path(p) for p in paths]
    targets = _output_paths([Path(p.label) for p in prepared], out, avoid=inputs)
    for item, photo, (photo_target, pair_target) in zip(prepared, photos, targets):
        photo_path = save_image(photo, photo_target)
        pair = image_grid({"Sketch (model input)": [item.preview], "Generated": [photo]}, cell=model.image_size)
        pair_path = save_image(pair, pair_target)
        written.append((Path(item.label), photo_path, pair_path))
    return written, failed


OUTPUT_SUFFIXES = ("_shoe.png", "_side_by_side.png")


def _output_paths(inputs: Sequence[Path], out: Path, avoid: Sequence[Path] = ()) -> list[tuple[Path, Path]]:
    """(photo, side-by-side) paths per input: the input's stem plus OUTPUT_SUFFIXES, numbered _2,
    _3, ... when a name is already taken by another output or by any input file."""
    taken = {path.resolve() for path in avoid}
    result = []
    for path in inputs:
        stem = path.stem or "sketch"
        base, count = stem, 1
        while any((out / f"{base}{suffix}").resolve() in taken for suffix in OUTPUT_SUFFIXES):
            count += 1
            base = f"{stem}_{count}"
        pair = tuple(out / f"{base}{suffix}" for suffix in OUTPUT_SUFFIXES)
        taken.update(p.resolve() for p in pair)
        result.append(pair)
    return result


__all__ = ["DEFAULT_MODE", "Prepared", "Sketch2Shoe", "configure_cli", "generate_files", "load_rgb"]
