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

The CLI (``python -m edges2shoes_utils generate SKETCH... --weights SOURCE --out DIR``) is in
`command_line.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from ..weights import load_generator
from ..nets import UNetGenerator
from ..training.device import check_cuda_supported, pick_device
from ..util.errors import ConfigError
from ..util.images import to_pil
from .fastpath import MODES, Mode, PrecisionName, Runner, choose_runner
from .image_input import describe_image_source, load_image
from .sketch import prepare_sketch

DEFAULT_MODE: Mode = "train"

ImageLike = Any  # path, bytes, PIL image, numpy array or tensor (CHW or 1CHW in [-1, 1])


@dataclass(frozen=True)
class Translation:
    """One input on its way to a shoe: the one result type of `Sketch2Shoe`, the `generate` command,
    the web app and the notebook's upload widget.

    `prepare` fills in the input as the model sees it: `tensor`, (1, C, S, S) in [-1, 1], and
    `preview`, its picture. `translate` adds the `shoe` and the dropout `seed` it used (None in eval
    mode). The rest is for front doors that show more: `original` (the input as handed in, before
    clean-up), `seconds` (how long the answer took) and `files` (where its pictures were saved, by
    name)."""

    label: str
    tensor: torch.Tensor
    preview: Image.Image
    shoe: Image.Image | None = None
    seed: int | None = None
    original: Image.Image | None = None
    seconds: float | None = None
    files: Mapping[str, Path] = field(default_factory=dict)


class Sketch2Shoe:
    """Load once, generate many.

    `generator`: a `UNetGenerator` (its weights are snapshotted by the fast path; build a new
    Sketch2Shoe after changing them). `mode`: "train" (default) or "eval", see the module docstring.
    `seed`: dropout seed for train mode (None: fresh masks each image, from torch's global RNG).
    `fast`: the optimised path (pre-packed oneDNN weights, bf16 on CPUs with native bf16; autocast
    on CUDA), used where it beats plain on this machine (`describe()` says when it does not); False
    runs the generator's own fp32 layers.
    `device`: "cpu", "cuda", "auto" or None (the generator's device). `precision`: the fast path's
    number format, "auto", "fp32", "bf16" or "fp16" (CUDA only; the words of `training.device`).
    `image_size`: the side sketches are prepared at (default 2**levels: 256 for the paper's 8-level
    generator). `compile`: also `torch.compile` the fast path (off by default: compiling takes tens
    of seconds; see `fastpath.build_runner`).
    """

    def __init__(
        self,
        generator: UNetGenerator,
        *,
        mode: Mode = DEFAULT_MODE,
        seed: int | None = None,
        fast: bool = True,
        device: str | torch.device | None = None,
        precision: PrecisionName = "auto",
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
        self.runner: Runner = choose_runner(generator, mode=mode, fast=fast, device=self.device,
                                            precision=precision, compile=compile)

    @classmethod
    def from_weights(cls, source: str | os.PathLike, *, device: str | torch.device | None = None,
                     load_options: dict | None = None, **kwargs: Any) -> "Sketch2Shoe":
        """Load a generator with `weights.load_generator` (any format it reads: our exports and
        checkpoints, the official model, the original notebook's files; "kaggle" and
        "pix2pix-official" fetch them) and wrap it. `kwargs` go to `Sketch2Shoe`."""
        target = _resolve_device(device, None)
        generator = load_generator(source, device=str(target), **(load_options or {}))
        return cls(generator, device=target, **kwargs)

    # ----------------------------------------------------------------------------------------------

    @property
    def precision(self) -> str:
        return self.runner.precision

    def describe(self) -> str:
        runner = self.runner
        path = (f"fast {self.precision}" + (" compiled" if runner.compiled else "")) if runner.fast else "plain fp32"
        seed = f", seed {self.seed}" if self.mode == "train" and self.seed is not None else ""
        note = f" ({runner.note})" if runner.note else ""
        return f"{self.mode} mode{seed}, {path} on {self.device}{note}"

    def prepare(self, image: ImageLike, *, prepare: bool = True, name: str | None = None) -> Translation:
        """One input as the model will see it. Files, bytes, PIL images and arrays go through
        `sketch.prepare_sketch` (or, with prepare=False, are only loaded and resized, for inputs that
        already look like the dataset's edge maps); tensors are taken as model input as they are."""
        label = name or describe_image_source(image)
        if isinstance(image, torch.Tensor):
            tensor = image.detach()
            if tensor.dim() == 3:
                tensor = tensor.unsqueeze(0)
            if tensor.dim() != 4 or tensor.shape[0] != 1:
                raise ConfigError(f"{label}: expected a (C, H, W) or (1, C, H, W) tensor, got {tuple(tensor.shape)}")
            tensor = tensor.float().cpu()
            return Translation(label, tensor, to_pil(tensor))
        if prepare:
            tensor, preview = prepare_sketch(image, size=self.image_size, name=label)
            return Translation(label, tensor, preview)
        preview = load_image(image, label).resize((self.image_size, self.image_size), Image.Resampling.LANCZOS)
        array = np.asarray(preview, dtype=np.float32) / 127.5 - 1.0
        return Translation(label, torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous(), preview)

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
        inputs instead, `prepare` each one yourself and `translate` the rest (as the CLI does).
        """
        prepared = [self.prepare(item, prepare=prepare) for item in _as_list(images)]
        return [(done.preview, done.shoe) for done in self.translate(prepared, batch_size=batch_size)]

    def translate(self, prepared: Sequence[Translation], *, seeds: Sequence[int] | None = None,
                  batch_size: int = 8) -> list[Translation]:
        """Inputs already through `prepare`, each with its shoe and dropout seed added; batched
        (consecutive inputs of one size). `seeds`: one per input in train mode (default: the
        model's `seed`, else fresh ones)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        chosen: list[int | None] = [None] * len(prepared)  # eval mode: no dropout, no seed
        if self.mode == "train":
            chosen = [int(seed) for seed in seeds] if seeds is not None else list(self._seeds(len(prepared)))
        if len(chosen) != len(prepared):
            raise ConfigError(f"give one seed per input: {len(chosen)} seeds for {len(prepared)} inputs")
        seeded = [replace(item, seed=seed) for item, seed in zip(prepared, chosen)]
        done: list[Translation] = []
        for chunk in _chunks(seeded, batch_size):
            shoes = self.generate_batch(torch.cat([item.tensor for item in chunk]), [item.seed for item in chunk])
            done.extend(replace(item, shoe=to_pil(shoe)) for item, shoe in zip(chunk, shoes))
        return done

    def _seeds(self, n: int) -> list[int]:
        if self.seed is not None:
            return [int(self.seed)] * n
        return torch.randint(0, 2**62, (n,)).tolist()  # the global RNG: torch.manual_seed governs it


# --------------------------------------------------------------------------------------------------
# Inputs.


def _as_list(images: ImageLike | Iterable[ImageLike]) -> list[ImageLike]:
    """A single input or a list of them; a 4-D tensor is a batch of inputs."""
    if isinstance(images, torch.Tensor):
        return list(images.unbind(0)) if images.dim() == 4 else [images]
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        return [images]
    return list(images)


def _chunks(prepared: Sequence[Translation], size: int) -> Iterator[list[Translation]]:
    chunk: list[Translation] = []
    for item in prepared:
        if chunk and (len(chunk) == size or item.tensor.shape != chunk[0].tensor.shape):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def _resolve_device(device: str | torch.device | None, generator: UNetGenerator | None) -> torch.device:
    """The device asked for ("auto", "cpu", "cuda", "cuda:1", ...), else the generator's; a GPU
    this PyTorch build cannot run is refused with what to do instead."""
    if device is None and generator is not None:
        return next(generator.parameters()).device
    if device is None or (isinstance(device, str) and device in ("auto", "cuda", "cpu")):
        resolved = pick_device(device or "auto")
    else:
        resolved = torch.device(device)
    check_cuda_supported(resolved)
    return resolved


__all__ = ["DEFAULT_MODE", "ImageLike", "Sketch2Shoe", "Translation"]
