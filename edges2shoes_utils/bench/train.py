"""`python -m edges2shoes_utils bench train`: images/s of the paper-size pix2pix training step.

Times `train_step` (the training loop's own step: one G forward, D on real and on detached fake, the
G adversarial pass through the updated D, fused/foreach Adam, no host syncs) on random 256x256
batches, by default in fp32 and in this device's reduced format (CUDA: what `--precision auto`
picks, bf16 or fp16 with a GradScaler; CPU: bf16 autocast). Each figure is set against the FLOP
floor: the step's FLOPs (counted here with torch's FlopCounterMode: 93.3 GFLOP per 256x256 image for
the paper-size networks, made of the G forward and backward, D on real and fake, and the G
adversarial pass) divided by this device's measured matrix-product throughput. Finally it shows what
the FLOP count predicts for a Kaggle T4, and for 10 epochs of edges2shoes on T4 x2, with the
arithmetic.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..training.device import (PRECISIONS, check_cuda_supported, configure_backends, deprecated, make_adam,
                               pick_device, resolve_precision)
from ..nets import PatchGANDiscriminator, UNetGenerator
from ..training import Networks, TrainConfig, train_step
from ..util.tables import Table, cell
from .figures import Report, machine, write_figures
from .hardware import DATASHEET_TFLOPS

PAPER_GFLOP_PER_IMAGE = 93.3  # one training step per 256x256 image, paper-size G and D (FlopCounterMode)
# matrix-product throughput of the reference development CPU when idle, GFLOP/s (docs/benchmarks.md)
REFERENCE_CPU_GFLOPS = {"fp32": 139.0, "bf16": 388.0}
T4_FP16_TFLOPS = DATASHEET_TFLOPS["T4"]["fp16"]  # its tensor-core peak
T4_UTILISATION = (0.25, 0.35)  # realistic share of peak for conv nets of this size
DDP_SCALING = 0.9  # two GPUs over PCIe: ~90% of twice one GPU
EDGES2SHOES_TRAIN_PAIRS = 49_825
ORIGINAL_SECONDS_10_EPOCHS = 12_621.5  # the original notebook on a Kaggle GPU


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=4, help="images per step (default 4, the paper's)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per precision (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side (default 256)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (default 64, the paper's)")
    parser.add_argument("--ndf", type=int, default=64, help="discriminator width (default 64)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--precisions", nargs="+", default=None, choices=(*PRECISIONS, "mixed"), metavar="PRECISION",
                        help="number formats to time, each as `train --precision` runs it (default: fp32 and this "
                             "device's reduced format: auto on CUDA, bf16 on a CPU)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="NHWC layout (default: on CUDA only, like training)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")


def count_step_gflop(image_size: int, ngf: int, ndf: int, device: torch.device) -> float:
    """FLOPs of one fp32 training step per image, counted op by op (batch 1)."""
    parts, edges, photo = _build(1, image_size, ngf, ndf, device, "fp32", channels_last=False)
    with FlopCounterMode(display=False) as counter:
        train_step(parts, edges, photo)
    return counter.get_total_flops() / 1e9


def measure_matmul_gflops(device: torch.device, dtype: torch.dtype, seconds: float = 0.5) -> float:
    """Sustained matrix-product throughput: the practical ceiling the conv layers are set against."""
    n = 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    (a @ b).sum().item()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
        if device.type == "cuda" and count % 8 == 0:
            torch.cuda.synchronize(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def _build(batch: int, size: int, ngf: int, ndf: int, device: torch.device, precision_name: str, channels_last: bool):
    levels = TrainConfig(image_size=size).resolved_levels()
    generator = UNetGenerator(ngf=ngf, levels=levels)
    discriminator = PatchGANDiscriminator(ndf=ndf)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    precision = resolve_precision(precision_name, device)
    parts = Networks(
        generator=generator, discriminator=discriminator,
        opt_g=make_adam(generator.parameters(), 2e-4, (0.5, 0.999), device),
        opt_d=make_adam(discriminator.parameters(), 2e-4, (0.5, 0.999), device),
        precision=precision,
    )
    return (parts, *random_pair(batch, size, device, channels_last))


def random_pair(batch: int, size: int, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A random (edges, photo) batch in [-1, 1], in the layout the networks were moved to."""
    edges = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    photo = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    if channels_last:
        edges = edges.contiguous(memory_format=torch.channels_last)
        photo = photo.contiguous(memory_format=torch.channels_last)
    return edges, photo


