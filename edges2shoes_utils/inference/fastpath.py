"""Runners for the pix2pix U-Net generator (Isola et al. 2017, arXiv 1611.07004) at test time.

A *runner* is the generator's wiring over test-time layers (`nets/runner.py`: per-image batch
statistics and seeded dropout in train mode, running statistics in eval mode; see `sketch2shoe.py`
for which mode is the default and why):

* **plain**: the generator's own fp32 convolutions, shared, not copied;
* **fast** on a CPU: batch norm folded into the convolution before it (eval mode), weights
  packed into oneDNN's blocked layout once per input shape (`layers.PackedConv`: a plain `conv2d`
  call re-orders its weights on every call, which costs more than the arithmetic for the deep
  512-channel layers at batch 1), activations fused into the convolutions as oneDNN post-ops,
  channels_last, and each transposed convolution run by whichever of oneDNN's direct kernel, a
  matrix product plus col2im and a sub-pixel 2x2 convolution plus depth-to-space is fastest on
  this CPU, timed once at build. Precision "auto" takes bf16 where the CPU has native bf16
  arithmetic (AVX512-BF16 or AMX) *and* it is the faster there, also timed at build, since on some
  such CPUs oneDNN's bf16 kernels lose to its fp32 ones. `choose_runner` (what `Sketch2Shoe` and
  evaluation use) then times the whole fast forward against plain and keeps plain where the fast
  path does not win, so no CPU pays for it;
* **fast** on CUDA: folded batch norm, channels_last and autocast (bf16 on GPUs of compute
  capability 8.0 and newer, else fp16).
"""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Callable

import torch
from torch import nn

from ..nets import UNetGenerator
from ..nets.runner import MODES, Mode, NoiseSlot, PlainRunner, test_time_blocks
from ..training.device import PrecisionName, cpu_has_native_bf16, dtype_name, resolve_precision
from ..util.errors import ConfigError
from .layers import PackedConv, fuse_activations, transposed_algorithms


def _mkldnn_packing_available() -> bool:
    """The pre-packed oneDNN convolution ops that torch.compile's CPU backend uses (private API,
    present since torch 2.0); without them the fast path falls back to ordinary conv calls."""
    ops = ("_reorder_convolution_weight", "_reorder_convolution_transpose_weight",
           "_convolution_pointwise", "_convolution_transpose_pointwise")
    return torch.backends.mkldnn.is_available() and all(hasattr(torch.ops.mkldnn, op) for op in ops)


