"""How close is the fast path to the CPU's arithmetic limit? Per convolution layer, on one oneDNN tier.

`bench infer` says how fast the fast path is against plain; this says why it is not faster. It runs
the fast runner (`fastpath.build_runner`, as asked, without the start-up fallback) in a fresh process
under one tier's caps (`bench.tiers`) with `ONEDNN_VERBOSE=profile_exec`, and reads back every
convolution oneDNN executed in the timed calls: its kernel, its median milliseconds and its rate in
GFLOP/s, from the nominal multiply-adds of its problem (a convolution: every output pixel times its
input channels and kernel taps; a transposed one: every input pixel times its output channels and
taps). In the same process it times a well-shaped product through the same oneDNN path, a 1x1
convolution of 1024 to 1024 channels on a 64x64 map (a 4096x1024 by 1024x1024 matrix product), as a
yardstick of what the CPU's vector units give at this tier and precision.

It also puts a floor under each layer and the whole forward: the larger of its arithmetic at the
best rate any layer of the network reached and its weights read once from memory at the rate a
large sum reads (the weights, hundreds of megabytes at paper size, do not stay in cache from one
call to the next; only the kernel taps that ever touch the image are counted, since a layer of a
2x2 map never reads the rest). A forward whose layers sit near their floors can only get much
faster with less arithmetic or fewer weight bytes, not with better-tuned kernels.

    PYTHONPATH=. nice -n -5 python tools/layer_rates.py --tier AVX2 [--mode eval] [--precision fp32]

It prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from edges2shoes_utils.bench.figures import machine, machine_line
from edges2shoes_utils.bench.infer import calibrated_random_generator
from edges2shoes_utils.bench.tiers import TIERS, tier_named, unreachable_reason
from edges2shoes_utils.util.timing import interleaved_times
from edges2shoes_utils.inference.fastpath import build_runner
from edges2shoes_utils.inference.layers import PackedConv
from edges2shoes_utils.nets import GeneratorConfig
from edges2shoes_utils.training.device import PRECISIONS
from edges2shoes_utils.util.atomic import atomic_write_text
from edges2shoes_utils.util.tables import Table

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "LAYER-RATES-BEGIN", "LAYER-RATES-END"
_FIELD = re.compile(r"([a-z]+)(\d+)")


@dataclass(frozen=True)
class Layer:
    """One convolution primitive as oneDNN ran it."""

    kind: str  # "convolution" or "deconvolution"
    kernel: str  # oneDNN's implementation name
    problem: str  # oneDNN's problem descriptor
    milliseconds: float  # median over the timed calls

    @property
    def shape(self) -> dict[str, int]:
        """The problem's fields (mb, ic, oc, ih, oh, kh, sh, ph, ...); stride 1 and padding 0 where
        oneDNN leaves them out."""
        shape = {"sh": 1, "sw": 1, "ph": 0, "pw": 0, "mb": 1, **{k: int(v) for k, v in _FIELD.findall(self.problem)}}
        missing = {"ic", "oc", "ih", "oh", "kh", "iw", "ow", "kw"} - shape.keys()
        if missing:
            raise ValueError(f"oneDNN problem {self.problem!r} lacks {', '.join(sorted(missing))}")
        return shape

    @property
    def multiply_adds(self) -> int:
        """Nominal: every output pixel times input channels and taps (transposed: every input pixel
        times output channels and taps)."""
        p = self.shape
        pixels = p["ih"] * p["iw"] if self.kind == "deconvolution" else p["oh"] * p["ow"]
        return p["mb"] * pixels * p["ic"] * p["oc"] * p["kh"] * p["kw"]

    @property
    def touched_weights(self) -> int:
        """Weights whose kernel taps meet the image (not only its zero padding) somewhere."""
        p = self.shape
        rows = _touched_taps(p["ih"], p["oh"], p["kh"], p["sh"], p["ph"], self.kind == "deconvolution")
        cols = _touched_taps(p["iw"], p["ow"], p["kw"], p["sw"], p["pw"], self.kind == "deconvolution")
        return p["ic"] * p["oc"] * rows * cols

    @property
    def gflops(self) -> float:
        return 2 * self.multiply_adds / (self.milliseconds * 1e6)


def _touched_taps(size_in: int, size_out: int, taps: int, stride: int, pad: int, transposed: bool) -> int:
    """Along one axis, how many kernel offsets link some output position to some input position.
    A convolution reads input o * stride + k - pad for output o; a transposed one writes output
    i * stride + k - pad from input i."""
    def meets(k: int) -> bool:
        if transposed:
            return any(0 <= i * stride + k - pad < size_out for i in range(size_in))
        return any(0 <= o * stride + k - pad < size_in for o in range(size_out))
    return sum(meets(k) for k in range(taps))


def floor_ms(layer: Layer, gflops: float, memory_gbs: float, bytes_per_weight: int) -> float:
    """The layer's arithmetic at `gflops`, or its touched weights read at `memory_gbs`, the larger."""
    return max(2 * layer.multiply_adds / (gflops * 1e6), layer.touched_weights * bytes_per_weight / (memory_gbs * 1e6))


