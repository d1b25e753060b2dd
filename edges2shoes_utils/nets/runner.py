"""The generator at test time, one way for every caller: the sample grids of training, evaluation,
`generate`, the widget and the apps.

pix2pix (Isola et al. 2017, arXiv 1611.07004) runs its generator at test time in one of two modes:

* ``"eval"``: batch norm on the running statistics gathered in training, no dropout;
* ``"train"``: as the paper and the official test script run it: batch norm on the statistics of the
  image itself and dropout on. Each image of a batch is normalised on its own, so a result never
  depends on what else is in the batch, and its dropout masks come from one `torch.Generator` per
  image seeded by the caller, drawn in a fixed layout, so a seed gives the same shoe at any batch
  size, on any device and in the fast path (`inference/fastpath.py`) as here.

`test_time_blocks` copies the generator's wiring with its norms and dropout swapped for these
layers (convolutions are shared, or swapped by the caller); `PlainRunner` runs the result.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import ConfigError
from .unet import GeneratorConfig, UNetGenerator

Mode = Literal["eval", "train"]
MODES: tuple[str, ...] = ("eval", "train")

# --------------------------------------------------------------------------------------------------
# Dropout noise: reproducible per image.


@dataclass
class NoiseSource:
    """Dropout masks for one forward pass, drawn from one generator per image.

    Masks are drawn in fp32, NCHW, on the CPU, one image at a time, so the same seed gives the same
    masks whatever the runner's precision, memory layout, device or batch size.
    """

    seeds: Sequence[int]
    generators: list[torch.Generator] = field(init=False)

    def __post_init__(self) -> None:
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in self.seeds]

    def mask(self, like: torch.Tensor, p: float) -> torch.Tensor:
        n, c, h, w = like.shape
        if n != len(self.generators):
            raise ValueError(f"noise for {len(self.generators)} images, batch has {n}")
        keep = [torch.rand((1, c, h, w), generator=g) >= p for g in self.generators]
        return (torch.cat(keep).to(like.dtype) / (1.0 - p)).to(like.device)


class NoiseSlot:
    """Where a runner's dropout layers find the current pass's noise."""

    source: NoiseSource | None = None


class SeededDropout(nn.Module):
    """Dropout whose masks come from the runner's `NoiseSource` (train mode only)."""

    def __init__(self, p: float, slot: NoiseSlot) -> None:
        super().__init__()
        self.p = p
        self.slot = slot

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.slot.source is None:
            raise RuntimeError("train-mode runner called without a NoiseSource (use Runner.run)")
        return x * self.slot.source.mask(x, self.p)


# --------------------------------------------------------------------------------------------------
# Normalisation at test time.


