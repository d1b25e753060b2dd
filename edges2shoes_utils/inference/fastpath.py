"""Runners for the pix2pix U-Net generator (Isola et al. 2017, arXiv 1611.07004) at test time.

A *runner* is a copy of the generator's wiring (it reuses `UNetGenerator.forward`, so skips, the
concatenation order and the in-place LeakyReLU that also rectifies the skip tensors all behave
exactly as in the model) whose layers are swapped for inference versions:

* **plain**: the generator's own fp32 convolutions, shared, not copied;
* **fast** on a CPU: batch norm folded into the convolution before it (eval mode), weights
  pre-packed once into oneDNN's blocked layout, activations fused into the convolutions as oneDNN
  post-ops, channels_last, and bf16 where the CPU has native bf16 arithmetic (AVX512-BF16 or AMX),
  fp32 elsewhere. bf16 is what brings a 256x256 image under 40 ms on the 2-core reference machine
  (the same path in fp32 takes about 75 ms, plain eager fp32 about 105 ms in eval mode); pre-packing
  matters next: a plain `conv2d` call re-orders its weights on every call, which costs more than
  the arithmetic for the deep 512-channel layers at batch 1;
* **fast** on CUDA: folded batch norm, channels_last and autocast (bf16 where supported, else fp16).

Two test-time modes (see `inference.py` for which is the default and why):

* ``"eval"``: batch norm uses the running statistics gathered in training, no dropout;
  deterministic, and the norm can be folded away.
* ``"train"``: as the paper and the official code run the generator at test time: batch norm uses
  the statistics of the image itself (the official test script uses batch size 1, so a batch is one
  image; here each image of a batch is normalised on its own, so results never depend on what else
  is in the batch) and dropout stays on. Masks come from one `torch.Generator` per image, drawn in
  a fixed layout, so a seed gives the same masks in the plain and the fast runner, at any batch size.
"""

from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import ConfigError
from ..nets.models import UNetGenerator

Mode = Literal["eval", "train"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
MODES: tuple[str, ...] = ("eval", "train")

# --------------------------------------------------------------------------------------------------
# What the hardware can do.


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles) and oneDNN can use it.

    Without it oneDNN emulates bf16 with fp32 instructions plus conversions, which is slower than
    plain fp32, so the fast path then stays in fp32.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return native and (supported is None or bool(supported()))


def _mkldnn_packing_available() -> bool:
    """The pre-packed oneDNN convolution ops that torch.compile's CPU backend uses (private API,
    present since torch 2.0); without them the fast path falls back to ordinary conv calls."""
    ops = ("_reorder_convolution_weight", "_reorder_convolution_transpose_weight",
           "_convolution_pointwise", "_convolution_transpose_pointwise")
    return torch.backends.mkldnn.is_available() and all(hasattr(torch.ops.mkldnn, op) for op in ops)


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype:
    """The compute dtype of the fast path: "auto" picks bf16 on CPUs with native bf16, fp32 on other
    CPUs, and bf16 (or fp16 where bf16 is missing) under CUDA autocast."""
    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision in table:
        if device.type == "cpu" and precision == "fp16":
            raise ConfigError("fp16 is for CUDA; on a CPU use precision 'bf16' or 'fp32'")
        return table[precision]
    if precision != "auto":
        raise ConfigError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', not {precision!r}")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32


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


class _NoiseSlot:
    """Where a runner's dropout layers find the current pass's noise."""

    source: NoiseSource | None = None


class SeededDropout(nn.Module):
    """Dropout whose masks come from the runner's `NoiseSource` (train mode only)."""

    def __init__(self, p: float, slot: _NoiseSlot) -> None:
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


