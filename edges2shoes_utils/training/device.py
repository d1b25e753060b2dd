"""Where training runs and in which number format: device choice, GPU checks, the precision words.

Every option that picks a number format (`train --precision`, `Sketch2Shoe(precision=...)`,
`evaluate --precision`, the benches) takes the words of `PRECISIONS`, defined here:

* `fp32`: no autocast. On CUDA the convolutions and matrix products still run on TF32 tensor cores
  where the GPU has them (compute capability 8.0 and newer): training turns TF32 on
  (`configure_backends`) and cuDNN uses it for convolutions by default, so TF32 is how fp32 runs
  there, not a choice of its own.
* `bf16`: autocast to bfloat16; fp32's range, so no loss scaling.
* `fp16`: autocast to float16, with a GradScaler in training so small gradients do not flush to
  zero; GPUs only (a CPU has no fast fp16 kernels).
* `auto`: on CUDA, bf16 on GPUs with bf16 tensor cores (compute capability 8.0 and newer), else
  fp16 (a T4 is 7.5). On a CPU, training runs fp32; the inference fast path takes bf16 where the
  CPU multiplies bf16 natively (`cpu_has_native_bf16`), else fp32.

`read_precision` also reads the words of earlier versions (`LEGACY_PRECISIONS`), with a one-line
notice. Kaggle's P100 (compute capability 6.0) is refused up front: the PyTorch build in Kaggle's
image ships no sm_60 kernels, so the first CUDA operation would fail with an obscure error.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, ContextManager, Literal, Sequence, get_args

import torch

from ..util.errors import ConfigError

PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)
# Words of earlier versions and the word each reads as: training's `--amp` took auto, bf16 and fp16
# in today's sense, and "off" for fp32. (`bench train`'s "mixed" depends on the device; read there.)
LEGACY_PRECISIONS: dict[str, str] = {"off": "fp32"}
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
# Number formats.


def read_precision(word: str) -> str:
    """`word` as one of `PRECISIONS`: an old word (`LEGACY_PRECISIONS`) is read as its new one, with
    a notice; anything else is refused."""
    if word in PRECISIONS:
        return word
    if word in LEGACY_PRECISIONS:
        new = LEGACY_PRECISIONS[word]
        deprecated(f"precision: {word!r} is the old word for {new!r}; it still works, but write {new!r}")
        return new
    raise ConfigError(f"precision: must be one of {', '.join(PRECISIONS)}, not {word!r}")


def deprecated(message: str, stacklevel: int = 2) -> None:
    """A one-line notice that an old spelling was read: a FutureWarning (shown to users by default,
    once per place it comes from), attributed `stacklevel` frames up from the caller (1: the caller)."""
    warnings.warn(message, FutureWarning, stacklevel=stacklevel + 1)


# oneDNN's ISA caps below its first tier with bf16 arithmetic (AVX512_CORE_BF16).
ONEDNN_TIERS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                       "AVX512_CORE_VNNI"})


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles) and oneDNN can use it.

    Without it oneDNN emulates bf16 with fp32 instructions plus conversions, which is slower than
    plain fp32, so inference then stays in fp32. A process whose oneDNN is capped below the bf16
    tiers (`ONEDNN_MAX_CPU_ISA`, as `bench infer --tiers` runs it) counts as such a CPU: oneDNN
    then runs as on one, whatever this CPU's flags say.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ONEDNN_TIERS_WITHOUT_BF16:
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return native and (supported is None or bool(supported()))


# The autocast dtype of each word but auto (None: no autocast).
_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


_NAMES: dict[torch.dtype | None, str] = {**{dtype: name for name, dtype in _DTYPES.items()}, torch.float32: "fp32"}


def dtype_name(dtype: torch.dtype | None) -> str:
    """The word for a compute dtype: fp32 (also for None, no autocast), bf16, fp16."""
    return _NAMES[dtype]


@dataclass(frozen=True)
class Precision:
    """How the forward passes run: autocast dtype (None = fp32) and whether a GradScaler is needed."""

    device_type: str  # "cuda" or "cpu"
    dtype: torch.dtype | None  # autocast dtype, None for plain fp32
    use_scaler: bool  # fp16 needs loss scaling so small gradients do not flush to zero

    @classmethod
    def named(cls, name: str, device_type: str) -> "Precision":
        """The format `name` (fp32, bf16 or fp16; not auto) on a device type, as asked, unchecked:
        `resolve_precision` is what decides and refuses."""
        if name not in _DTYPES:
            raise ConfigError(f"precision {name!r} names no single format; use one of {', '.join(_DTYPES)}")
        return cls(device_type, _DTYPES[name], name == "fp16")

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
    name: str,
    device: torch.device,
    cpu_auto: str = "fp32",
    capability: Callable[[torch.device], tuple[int, int]] | None = None,
) -> Precision:
    """The number format `name` (one of `PRECISIONS`) gives on `device`, as the module docstring says.

    `cpu_auto` is what `auto` gives on a CPU: fp32 for training; the inference fast path passes
    bf16 where `cpu_has_native_bf16()`. `fp16` is refused on a CPU (no fast kernels there; the
    refusal lifts only while `CPU_FP16_ALLOWED` is set); `bf16` on a GPU without native bf16 is
    allowed but slow.
    """
    name = read_precision(name)
    if name == "auto":
        if device.type == "cpu":
            name = cpu_auto
        else:
            major, _ = (capability or torch.cuda.get_device_capability)(device)
            name = "bf16" if major >= 8 else "fp16"
    if device.type == "cpu" and name == "fp16" and not CPU_FP16_ALLOWED:
        raise ConfigError("fp16 is for GPUs; on a CPU use --precision bf16 or fp32")
    return Precision.named(name, device.type)


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
