"""`python -m edges2shoes_utils bench infer`: milliseconds per 256x256 image, plain vs fast.

Times, in one run and interleaved (so a change in machine load hits both alike), the plain eager
fp32 generator (the module itself under `torch.no_grad`, as the original notebook ran it) and the
fast path of `Sketch2Shoe` (`fastpath.py`), at batch 1, for each test-time mode, and checks that the
fast path computes the same picture: PSNR of its output against the plain fp32 output (images in
[0, 1], so 40 dB is an RMS error of 1% of the range).

* eval mode: the reference is `generator.eval()(x)`;
* train mode: the reference is the plain fp32 runner with the same dropout seed: masks are drawn per
  image from the seed in a fixed layout, so both paths drop the same units, and the comparison
  covers batch statistics and dropout. (The module's own `.train()` forward draws its masks from the
  global RNG in its own order, so its output cannot be matched mask for mask; the tests check that
  the plain runner equals it with dropout off.)

Without `--weights` the paper-size generator is randomly initialised (N(0, 0.02)) and its batch-norm
running statistics are calibrated on a few random sketch-like inputs, so that eval mode sees
activations of a realistic scale instead of the untouched mean 0 / variance 1. On CUDA the fast
path is autocast (bf16 or fp16) and timings synchronise the device.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from typing import Callable

import torch
from PIL import Image, ImageDraw

from ..evaluation.metrics import psnr_per_image
from ..inference import MODES, Sketch2Shoe
from ..nets import GeneratorConfig, UNetGenerator, count_parameters
from ..training.device import PRECISIONS, cpu_has_native_bf16, pick_device
from ..util.tables import Table
from . import peers, tiers
from .figures import Report, load_average, machine, write_figures
from .tiers import runner_text
from ..util.timing import interleaved_times

GOAL_MS = 60.0  # the fast path on the 2-core reference machine
GOAL_RATIO = 0.4  # fast / plain eager
GOAL_PSNR = 40.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None, metavar="SOURCE",
                        help="generator weights (default: the paper-size generator, random init)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="test-time modes, comma separated (default: eval,train)")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes per path (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes first (default 3)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width without --weights (default 64, the paper's)")
    parser.add_argument("--levels", type=int, default=8, help="generator levels without --weights: 8 for 256x256 (default)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda'")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="fast-path precision (default auto: bf16 where the CPU has it natively, else fp32)")
    parser.add_argument("--no-fp32-row", dest="fp32_row", action="store_false",
                        help="skip the extra row timing the fast path in fp32 when it runs in bf16")
    parser.add_argument("--compile", action="store_true",
                        help="add a row for the eval-mode fast path under torch.compile (compiling takes a while)")
    parser.add_argument("--tiers", action="store_true",
                        help="run the bench once per oneDNN CPU tier (AVX2 ... no cap), each in its own process, "
                             "and print one table")
    parser.add_argument("--peers", action="store_true",
                        help="eval mode against onnxruntime, OpenVINO and torch.compile in one process "
                             "(pip install 'edges2shoes[peers]')")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random init, input and dropout")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (atomically)")


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"bench infer: unknown mode {mode!r} (use eval, train)")
    if args.tiers:
        return tiers.run_tiers(args)
    if args.weights:
        probe = Sketch2Shoe.from_weights(args.weights, device=args.device, mode="eval", fast=False)
        generator, device, weights = probe.generator, probe.device, str(args.weights)
    else:
        device = pick_device(args.device)
        config = GeneratorConfig(ngf=args.ngf, levels=args.levels)
        generator = calibrated_random_generator(config, seed=args.seed).to(device)
        weights = "random init (N(0, 0.02)), running statistics calibrated on random sketch-like inputs"
    size = generator.config.multiple
    x = sketch_like_input(size, seed=args.seed).to(device)
    load_before = load_average()

    rows: list[dict] = []
    peer_rows: list[dict] = []
    if args.peers:
        if device.type != "cpu":
            raise SystemExit("bench infer --peers: the peers are CPU runtimes (use --device cpu)")
        peer_rows = peers.run_peers(generator, x, args)
    else:
        for mode in modes:
            rows.extend(bench_mode(generator, x, mode, device, args))
    load_after = load_average()

    result = {
        "benchmark": "infer --peers" if args.peers else "infer",
        "device": str(device),
        **machine(),
        "native_bf16": cpu_has_native_bf16() if device.type == "cpu" else None,
        "weights": weights,
        "parameters": count_parameters(generator),
        "image_size": size,
        "batch": 1,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": rows,
        "peers": peer_rows,
        "goal": {"fast_ms_max": GOAL_MS, "ratio_max": GOAL_RATIO, "psnr_min_db": GOAL_PSNR},
    }
    print(report(result).text(result))
    if args.json:
        write_figures(args.json, result, args)
    return 0


# --------------------------------------------------------------------------------------------------


def bench_mode(generator: UNetGenerator, x: torch.Tensor, mode: str, device: torch.device,
               args: argparse.Namespace) -> list[dict]:
    """Time plain eager and the fast path(s) on the batch `x`, interleaved round by round, and compare
    outputs (also used by `bench gpu` at batch 64)."""
    plain_module = copy.deepcopy(generator).to(device)
    plain_module.train(mode == "train")

    def plain() -> torch.Tensor:
        with torch.no_grad():
            return plain_module(x)

    seed = [args.seed + i for i in range(x.shape[0])]  # one dropout seed per image
    reference_runner = Sketch2Shoe(generator, mode=mode, seed=args.seed, fast=False, device=device)
    reference = plain() if mode == "eval" else reference_runner.generate_batch(x, seed)
    reference = reference.float().clamp(-1, 1).cpu()

    paths: list[tuple[str, Sketch2Shoe]] = [("fast", Sketch2Shoe(generator, mode=mode, seed=args.seed,
                                                                 device=device, precision=args.precision))]
    if args.fp32_row and paths[0][1].precision != "fp32" and device.type == "cpu":
        paths.append(("fast", Sketch2Shoe(generator, mode=mode, seed=args.seed, device=device, precision="fp32")))
    compile_seconds = None
    if args.compile and mode == "eval":
        compiled = Sketch2Shoe(generator, mode=mode, seed=args.seed, device=device, precision=args.precision,
                               compile=True)
        start = time.perf_counter()
        compiled.generate_batch(x, seed)  # the first call compiles
        compile_seconds = time.perf_counter() - start
        paths.append(("compiled", compiled))
    calls: dict[str, Callable[[], object]] = {"plain eager": plain}
    for name, model in paths:
        calls[f"{name} {model.precision}"] = (lambda m=model: m.generate_batch(x, seed))
    times = interleaved_times(calls, args.warmup, args.repeats, device)

    plain_ms = statistics.median(times["plain eager"])
    rows = [_row(mode, "plain eager", "fp32", times["plain eager"], plain_ms, None)]
    for name, model in paths:
        label = f"{name} {model.precision}"
        output = model.generate_batch(x, seed).float().cpu()
        rows.append(_row(mode, name, model.precision, times[label], plain_ms, psnr(output, reference)))
        rows[-1].update(runner="fast" if model.runner.fast else "plain", note=model.runner.note)
        if name == "compiled":
            rows[-1]["compile_s"] = round(compile_seconds, 1)
    return rows


def _row(mode: str, path: str, precision: str, samples: list[float], plain_ms: float, psnr_db: float | None) -> dict:
    median = statistics.median(samples)
    return {
        "mode": mode,
        "path": path,
        "precision": precision,
        "median_ms": round(median, 2),
        "min_ms": round(min(samples), 2),
        "ratio_to_plain": round(median / plain_ms, 3),
        "psnr_db": None if psnr_db is None else (round(psnr_db, 2) if math.isfinite(psnr_db) else "inf"),
    }


def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of a whole batch in [-1, 1] against another (range 2: the same as on [0, 1])."""
    return float(psnr_per_image(output.reshape(1, -1), reference.reshape(1, -1), data_range=2.0)[0])


