"""The x86 CPU tiers oneDNN picks kernels for, and how to run a process as if on a lower one.

Most users' CPUs are not the AVX512 or AMX machines we develop on: laptops since Intel's 12th
generation and AMD's Zen 2 and Zen 3 have AVX2 and no AVX512. oneDNN reads `ONEDNN_MAX_CPU_ISA`
when a process first uses it and then runs only kernels up to that tier; `ATEN_CPU_CAPABILITY`
caps ATen's own vector kernels the same way. A cap above what the CPU has changes nothing, so a
tier the CPU cannot reach is reported as such instead of being measured as something it is not.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """One oneDNN ISA cap: its name (None: no cap), the CPU flags it needs, ATen's matching cap."""

    cap: str | None
    flags: tuple[str, ...]
    aten: str | None

    @property
    def name(self) -> str:
        return self.cap or "none"

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with this tier's caps set, or cleared."""
        env = dict(os.environ if base is None else base)
        for key, value in (("ONEDNN_MAX_CPU_ISA", self.cap), ("ATEN_CPU_CAPABILITY", self.aten)):
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env


_AVX512 = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
TIERS: tuple[Tier, ...] = (
    Tier("AVX2", ("avx2", "fma"), "avx2"),
    Tier("AVX2_VNNI", ("avx2", "fma", "avx_vnni"), "avx2"),
    Tier("AVX512_CORE", _AVX512, "avx512"),
    Tier("AVX512_CORE_VNNI", (*_AVX512, "avx512_vnni"), "avx512"),
    Tier("AVX512_CORE_BF16", (*_AVX512, "avx512_vnni", "avx512_bf16"), "avx512"),
    Tier(None, (), None),
)


def tier_named(name: str) -> Tier:
    for tier in TIERS:
        if tier.name.lower() == name.lower():
            return tier
    raise ValueError(f"unknown CPU tier {name!r} (use {', '.join(t.name for t in TIERS)})")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where that cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def unreachable_reason(tier: Tier, flags: set[str] | None = None) -> str | None:
    """Why this CPU cannot run as `tier`, or None when it can."""
    if tier.cap is None:
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"oneDNN's x86 tiers do not apply to {platform.machine()}"
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return "this CPU's flags cannot be read (no /proc/cpuinfo)"
    missing = [flag for flag in tier.flags if flag not in flags]
    return f"this CPU lacks {', '.join(missing)}" if missing else None


__all__ = ["TIERS", "Tier", "cpu_flags", "tier_named", "unreachable_reason"]
