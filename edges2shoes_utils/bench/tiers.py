"""The x86 CPU tiers oneDNN picks kernels for, and how to run a process as if on a lower one.

Most users' CPUs are not the AVX512 or AMX machines we develop on: laptops since Intel's 12th
generation and AMD's Zen 2 and Zen 3 have AVX2 and no AVX512. oneDNN reads `ONEDNN_MAX_CPU_ISA`
when a process first uses it and then runs only kernels up to that tier; `ATEN_CPU_CAPABILITY`
caps ATen's own vector kernels the same way. A cap above what the CPU has changes nothing, so a
tier the CPU cannot reach is reported as such instead of being measured as something it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..util.tables import Table
from .figures import Report, cpuinfo_field, machine, write_figures


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
    flags = cpuinfo_field("flags")
    return None if flags is None else set(flags.split())


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


# --------------------------------------------------------------------------------------------------
# `bench infer --tiers`: the same bench once per tier, each in a fresh process.


def run_tiers(args: argparse.Namespace) -> int:
    """Run `bench infer` under every tier this CPU reaches and print one table."""
    results: list[dict] = []
    for tier in TIERS:
        reason = unreachable_reason(tier)
        print(f"bench infer --tiers: {tier.name} ...", flush=True)
        result = {"tier": tier.name, "status": f"skipped: {reason}" if reason else "ok", "rows": []}
        if reason is None:
            result.update(_bench_in_subprocess(tier, args))
        results.append(result)
    result = {"benchmark": "infer --tiers", **machine(), "repeats": args.repeats, "tiers": results}
    print(report(result).text(result))
    if args.json:
        write_figures(args.json, result, args)
    return 0


def _bench_in_subprocess(tier: Tier, args: argparse.Namespace) -> dict:
    """The tier's rows (and machine facts), or a one-line status saying why there are none."""
    with tempfile.TemporaryDirectory(prefix="edges2shoes-tier-") as workdir:
        figures = Path(workdir) / "infer.json"
        command = [sys.executable, "-m", "edges2shoes_utils", "bench", "infer", "--modes", args.modes,
                   "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--precision", args.precision,
                   "--seed", str(args.seed), "--ngf", str(args.ngf), "--levels", str(args.levels),
                   "--device", "cpu", "--no-fp32-row", "--json", str(figures)]
        if args.weights:
            command += ["--weights", str(args.weights)]
        try:
            done = subprocess.run(command, env=tier.environment(), capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return {"status": "failed: no result within 30 minutes"}
        if done.returncode != 0 or not figures.exists():
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            return {"status": f"failed (exit {done.returncode}): {last[:160]}"}
        figures_json = json.loads(figures.read_text(encoding="utf-8"))
    return {"rows": figures_json["rows"], "cpu": figures_json["cpu"], "threads": figures_json["threads"]}


def runner_text(row: dict) -> str:
    """What ran for a fast row: 'fast', or 'plain (fast path not used)' where it fell back; '' for plain."""
    if "runner" not in row:
        return ""
    return "plain (fast path not used)" if row["runner"] == "plain" else "fast"


def report(result: dict) -> Report:
    """One table: per tier and mode, plain and fast milliseconds, their ratio and what ran."""
    rows: list[list[object]] = []
    for tier in result["tiers"]:
        if tier["status"] != "ok":
            rows.append([tier["tier"], tier["status"]])
            continue
        for mode in dict.fromkeys(row["mode"] for row in tier["rows"]):
            plain = next(r for r in tier["rows"] if r["mode"] == mode and r["path"] == "plain eager")
            fast = next(r for r in tier["rows"] if r["mode"] == mode and r["path"] == "fast")
            rows.append([tier["tier"], mode, plain["median_ms"], fast["median_ms"],
                         f"{fast['ratio_to_plain']:.2f}", fast["precision"], runner_text(fast)])
    table = Table(["tier", "mode", "plain ms", "fast ms", "x plain", "precision", "runner"], rows)
    title = (f"bench infer --tiers: each oneDNN CPU tier in its own process, median of {result['repeats']} "
             "interleaved repeats; x plain = fast against the plain eager fp32 forward of the same tier")
    return Report(title, [table])


__all__ = ["TIERS", "Tier", "cpu_flags", "report", "run_tiers", "runner_text", "tier_named", "unreachable_reason"]
