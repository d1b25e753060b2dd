"""Runners for the pix2pix U-Net generator (Isola et al. 2017, arXiv 1611.07004) at test time.

A *runner* is the generator's wiring over test-time layers (`nets/runner.py`: per-image batch
statistics and seeded dropout in train mode, running statistics in eval mode; see `sketch2shoe.py`
for which mode is the default and why):

* **plain**: the generator's own fp32 convolutions, shared, not copied;
* **fast** on a CPU: weights packed into oneDNN's blocked layout once per input shape
  (`layers.PackedConv`: a plain `conv2d` call re-orders its weights on every call, which costs more
  than the arithmetic for the deep 512-channel layers at batch 1), in bf16 where the CPU has native
  bf16 arithmetic (AVX512-BF16 or AMX), else fp32. `choose_runner` runs plain instead where the
  fast forward, timed once per process, is not faster, and where torch has no oneDNN packed
  convolutions (an ARM build, say);
* **fast** on CUDA: channels_last and autocast (bf16 on GPUs of compute capability 8.0 and newer,
  else fp16).

Each CPU mechanism earns its place by a paired timing against the plain alternative
(`tools/ab_mechanisms.py`); the CUDA ones are kept untimed (no GPU here).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Callable

import torch
from torch import nn

from ..nets import UNetGenerator
from ..nets.runner import MODES, Mode, NoiseSlot, PlainRunner, test_time_blocks
from ..training.device import PrecisionName, cpu_has_native_bf16, dtype_name, resolve_precision
from ..util.errors import ConfigError
from ..util.timing import interleaved_times
from .layers import PackedConv


def _mkldnn_packing_available() -> bool:
    """The pre-packed oneDNN convolution ops that torch.compile's CPU backend uses (private API,
    present since torch 2.0); without them the fast path falls back to ordinary conv calls."""
    ops = ("_reorder_convolution_weight", "_reorder_convolution_transpose_weight",
           "_convolution_pointwise", "_convolution_transpose_pointwise")
    return torch.backends.mkldnn.is_available() and all(hasattr(torch.ops.mkldnn, op) for op in ops)


def compute_dtype(precision: PrecisionName, device: torch.device) -> torch.dtype:
    """The fast path's compute dtype (`training.device.resolve_precision`): "auto" gives bf16 on CPUs
    with native bf16, fp32 on other CPUs, and under CUDA autocast bf16 where the GPU has it natively
    (else fp16)."""
    cpu_auto = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    return resolve_precision(precision, device, cpu_auto=cpu_auto).compute_dtype


# --------------------------------------------------------------------------------------------------
# The runner.


class Runner(PlainRunner):
    """`nets.runner.PlainRunner` with the fast path's layers, number format and memory layout (or,
    with `fast` off, exactly the plain runner on a chosen device)."""

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
        slot: NoiseSlot,
    ) -> None:
        super().__init__(config, encoder, decoder, mode=mode, slot=slot)
        self.fast = fast
        self.dtype = dtype
        self.device = device
        self.autocast = autocast
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.note: str | None = None  # why a fast path that was asked for is not running (see `choose_runner`)
        # NHWC for the GPU's tensor cores; a CPU's packed convolutions run as fast on NCHW.
        self.memory_format = torch.channels_last if fast and device.type == "cuda" else torch.contiguous_format

    @property
    def precision(self) -> str:
        return dtype_name(self.dtype)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def _forward_batch(self, x: torch.Tensor) -> torch.Tensor:
        input_dtype = self.dtype if (self.fast and not self.autocast) else torch.float32
        x = x.to(device=self.device, dtype=input_dtype, memory_format=self.memory_format)
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.autocast else contextlib.nullcontext()
        with autocast:
            y = (self._compiled if self._compiled is not None else self)(x)
            return y.to(dtype=torch.float32, memory_format=torch.contiguous_format).clamp_(-1.0, 1.0)


def build_runner(
    generator: UNetGenerator,
    *,
    mode: Mode = "eval",
    fast: bool = True,
    device: torch.device | str | None = None,
    precision: PrecisionName = "auto",
    compile: bool = False,
) -> Runner:
    """A runner for `generator` in test-time `mode`. The plain runner shares the generator's
    convolutions; the fast one snapshots them (re-build it after changing the weights). This builds
    exactly the path asked for; `choose_runner` is what users get.

    `compile` (fast path only) hands the runner to `torch.compile` with inductor's freezing, which
    pre-packs the weights itself and fuses the activations and concatenations into the
    convolutions. It needs a C++ compiler, the first call of each input shape compiles (tens of
    seconds on a small CPU); eval mode only (train mode's seeded dropout masks would break the
    graph at every dropout layer). `bench infer --peers` shows whether it pays on a machine.
    """
    if compile and not (fast and mode == "eval"):
        raise ConfigError("compile applies to the fast path in eval mode only")
    if mode not in MODES:
        raise ConfigError(f"mode must be 'eval' or 'train', not {mode!r}")
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    source_device = next(generator.parameters()).device
    if source_device != device:  # the runner's norms share the generator's tensors
        generator = copy.deepcopy(generator).to(device)
    dtype = compute_dtype(precision, device) if fast else torch.float32
    autocast = fast and device.type == "cuda" and dtype != torch.float32
    pack = fast and device.type == "cpu" and _mkldnn_packing_available() and not compile
    conv_dtype = torch.float32 if autocast else dtype

    def swap_conv(layer: nn.Module) -> nn.Module:
        return PackedConv(layer, conv_dtype, device, pack)

    encoder, decoder, slot = test_time_blocks(generator, mode, device=device, swap_conv=swap_conv if fast else None)
    runner = Runner(generator.config, encoder, decoder, mode=mode, fast=fast, dtype=dtype,
                    device=device, autocast=autocast, slot=slot)
    if compile:
        # Inductor's freezing: the weights become constants that it pre-packs. Set past nn.Module's
        # __setattr__: the compiled wrapper holds the runner, not a child of it.
        compiled = torch.compile(runner, dynamic=False, options={"freezing": True})
        object.__setattr__(runner, "_compiled", compiled)
    return runner


def choose_runner(
    generator: UNetGenerator,
    *,
    mode: Mode = "eval",
    fast: bool = True,
    device: torch.device | str | None = None,
    precision: PrecisionName = "auto",
    compile: bool = False,
) -> Runner:
    """The runner users get: plain if `fast` is off; else the fast runner where it beats plain on
    this machine, and otherwise the plain one with `note` saying why.

    On a CPU the fast runner's whole forward is timed against plain's, once per process for a
    generator config, mode and precision: a CPU whose oneDNN kernels lose to ATen's for this network
    must not pay for an optimisation. Without oneDNN's packed convolutions (an ARM build of torch,
    say) there is no fast CPU path at all. CUDA and compiled runners are taken as asked.
    """
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    if not fast or device.type != "cpu" or compile:
        return build_runner(generator, mode=mode, fast=fast, device=device, precision=precision, compile=compile)
    if not _mkldnn_packing_available():
        plain = build_runner(generator, mode=mode, fast=False, device=device)
        plain.note = "this PyTorch build has no oneDNN packed convolutions, so the fast path is off"
        return plain
    fast_runner = build_runner(generator, mode=mode, device=device, precision=precision)
    if not TIME_AGAINST_PLAIN:
        return fast_runner
    plain = build_runner(generator, mode=mode, fast=False, device=device)
    key = (mode, generator.config, fast_runner.precision)
    if key not in TIMINGS:
        TIMINGS[key] = _fastest_calls({"fast": fast_runner, "plain": plain})
    times = TIMINGS[key]
    if times["fast"] < times["plain"]:
        return fast_runner
    plain.note = (f"the fast path ({fast_runner.precision}) took {times['fast'] / times['plain']:.2f}x plain's "
                  "time when timed at start on this CPU, so plain runs")
    return plain


# --------------------------------------------------------------------------------------------------
# The start-up comparison with plain.

TIME_AGAINST_PLAIN = True  # the suite turns it off where tiny networks must still run the fast layers
TIMING_ROUNDS = 5
TIMINGS: dict[tuple, dict[str, float]] = {}  # (mode, config, precision) -> fastest ms of each runner


def _fastest_calls(runners: dict[str, Runner]) -> dict[str, float]:
    """Each runner's fastest forward, in milliseconds, of one image at the generator's natural size.
    After a warm-up call each (it packs the weights and creates oneDNN's primitives) they run in
    interleaved rounds, so a burst of other work on the machine slows one round of each rather
    than all of one."""
    config = next(iter(runners.values())).config
    side = config.multiple
    x = torch.rand(1, config.in_channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    calls = {name: (lambda runner=runner: runner.run(x, seeds=[0])) for name, runner in runners.items()}
    times = interleaved_times(calls, warmup=1, repeats=TIMING_ROUNDS, device=torch.device("cpu"))
    return {name: min(ms) for name, ms in times.items()}