def compute_dtype(precision: PrecisionName, device: torch.device) -> torch.dtype:
    """The fast path's candidate compute dtype (`training.device.resolve_precision`): "auto" gives
    bf16 on CPUs with native bf16, fp32 on other CPUs, and under CUDA autocast bf16 where the GPU has
    it natively (else fp16). On a CPU, `build_runner` then keeps bf16 only if it also runs faster
    than fp32 there."""
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
        self.memory_format = torch.channels_last if fast else torch.contiguous_format

    @property
    def precision(self) -> str:
        return dtype_name(self.dtype)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def transposed_algorithms(self) -> dict[str, int]:
        """How many transposed convolutions run with each algorithm ("direct", "gemm", "subpixel")."""
        counts: dict[str, int] = {}
        for layer in self.modules():
            if isinstance(layer, PackedConv) and layer.transposed:
                counts[layer.algorithm] = counts.get(layer.algorithm, 0) + 1
        return counts

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
    convolutions; the fast one snapshots them (re-build it after changing the weights).

    On a CPU, building the fast runner times a few candidates on the generator's natural size
    (2 ** levels square): the algorithms of each transposed convolution and, for "auto" on a CPU
    with native bf16, the whole runner in bf16 and in fp32; the first build of a process pays for
    it (see `_CHOICES`). This builds exactly the path asked for; `choose_runner` is what users get.

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
    if not fast and source_device != device:
        generator = copy.deepcopy(generator).to(device)
    dtype = compute_dtype(precision, device) if fast else torch.float32
    timed = fast and device.type == "cpu" and not compile
    if not (timed and precision == "auto" and dtype == torch.bfloat16):
        return _assemble(generator, mode, fast, device, dtype, compile, time_algorithms=timed)
    # Native bf16 is not always the faster one: on some CPUs oneDNN's bf16 convolutions run slower
    # than its fp32 ones. Keep whichever is faster here; fp32 also when they nearly tie, as it is the
    # more exact. Only the first build of a process builds both.
    built: dict[str, Runner] = {}

    def timer(name: str, candidate: torch.dtype) -> Callable[[], float]:
        def run() -> float:
            if name not in built:
                built[name] = _assemble(generator, mode, fast, device, candidate, compile, time_algorithms=True)
            return _forward_ms(built[name])
        return run

    choice = _timed_choice(("precision", mode, generator.config),
                           {"fp32": timer("fp32", torch.float32), "bf16": timer("bf16", torch.bfloat16)},
                           handicap={"fp32": 0.9})
    if choice in built:
        return built[choice]
    dtype = torch.float32 if choice == "fp32" else torch.bfloat16
    return _assemble(generator, mode, fast, device, dtype, compile, time_algorithms=True)


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

    On a CPU the fast runner's whole forward is timed against plain's (once per process for a
    generator config, mode and precision): a CPU whose oneDNN kernels lose to ATen's for this
    network must not pay for an optimisation. Without oneDNN's packed convolutions (an ARM build of
    torch, say) there is no fast CPU path at all. CUDA and compiled runners are taken as asked.
    """
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    if not fast:
        return build_runner(generator, mode=mode, fast=False, device=device, compile=compile)
    if device.type != "cpu" or compile:
        return build_runner(generator, mode=mode, device=device, precision=precision, compile=compile)
    if not _mkldnn_packing_available():
        plain = build_runner(generator, mode=mode, fast=False, device=device)
        plain.note = "this PyTorch build has no oneDNN packed convolutions, so the fast path is off"
        return plain
    fast = build_runner(generator, mode=mode, device=device, precision=precision)
    if not TIME_AGAINST_PLAIN:
        return fast
    plain = build_runner(generator, mode=mode, fast=False, device=device)
    key = ("against plain", mode, generator.config, fast.precision)
    if _timed_choice(key, {"fast": lambda: _forward_ms(fast), "plain": lambda: _forward_ms(plain)}) == "fast":
        return fast
    times = _TIMINGS[key]
    plain.note = (f"the fast path ({fast.precision}) took {times['fast'] / times['plain']:.2f}x plain's time "
                  "when timed at start on this CPU, so plain runs")
    return plain


def _assemble(
    generator: UNetGenerator,
    mode: Mode,
    fast: bool,
    device: torch.device,
    dtype: torch.dtype,
    compile: bool,
    *,
    time_algorithms: bool,
) -> Runner:
    """The runner for one compute dtype (see `build_runner`)."""
    autocast = fast and device.type == "cuda" and dtype != torch.float32
    pack = fast and device.type == "cpu" and _mkldnn_packing_available() and not compile
    conv_dtype = torch.float32 if autocast else dtype

    def swap_conv(layer: nn.Module, nxt: nn.Module | None, side: int) -> tuple[nn.Module, bool]:
        fold = mode == "eval" and isinstance(nxt, nn.BatchNorm2d)  # the norm goes inside the convolution
        norm = nxt if fold else None
        if not (time_algorithms and isinstance(layer, nn.ConvTranspose2d)):
            return PackedConv(layer, norm, conv_dtype, device, pack), fold
        candidates = {name: PackedConv(layer, norm, conv_dtype, device, pack, name)
                      for name in transposed_algorithms(layer)}
        key = ("transposed", layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
               layer.padding, layer.output_padding, layer.groups, side, conv_dtype, pack)
        return candidates[_timed_choice(key, _timers(candidates, side))], fold

    encoder, decoder, slot = test_time_blocks(generator, mode, device=device, swap_conv=swap_conv if fast else None)
    if fast:
        fuse_activations(encoder, decoder)
    runner = Runner(generator.config, encoder, decoder, mode=mode, fast=fast, dtype=dtype,
                    device=device, autocast=autocast, slot=slot)
    if compile:
        # Inductor's freezing: the weights become constants that it pre-packs. Set past nn.Module's
        # __setattr__: the compiled wrapper holds the runner, not a child of it.
        compiled = torch.compile(runner, dynamic=False, options={"freezing": True})
        object.__setattr__(runner, "_compiled", compiled)
    return runner


# Choices timed once per process: every runner built later for the same shapes takes the same path,
# so a seed gives the same picture from any runner of one process. (A new process times again and
# may, on a close call, take the other path: the same picture up to fp32 or bf16 rounding.)
_CHOICES: dict[tuple, str] = {}
# Off only in the test suite, whose tiny networks must exercise the fast layers it compares with
# plain even where they would not beat plain.
TIME_AGAINST_PLAIN = True
_TIMINGS: dict[tuple, dict[str, float]] = {}  # the milliseconds each choice was made on
TIMING_ROUNDS = 5


def _timed_choice(key: tuple, timers: dict[str, Callable[[], float]], *,
                  handicap: dict[str, float] | None = None) -> str:
    """The name of the fastest candidate, timed once per key. Each timer times one call of its
    candidate in milliseconds; after a warm-up round they run in interleaved rounds and each keeps
    its fastest call, so a burst of other work on the machine slows one round of every candidate
    rather than all of one. `handicap` scales a candidate's time before the comparison."""
    if key not in _CHOICES:
        for timer in timers.values():
            timer()  # warm-up: first calls allocate, pack weights and create oneDNN primitives
        best = {name: float("inf") for name in timers}
        for _ in range(TIMING_ROUNDS):
            for name, timer in timers.items():
                best[name] = min(best[name], timer())
        _TIMINGS[key] = best
        scaled = {name: ms * (handicap or {}).get(name, 1.0) for name, ms in best.items()}
        _CHOICES[key] = min(scaled, key=scaled.__getitem__)
    return _CHOICES[key]


def _timers(convs: dict[str, nn.Module], side: int) -> dict[str, Callable[[], float]]:
    """Timers (one call, ms) of convolutions on a (1, in_channels, side, side) channels_last input."""
    first = next(iter(convs.values()))
    x = torch.rand(1, first.in_channels, side, side).to(dtype=first.dtype, memory_format=torch.channels_last)

    def timer(conv: nn.Module) -> Callable[[], float]:
        def run() -> float:
            with torch.inference_mode():
                return _call_ms(lambda: conv(x))
        return run

    return {name: timer(conv) for name, conv in convs.items()}


def _forward_ms(runner: Runner) -> float:
    """Milliseconds of one forward of one image at the generator's natural size."""
    side = runner.config.multiple
    x = torch.rand(1, runner.config.in_channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return _call_ms(lambda: runner.run(x, seeds=[0]))


def _call_ms(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0