def fold_batch_norm(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of one convolution equal to `norm(conv(x))` with running statistics.

    BN scales each *output* channel: dim 0 of a Conv2d weight (out, in, kh, kw) but dim 1 of a
    ConvTranspose2d weight (in, out / groups, kh, kw). Computed in fp64 so the fold adds no error.
    """
    if conv.groups != 1 and isinstance(conv, nn.ConvTranspose2d):
        raise ConfigError("folding batch norm into a grouped transposed convolution is not supported")
    weight = conv.weight.detach().double()
    out_channels = weight.shape[1] if isinstance(conv, nn.ConvTranspose2d) else weight.shape[0]
    if conv.bias is not None:
        bias = conv.bias.detach().double()
    else:
        bias = torch.zeros(out_channels, dtype=torch.float64, device=weight.device)
    gamma = norm.weight.detach().double() if norm.weight is not None else torch.ones_like(bias)
    beta = norm.bias.detach().double() if norm.bias is not None else torch.zeros_like(bias)
    scale = gamma / torch.sqrt(norm.running_var.detach().double() + norm.eps)
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    folded_weight = weight * scale.view(shape)
    folded_bias = beta + (bias - norm.running_mean.detach().double()) * scale
    return folded_weight.float(), folded_bias.float()


# --------------------------------------------------------------------------------------------------
# Convolutions with weights prepared once.


class PackedConv(nn.Module):
    """A Conv2d or ConvTranspose2d frozen for inference: optional folded norm, a fixed dtype, and on a
    CPU the weight pre-packed into oneDNN's blocked layout so no call re-orders it."""

    def __init__(
        self,
        conv: nn.Conv2d | nn.ConvTranspose2d,
        norm: nn.BatchNorm2d | None,
        dtype: torch.dtype,
        device: torch.device,
        pack: bool,
    ) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.folded = norm is not None
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        if norm is not None:
            weight, bias = fold_batch_norm(conv, norm)
        else:
            weight = conv.weight.detach().float()
            bias = conv.bias.detach().float() if conv.bias is not None else None
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.output_padding = list(conv.output_padding) if self.transposed else []
        self.post_op, self.post_scalars = "none", []  # an activation fused into the convolution
        self.dtype = dtype
        self.packed = pack and device.type == "cpu"
        weight = weight.to(device=device, dtype=dtype)
        if self.packed:
            mk = torch.ops.mkldnn
            if self.transposed:
                weight = mk._reorder_convolution_transpose_weight(
                    weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, None)
            else:
                weight = mk._reorder_convolution_weight(
                    weight, self.padding, self.stride, self.dilation, self.groups, None)
            # An opaque oneDNN tensor: kept as a plain attribute (it cannot be copied or saved).
            self.weight = weight
            self.bias = None if bias is None else bias.to(device=device, dtype=dtype)
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", None if bias is None else bias.to(device=device, dtype=dtype))

    def extra_repr(self) -> str:
        kind = "transposed " if self.transposed else ""
        notes = [f"{kind}{self.in_channels}->{self.out_channels}", str(self.dtype).replace("torch.", "")]
        notes += ["batch norm folded"] if self.folded else []
        notes += [f"{self.post_op} fused"] if self.post_op != "none" else []
        notes += ["oneDNN pre-packed"] if self.packed else []
        return ", ".join(notes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype and self.packed:
            x = x.to(self.dtype)
        if self.packed:
            mk = torch.ops.mkldnn
            if self.transposed:
                return mk._convolution_transpose_pointwise(
                    x, self.weight, self.bias, self.padding, self.output_padding, self.stride,
                    self.dilation, self.groups, self.post_op, self.post_scalars, None)
            return mk._convolution_pointwise(
                x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                self.post_op, self.post_scalars, None)
        if self.transposed:
            y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                   self.output_padding, self.groups, self.dilation)
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.post_op == "relu":
            return F.relu(y, inplace=True)
        if self.post_op == "leaky_relu":
            return F.leaky_relu(y, self.post_scalars[0], inplace=True)
        return torch.tanh_(y) if self.post_op == "tanh" else y


def _post_op(layer: nn.Module) -> tuple[str, list] | None:
    """The oneDNN post-op name and scalars equal to an activation layer, if it has one."""
    if isinstance(layer, nn.LeakyReLU):
        return "leaky_relu", [float(layer.negative_slope)]
    if isinstance(layer, nn.ReLU):
        return "relu", []
    if isinstance(layer, nn.Tanh):
        return "tanh", []
    return None


def fuse_activations(encoder: nn.ModuleList, decoder: nn.ModuleList) -> None:
    """Move activations into the convolution that feeds them (fewer passes over memory).

    Within a block, an activation right after a convolution (the TF layout's conv -> norm -> act
    once the norm is folded, and the tanh head) fuses directly. Across blocks, the official layout
    starts each block with an in-place activation of the previous block's output; in place means
    the skip connection holds the activated tensor too, so applying it at the end of the previous
    block instead is the same computation. Only in-place activations move across blocks.
    """

    def fusable_conv(layer: nn.Module) -> bool:
        return isinstance(layer, PackedConv) and layer.post_op == "none"

    for block in [*encoder, *decoder]:
        names = list(block._modules)
        for first, second in zip(names, names[1:]):
            conv, act = getattr(block, first, None), getattr(block, second)
            op = _post_op(act)
            if conv is not None and fusable_conv(conv) and op is not None:
                conv.post_op, conv.post_scalars = op
                delattr(block, second)
    consumers = [*encoder[1:], decoder[-1]]  # the blocks that read encoder[i]'s output first
    for producer, consumer in zip(encoder, consumers):
        last = list(producer.children())[-1]
        name, act = next(iter(consumer.named_children()))
        op = _post_op(act)
        if fusable_conv(last) and op is not None and getattr(act, "inplace", False):
            last.post_op, last.post_scalars = op
            delattr(consumer, name)


# --------------------------------------------------------------------------------------------------
# The runner.


class Runner(UNetGenerator):
    """The generator's forward pass over inference layers.

    Subclasses `UNetGenerator` only to reuse its `forward` and `check_size` (the U-Net wiring lives
    in one place); `__init__` deliberately skips the parent's, which would allocate fresh weights.
    """

    def __init__(
        self,
        config,
        encoder: nn.ModuleList,
        decoder: nn.ModuleList,
        *,
        mode: Mode,
        fast: bool,
        dtype: torch.dtype,
        device: torch.device,
        autocast: bool,
        slot: _NoiseSlot,
    ) -> None:
        nn.Module.__init__(self)
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.mode = mode
        self.fast = fast
        self.dtype = dtype
        self.device = device
        self.autocast = autocast
        self._slot = slot
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        # No `.eval()` here: it would recurse into the layers shared with the caller's generator and
        # flip their flags. None of the runner's own layers reads `.training`.
        self.memory_format = torch.channels_last if fast else torch.contiguous_format

    @property
    def precision(self) -> str:
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def run(self, x: torch.Tensor, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """Generate for a (N, C, H, W) batch in [-1, 1]; returns fp32 in [-1, 1], on the runner's device.

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
        input_dtype = self.dtype if (self.fast and not self.autocast) else torch.float32
        x = x.to(device=self.device, dtype=input_dtype, memory_format=self.memory_format)
        try:
            with torch.inference_mode():
                with contextlib.ExitStack() as stack:
                    if self.autocast:
                        stack.enter_context(torch.autocast(self.device.type, dtype=self.dtype))
                    if self.compiled:  # inductor's freezing: weights become constants it pre-packs
                        import torch._inductor.config as inductor_config

                        stack.enter_context(inductor_config.patch(freezing=True))
                    y = (self._compiled if self._compiled is not None else self)(x)
                return y.to(dtype=torch.float32, memory_format=torch.contiguous_format).clamp_(-1.0, 1.0)
        finally:
            self._slot.source = None


def build_runner(
    generator: UNetGenerator,
    *,
    mode: Mode = "eval",
    fast: bool = True,
    device: torch.device | str | None = None,
    precision: Precision = "auto",
    compile: bool = False,
) -> Runner:
    """A runner for `generator` in test-time `mode`. The plain runner shares the generator's
    convolutions; the fast one snapshots them (re-build it after changing the weights).

    `compile` (fast path only) hands the runner to `torch.compile` with inductor's freezing, which
    pre-packs the weights itself and fuses the activations and concatenations into the
    convolutions. It needs a C++ compiler, the first call of each input shape compiles (tens of
    seconds on a small CPU); eval mode only (train mode's seeded dropout masks would break the
    graph at every dropout layer). `bench infer --compile` shows whether it pays on a machine.
    """
    if compile and not (fast and mode == "eval"):
        raise ConfigError("compile applies to the fast path in eval mode only")
    if mode not in MODES:
        raise ConfigError(f"mode must be 'eval' or 'train', not {mode!r}")
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    source_device = next(generator.parameters()).device
    if not fast and source_device != device:
        generator = copy.deepcopy(generator).to(device)
    dtype = resolve_precision(precision, device) if fast else torch.float32
    autocast = fast and device.type == "cuda" and dtype != torch.float32
    pack = fast and device.type == "cpu" and _mkldnn_packing_available() and not compile
    slot = _NoiseSlot()

    def convert(block: nn.Sequential) -> nn.Sequential:
        layers = list(block.named_children())
        out: list[tuple[str, nn.Module]] = []
        i = 0
        while i < len(layers):
            name, layer = layers[i]
            nxt = layers[i + 1][1] if i + 1 < len(layers) else None
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                fold = fast and mode == "eval" and isinstance(nxt, nn.BatchNorm2d)
                if fast:
                    conv_dtype = torch.float32 if autocast else dtype
                    out.append((name, PackedConv(layer, nxt if fold else None, conv_dtype, device, pack)))
                else:
                    out.append((name, layer))
                if fold:
                    i += 1  # the norm is inside the convolution now
            elif isinstance(layer, nn.BatchNorm2d):
                out.append((name, BatchStatNorm(layer, device=device) if mode == "train" else RunningStatNorm(layer)))
            elif isinstance(layer, nn.Dropout):
                if mode == "train":
                    out.append((name, SeededDropout(layer.p, slot)))
            else:
                out.append((name, layer))  # activations, tanh, instance norm: stateless, shared
            i += 1
        return nn.Sequential(OrderedDict(out))

    encoder = nn.ModuleList(convert(block) for block in generator.encoder)
    decoder = nn.ModuleList(convert(block) for block in generator.decoder)
    if fast:
        fuse_activations(encoder, decoder)
    runner = Runner(generator.config, encoder, decoder, mode=mode, fast=fast, dtype=dtype,
                    device=device, autocast=autocast, slot=slot)
    if compile:
        # Set past nn.Module's __setattr__: the compiled wrapper holds the runner, not a child of it.
        object.__setattr__(runner, "_compiled", torch.compile(runner, dynamic=False))
    return runner