def layers_from_verbose(output: str) -> list[Layer]:
    """The convolutions executed between the markers, in order, each with its median time.

    Each timed call runs the same primitives in the same order, so the k-th convolution of every
    call is the same layer."""
    if BEGIN not in output or END not in output:
        raise ValueError("the probe's markers are missing: it did not finish")
    timed = output.split(BEGIN, 1)[1].split(END, 1)[0]
    calls: list[list[tuple[str, str, str, float]]] = []
    for line in timed.splitlines():
        if line.startswith("CALL"):
            calls.append([])
            continue
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or "exec" not in fields or not calls:
            continue
        at = fields.index("exec")
        kind, kernel = fields[at + 2], fields[at + 3]
        if kind in ("convolution", "deconvolution"):
            calls[-1].append((kind, kernel, fields[-2], float(fields[-1])))
    if not calls or not calls[0] or len({len(call) for call in calls}) != 1:
        raise ValueError(f"timed calls ran different numbers of convolutions: {[len(c) for c in calls]}")
    return [Layer(kind, kernel, problem, statistics.median(call[i][3] for call in calls))
            for i, (kind, kernel, problem, _) in enumerate(calls[0])]


def _probe(args: argparse.Namespace) -> None:
    """In the capped process: the fast runner warmed up, the two yardsticks (a well-shaped product, a
    memory read), then the runner's timed calls between the markers."""
    config = GeneratorConfig(ngf=args.ngf, levels=args.levels)
    runner = build_runner(calibrated_random_generator(config), mode=args.mode, precision=args.precision)
    x = torch.rand(1, 3, config.multiple, config.multiple) * 2 - 1
    for _ in range(3):
        runner.run(x, seeds=[0])
    channels, side = 1024, 64
    product = PackedConv(torch.nn.Conv2d(channels, channels, 1, bias=False), runner.dtype, torch.device("cpu"), True)
    square = torch.randn(1, channels, side, side)
    big = torch.ones(64 * 1024 * 1024)  # 256 MB, far beyond any cache
    times = interleaved_times({"product": lambda: product(square), "read": big.sum}, warmup=1, repeats=6,
                              device=torch.device("cpu"))
    best, read = (min(times[name]) / 1000.0 for name in ("product", "read"))
    facts = {"memory_gbs": big.numel() * 4 / read / 1e9, "product_gflops": 2 * side * side * channels ** 2 / best / 1e9,
             "precision": runner.precision, "bytes_per_weight": runner.dtype.itemsize, **machine()}
    print(json.dumps(facts), flush=True)
    print(BEGIN, flush=True)
    for _ in range(args.calls):
        print("CALL", flush=True)
        runner.run(x, seeds=[0])
    print(END, flush=True)


def run(args: argparse.Namespace) -> dict:
    """Run the probe under the tier's caps; its layers and yardstick."""
    tier = tier_named(args.tier)
    reason = unreachable_reason(tier)
    if reason is not None:
        raise SystemExit(f"tier {tier.name} cannot be reached here: {reason}")
    env = tier.environment()
    env["ONEDNN_VERBOSE"] = "profile_exec"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, os.path.abspath(__file__), "--probe", "--mode", args.mode, "--precision",
               args.precision, "--ngf", str(args.ngf), "--levels", str(args.levels), "--calls", str(args.calls)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the probe failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    facts = next(json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))
    return {"tier": tier.name, "mode": args.mode, **facts, "layers": layers_from_verbose(done.stdout)}


def markdown(result: dict) -> str:
    """The per-layer table, each layer's floor, and the whole forward's."""
    layers: list[Layer] = result["layers"]
    best = max(layers, key=lambda layer: layer.gflops)
    floors = [floor_ms(layer, best.gflops, result["memory_gbs"], result["bytes_per_weight"]) for layer in layers]
    table = Table(["layer", "kernel", "problem", "ms", "GFLOP/s", "floor ms"], [
        [f"{'up' if layer.kind == 'deconvolution' else 'down'} {i}", layer.kernel, layer.problem,
         f"{layer.milliseconds:.2f}", f"{layer.gflops:.0f}", f"{floor:.2f}"]
        for i, (layer, floor) in enumerate(zip(layers, floors))])
    total_ms = sum(layer.milliseconds for layer in layers)
    gflop = sum(2 * layer.multiply_adds for layer in layers) / 1e9
    lines = [
        f"Tier {result['tier']}, {result['mode']} mode, {result['precision']}; {machine_line(result)}.",
        "",
        table.markdown(),
        "",
        f"- All convolutions: {total_ms:.1f} ms for {gflop:.2f} GFLOP ({gflop / total_ms * 1e3:.0f} GFLOP/s).",
        f"- Yardstick, a 1x1 convolution of 1024 to 1024 channels on 64x64 through the same path: "
        f"{result['product_gflops']:.0f} GFLOP/s; memory read by a 256 MB sum: {result['memory_gbs']:.0f} GB/s.",
        f"- Floor: {sum(floors):.1f} ms, each layer at the best layer's rate ({best.gflops:.0f} GFLOP/s) or its "
        f"weights read from memory, whichever takes longer.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", default="none", choices=[tier.name for tier in TIERS],
                        help="oneDNN tier (default none: no cap)")
    parser.add_argument("--mode", default="eval", choices=("eval", "train"))
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fast-path precision (default fp32)")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10, help="timed forward passes (default 10)")
    parser.add_argument("--markdown", default=None, metavar="PATH", help="also write the report there (atomically)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        _probe(args)
        return 0
    report = markdown(run(args))
    print(report)
    if args.markdown:
        atomic_write_text(args.markdown, report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
