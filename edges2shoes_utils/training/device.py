"""Where training runs and in which number format: device choice, GPU checks, mixed precision.

CUDA when present, else CPU. On CUDA the default is mixed precision: bf16 on GPUs with bf16
tensor cores (compute capability 8.0 and newer), else fp16 with a GradScaler (a T4 is 7.5).
On CPU the default is fp32; bf16 autocast is an option (faster on CPUs with AVX512-bf16 or AMX).
The inference fast path makes the same choice through `resolve_precision`, asking the CPU whether
it has native bf16 (`cpu_has_native_bf16`) instead of taking a flag.

Kaggle's P100 (compute capability 6.0) is refused up front: the PyTorch build in Kaggle's image
ships no sm_60 kernels, so the first CUDA operation would fail with an obscure error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Literal, Sequence

import torch

from ..util.errors import ConfigError

Amp = Literal["auto", "fp16", "bf16", "off"]
AMP_CHOICES: tuple[str, ...] = ("auto", "fp16", "bf16", "off")  # training's --amp
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")  # the inference fast path's
# fp16 on a CPU is refused: no fast kernels there, about ten times slower than fp32. The test suite
# sets this (monkeypatch) to run the T4's code path, fp16 autocast with a GradScaler that scales,
# skips and backs off, on a machine without a GPU; no flag or option reaches it.
CPU_FP16_ALLOWED = False


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: the GPU of this process (cuda:LOCAL_RANK) when CUDA is present, else the CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but PyTorch sees no CUDA GPU; use --device cpu")
        return torch.device("cuda", local_rank)
    if preference == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"device must be 'auto', 'cuda' or 'cpu', not {preference!r}")


def check_cuda_supported(
    device: torch.device,
    capability: Callable[[torch.device], tuple[int, int]] | None = None,
    arch_list: Callable[[], Sequence[str]] | None = None,
    name: Callable[[torch.device], str] | None = None,
) -> None:
    """Stop at once, with what to do, on a GPU this PyTorch build has no kernels for (Kaggle's P100).

    The three callables default to torch.cuda's and exist so tests can pretend to be a P100.
    """
    if device.type != "cuda":
        return
    capability = capability or torch.cuda.get_device_capability
    arch_list = arch_list or torch.cuda.get_arch_list
    name = name or torch.cuda.get_device_name
    major, minor = capability(device)
    archs = set(arch_list())
    if major >= 7 or f"sm_{major}{minor}" in archs:
        return
    raise ConfigError(
        f"this GPU ({name(device)}, compute capability {major}.{minor}) is too old for this PyTorch "
        f"build (it has kernels for {', '.join(sorted(archs)) or 'no GPU'}). On Kaggle, open the "
        "notebook's settings and pick Accelerator: 'GPU T4 x2' (the P100 cannot run it); "
        "elsewhere use a GPU of compute capability 7.0 or newer, or --device cpu"
    )


# --------------------------------------------------------------------------------------------------
# Mixed precision.


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles) and oneDNN can use it.

    Without it oneDNN emulates bf16 with fp32 instructions plus conversions, which is slower than
    plain fp32, so inference then stays in fp32.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return native and (supported is None or bool(supported()))


def dtype_name(dtype: torch.dtype | None) -> str:
    """The name a compute dtype goes by in options and reports: fp32 (also for None), fp16, bf16."""
    return {None: "fp32", torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


@dataclass(frozen=True)
class Precision:
    """How the forward passes run: autocast dtype (None = fp32) and whether a GradScaler is needed."""

    device_type: str  # "cuda" or "cpu"
    dtype: torch.dtype | None  # autocast dtype, None for plain fp32
    use_scaler: bool  # fp16 needs loss scaling so small gradients do not flush to zero

    @property
    def name(self) -> str:
        return dtype_name(self.dtype)

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the arithmetic runs in: the autocast dtype, or fp32."""
        return self.dtype or torch.float32

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is a no-op unless fp16 needs it (so the loop has one code path)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.use_scaler)


def resolve_precision(
    amp: str,
    device: torch.device,
    cpu_bf16: bool = False,
    capability: Callable[[torch.device], tuple[int, int]] | None = None,
) -> Precision:
    """The number format for `amp` on `device`; training's --amp and the fast path's precision.

    `amp` is one of AMP_CHOICES or PRECISION_CHOICES ("off" and "fp32" both mean plain fp32).
    auto: CUDA -> bf16 on compute capability >= 8.0 (native bf16 tensor cores), else fp16 with a
    GradScaler; CPU -> bf16 autocast if `cpu_bf16` (training's --cpu-bf16; inference passes
    `cpu_has_native_bf16()`), else fp32. `fp16` is refused on CPU (no fast kernels there); `bf16`
    on a GPU without native bf16 is allowed but slow.

    The refusal lifts only while `CPU_FP16_ALLOWED` is set (see there).
    """
    if amp not in AMP_CHOICES and amp not in PRECISION_CHOICES:
        raise ConfigError(f"precision must be one of auto, fp32 (or off), bf16, fp16, not {amp!r}")
    kind = device.type
    if amp in ("off", "fp32"):
        return Precision(kind, None, False)
    if kind == "cpu":
        if amp == "fp16" and CPU_FP16_ALLOWED:
            return Precision("cpu", torch.float16, True)
        if amp == "fp16":
            raise ConfigError("fp16 is for GPUs; on a CPU use bf16 or fp32 (in training: --amp bf16, "
                              "--cpu-bf16 or --amp off)")
        if amp == "bf16" or cpu_bf16:
            return Precision("cpu", torch.bfloat16, False)
        return Precision("cpu", None, False)
    if amp == "auto":
        major, _ = (capability or torch.cuda.get_device_capability)(device)
        amp = "bf16" if major >= 8 else "fp16"
    if amp == "bf16":
        return Precision(kind, torch.bfloat16, False)
    return Precision(kind, torch.float16, True)


def configure_backends(device: torch.device) -> None:
    """cuDNN autotuning (fixed image size, so the fastest kernels are found once) and TF32 matmuls.

    No autotuning once `torch.use_deterministic_algorithms(True)` was asked for: timing-based choices
    can pick different (each deterministic) kernels in two runs, so their results would differ."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not torch.are_deterministic_algorithms_enabled()
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def make_adam(
    params, lr: float, betas: tuple[float, float], device: torch.device
) -> torch.optim.Adam:
    """Adam with the fused kernel (one launch for all parameters) where PyTorch has it, else the
    multi-tensor `foreach` version; both give the same update as the plain loop."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=device.type == "cuda" or None)