def per_image_batch_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Batch norm with the statistics of each image alone, i.e. exactly `BatchNorm2d.train()` on a
    batch of one, applied image by image (the same op at any batch size, so batching cannot change
    a result). One fused ATen op per image; it accumulates in fp32 for bf16 inputs.

    The ATen op, unlike `F.batch_norm`, accepts a single value per channel: a 1x1 map (the TF
    layout's innermost block) has zero variance and comes out as the norm's shift, as in TensorFlow.
    """

    def one(image: torch.Tensor) -> torch.Tensor:
        return torch.batch_norm(image, weight, bias, None, None, True, 0.0, eps, False)

    if x.shape[0] == 1:
        return one(x)
    return torch.cat([one(x[i : i + 1]) for i in range(x.shape[0])])


class BatchStatNorm(nn.Module):
    """Train-mode batch norm without touching the running statistics (which stay as trained)."""

    def __init__(self, norm: nn.BatchNorm2d, device: torch.device | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", _affine(norm, "weight", device))
        self.register_buffer("bias", _affine(norm, "bias", device))
        self.eps = norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return per_image_batch_norm(x, self.weight, self.bias, self.eps)


class RunningStatNorm(nn.Module):
    """Eval-mode batch norm on the generator's own running statistics, whatever its `.training` flag."""

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        # The same tensors as the generator's (no copy), so the plain runner follows its weights.
        self.running_mean, self.running_var = norm.running_mean, norm.running_var
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _affine(norm: nn.BatchNorm2d, name: str, device) -> torch.Tensor:
    value = getattr(norm, name)
    if value is None:  # affine=False
        value = torch.ones(norm.num_features) if name == "weight" else torch.zeros(norm.num_features)
    return value.detach().float().clone().to(device or value.device)


# --------------------------------------------------------------------------------------------------
# The generator's wiring over test-time layers.

ConvSwap = Callable[[nn.Module], nn.Module]  # a convolution -> the module to run instead


def test_time_blocks(
    generator: UNetGenerator, mode: Mode, *, device: torch.device | None = None, swap_conv: ConvSwap | None = None,
) -> tuple[nn.ModuleList, nn.ModuleList, NoiseSlot]:
    """The generator's encoder and decoder blocks with batch norm and dropout in test-time `mode`
    (see the module docstring), and the slot their dropout reads its noise from. Convolutions are
    the generator's own unless `swap_conv` replaces them; activations and other stateless layers are
    shared. The generator itself is not changed."""
    slot = NoiseSlot()

    def convert(block: nn.Sequential) -> nn.Sequential:
        out: list[tuple[str, nn.Module]] = []
        for name, layer in block.named_children():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and swap_conv is not None:
                out.append((name, swap_conv(layer)))
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):  # SyncBatchNorm too
                out.append((name, BatchStatNorm(layer, device=device) if mode == "train" else RunningStatNorm(layer)))
            elif isinstance(layer, nn.Dropout):
                if mode == "train":
                    out.append((name, SeededDropout(layer.p, slot)))
            else:
                out.append((name, layer))  # convolutions, activations, tanh, instance norm: shared
        return nn.Sequential(OrderedDict(out))

    encoder = nn.ModuleList(convert(block) for block in generator.encoder)
    decoder = nn.ModuleList(convert(block) for block in generator.decoder)
    return encoder, decoder, slot


class PlainRunner(UNetGenerator):
    """The generator's forward pass over test-time layers, in fp32.

    Subclasses `UNetGenerator` only to reuse its `forward` and `check_size` (the U-Net wiring lives
    in one place); `__init__` deliberately skips the parent's, which would allocate fresh weights.
    """

    def __init__(self, config: GeneratorConfig, encoder: nn.ModuleList, decoder: nn.ModuleList, *,
                 mode: Mode, slot: NoiseSlot) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.mode = mode
        self._slot = slot
        # No `.eval()` here: it would recurse into the layers shared with the caller's generator and
        # flip their flags. None of the runner's own layers reads `.training`.

    def run(self, x: torch.Tensor, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """Generate for a (N, C, H, W) batch in [-1, 1]; returns fp32 in [-1, 1].

        `seeds` (train mode): one dropout seed per image; ignored in eval mode. Not re-entrant: one
        call at a time per runner (the dropout layers read this call's noise from the runner).
        """
        if x.dim() != 4:
            raise ConfigError(f"expected a (N, C, H, W) batch, got shape {tuple(x.shape)}")
        if x.shape[1] != self.config.in_channels:
            raise ConfigError(f"the generator takes {self.config.in_channels} channels, got {x.shape[1]}")
        self.check_size(x.shape[-2], x.shape[-1])
        if self.mode == "train":
            if seeds is None or len(seeds) != x.shape[0]:
                raise ValueError("train mode needs one dropout seed per image")
            self._slot.source = NoiseSource(list(seeds))
        try:
            with torch.inference_mode():
                return self._forward_batch(x)
        finally:
            self._slot.source = None

    def _forward_batch(self, x: torch.Tensor) -> torch.Tensor:
        y = self(x.to(device=self._device(), dtype=torch.float32))
        return y.float().clamp_(-1.0, 1.0)

    def _device(self) -> torch.device:
        return next(self.encoder.parameters()).device


def plain_runner(generator: UNetGenerator, mode: Mode) -> PlainRunner:
    """The generator as it runs at test time in `mode`, sharing its weights (on its device)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be 'eval' or 'train', not {mode!r}")
    device = next(generator.parameters()).device
    encoder, decoder, slot = test_time_blocks(generator, mode, device=device)
    return PlainRunner(generator.config, encoder, decoder, mode=mode, slot=slot)


__all__ = ["MODES", "Mode", "NoiseSource", "NoiseSlot", "SeededDropout", "BatchStatNorm", "RunningStatNorm",
           "per_image_batch_norm", "test_time_blocks", "PlainRunner", "plain_runner", "ConvSwap"]