# --------------------------------------------------------------------------------------------------
# Inputs and a random generator that behaves like a trained one in eval mode.


def sketch_like_input(size: int = 256, seed: int = 0) -> torch.Tensor:
    """A (1, 3, size, size) edge map in [-1, 1]: thin dark outlines of a shoe-ish shape on white."""
    gen = torch.Generator().manual_seed(seed)
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    s = size / 256.0

    def jitter(v: float) -> float:
        return v + float(torch.randn((), generator=gen)) * 3 * s

    corners = [(20, 170), (60, 120), (110, 105), (150, 60), (200, 55), (215, 120), (240, 175), (235, 200), (25, 200)]
    outline = [(jitter(x * s), jitter(y * s)) for x, y in corners]
    draw.line(outline + [outline[0]], fill=0, width=max(1, round(2 * s)))
    draw.line([(40 * s, 185 * s), (230 * s, 185 * s)], fill=0, width=max(1, round(s)))
    for i in range(4):
        y = (80 + 12 * i) * s
        draw.line([(150 * s, y), (190 * s, y + 8 * s)], fill=0, width=1)
    tensor = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).float().view(1, 1, size, size)
    return (tensor / 127.5 - 1.0).expand(1, 3, size, size).contiguous()


@torch.no_grad()
def calibrated_random_generator(config: GeneratorConfig, seed: int = 0, batches: int = 3) -> UNetGenerator:
    """A randomly initialised generator whose batch-norm running statistics are the averages over a
    few sketch-like inputs (cumulative average, momentum None), as a trained one's would be."""
    torch.manual_seed(seed)
    generator = UNetGenerator(config)
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    generator.train()
    size = config.multiple
    for b in range(batches):
        batch = torch.cat([sketch_like_input(size, seed=seed + 100 * b + i) for i in range(2)])
        generator(batch)
    for norm in norms:
        norm.momentum = 0.1
    return generator.eval()