def time_steps(parts: Networks, edges, photo, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        train_step(parts, edges, photo)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        losses = train_step(parts, edges, photo)
    losses.sum().item()  # wait for the device
    return (time.perf_counter() - started) / steps


def t4_prediction(gflop_per_image: float) -> list[str]:
    """What the FLOP count predicts for a T4 and for 10 edges2shoes epochs on T4 x2, shown as sums."""
    images = 10 * EDGES2SHOES_TRAIN_PAIRS
    lines = [f"T4 prediction from the FLOP count ({gflop_per_image:.1f} GFLOP per image per step):"]
    for share in T4_UTILISATION:
        sustained = T4_FP16_TFLOPS * share
        one = sustained * 1e3 / gflop_per_image
        two = 2 * one * DDP_SCALING
        seconds = images / two
        lines.append(
            f"  {share:.0%} of {T4_FP16_TFLOPS:.0f} TFLOP/s = {sustained:.2f} TFLOP/s -> "
            f"{sustained:.2f}e3 / {gflop_per_image:.1f} = {one:.0f} images/s per T4; "
            f"T4 x2 at {DDP_SCALING:.0%} scaling = {two:.0f} images/s; "
            f"10 epochs = 10 x {EDGES2SHOES_TRAIN_PAIRS:,} / {two:.0f} = {seconds:,.0f} s = {seconds / 60:.1f} min "
            f"({ORIGINAL_SECONDS_10_EPOCHS / seconds:.1f}x the original's {ORIGINAL_SECONDS_10_EPOCHS:,.1f} s)"
        )
    lines.append("  (assumes data loading keeps up: see `bench data`; the original ran at "
                 f"{images / ORIGINAL_SECONDS_10_EPOCHS:.1f} images/s)")
    return lines


def precisions_to_time(asked: list[str] | None, device: torch.device, capability=None) -> list[str]:
    """The formats `--precisions` asks for (default fp32 and the device's reduced format), each once,
    as `train --precision` runs them on `device` (`capability`: see `resolve_precision`). The old
    word "mixed" (that reduced format) is read with a notice."""
    reduced = "auto" if device.type == "cuda" else "bf16"
    if asked and "mixed" in asked:
        deprecated(f"bench train --precisions: 'mixed' is the old word for {reduced!r} on this device; write {reduced!r}")
    words = [reduced if word == "mixed" else word for word in asked or ["fp32", reduced]]
    names = [resolve_precision(word, device, capability=capability).name for word in words]
    return list(dict.fromkeys(names))  # auto is fp32 on a CPU: time it once


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    check_cuda_supported(device)
    configure_backends(device)
    channels_last = device.type == "cuda" if args.channels_last is None else args.channels_last
    scale = (args.image_size / 256) ** 2
    paper_gflop = PAPER_GFLOP_PER_IMAGE * scale if (args.ngf, args.ndf) == (64, 64) else None
    counted = count_step_gflop(args.image_size, args.ngf, args.ndf, device)
    gflop = counted if counted else paper_gflop
    figures: dict = {"benchmark": "train", **machine(), "device": str(device), "batch_size": args.batch_size,
                     "image_size": args.image_size, "ngf": args.ngf, "ndf": args.ndf, "channels_last": channels_last,
                     "gflop_counted": counted, "gflop_expected": paper_gflop, "gflop_per_image": gflop, "results": []}
    for name in precisions_to_time(args.precisions, device):
        parts, edges, photo = _build(args.batch_size, args.image_size, args.ngf, args.ndf, device, name, channels_last)
        seconds = time_steps(parts, edges, photo, args.steps, args.warmup, device)
        rate = args.batch_size / seconds
        peak = measure_matmul_gflops(device, parts.precision.compute_dtype)
        result = {"precision": name, "images_per_s": rate, "seconds_per_step": seconds, "matmul_gflops": peak}
        if gflop:
            result.update(achieved_gflops=gflop * rate, floor_images_per_s=peak / gflop)
        figures["results"].append(result)
        del parts, edges, photo
    print(report(figures).text(figures))
    if args.json:
        write_figures(args.json, figures, args)
    return 0


def report(figures: dict) -> Report:
    """Per precision: images/s and the share of the FLOP floor it reaches; then the T4 prediction."""
    size = figures["image_size"]
    title = (f"bench train: training step, batch {figures['batch_size']}, {size}x{size}, ngf {figures['ngf']}, "
             f"ndf {figures['ndf']}, device {figures['device']}{', channels_last' if figures['channels_last'] else ''}")
    cpu = figures["device"] == "cpu"
    rows = []
    for r in figures["results"]:
        achieved = r.get("achieved_gflops")
        reference = REFERENCE_CPU_GFLOPS.get(r["precision"]) if cpu else None
        rows.append([r["precision"], cell(r["images_per_s"], 2), r["seconds_per_step"] * 1000, achieved,
                     r["matmul_gflops"], None if achieved is None else f"{achieved / r['matmul_gflops']:.0%}",
                     cell(r.get("floor_images_per_s"), 2),
                     f"{achieved / reference:.0%}" if achieved is not None and reference else None])
    table = Table(["precision", "images/s", "ms per step", "GFLOP/s achieved", "matmul GFLOP/s now", "of FLOP floor",
                   "floor images/s", "of reference CPU"], rows)
    notes = []
    if figures["gflop_counted"] is not None:
        expected = f" (expected: {figures['gflop_expected']:.1f})" if figures["gflop_expected"] else ""
        notes.append(f"FLOPs per image per step, counted: {figures['gflop_counted']:.1f} GFLOP{expected}")
    if cpu:
        notes.append("the reference CPU's quiet matmul peak: "
                     + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in REFERENCE_CPU_GFLOPS.items()))
    paper_size = (size, figures["ngf"], figures["ndf"]) == (256, 64, 64)
    counted = figures["gflop_counted"]
    notes += t4_prediction(counted if paper_size and counted else PAPER_GFLOP_PER_IMAGE)
    return Report(title, [table], notes)