# --------------------------------------------------------------------------------------------------
# Report.


def report(result: dict) -> Report:
    """The run as a report: the rows (or the peers) in one table, then fallbacks, compile times and goals."""
    if result["benchmark"] == "infer --tiers":
        return tiers.report(result)
    title = (f"bench infer: {result['parameters']:,}-parameter generator, {result['image_size']}x{result['image_size']}, "
             f"batch 1, {result['repeats']} interleaved repeats, median ms; device {result['device']}, "
             f"native bf16: {result['native_bf16']}; weights: {result['weights']}")
    table = peers.peers_table(result["peers"]) if result["peers"] else rows_table(result["rows"])
    notes = [f"{row['mode']} {row['path']}: {row['note']}" for row in result["rows"] if row.get("note")]
    notes += [f"{row['mode']}: torch.compile's first call (compiling) took {row['compile_s']} s"
              for row in result["rows"] if "compile_s" in row]
    goal = result["goal"]
    for row in result["rows"]:
        if row is not _first_fast(result["rows"], row["mode"]):
            continue
        psnr_ok = row["psnr_db"] == "inf" or (row["psnr_db"] is not None and row["psnr_db"] >= goal["psnr_min_db"])
        ok = row["median_ms"] <= goal["fast_ms_max"] and row["ratio_to_plain"] < goal["ratio_max"] and psnr_ok
        notes.append(f"goal ({row['mode']}: fast <= {goal['fast_ms_max']:.0f} ms, < {goal['ratio_max']} x plain, "
                     f"PSNR >= {goal['psnr_min_db']:.0f} dB): {'met' if ok else 'NOT met'}")
    return Report(title, [table], notes)


def rows_table(rows: list[dict]) -> Table:
    """The `bench_mode` rows: per mode and path, milliseconds, the ratio to plain, PSNR against plain
    and what ran (the fast path, or plain where it fell back)."""
    return Table(["mode", "path", "precision", "median ms", "min ms", "x plain", "PSNR dB", "runner"],
                 [[row["mode"], row["path"], row["precision"], row["median_ms"], row["min_ms"],
                   f"{row['ratio_to_plain']:.2f}", None if row["psnr_db"] is None else str(row["psnr_db"]),
                   runner_text(row)] for row in rows])


def _first_fast(rows: list[dict], mode: str) -> dict | None:
    return next((r for r in rows if r["mode"] == mode and r["path"] == "fast"), None)
