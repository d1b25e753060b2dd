"""The in-process sections of `bench gpu`: the training step, inference, and the data loader.

Each row is guarded: an out-of-memory error or a compile failure becomes that row's status
("error: ...") and the next row runs. Each row starts only if its estimated time still fits the
budget; otherwise it is recorded as "not run: time budget".
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import time
from typing import Callable, Iterator

import torch

from ..data import PairsDataset, make_synthetic
from ..inference import MODES
from ..nets import GeneratorConfig
from ..training.device import Precision, configure_backends
from ..training.distributed import DistInfo
from ..training.config import TrainConfig
from ..training.networks import build_networks, wrap_for_step
from ..training.step import train_step
from .data import time_loader
from .gpu_plan import NOT_RUN_BUDGET, RunContext
from .infer import bench_mode, calibrated_random_generator, sketch_like_input
from .train import count_step_gflop, random_pair, time_steps

GIB = 1024**3


# --------------------------------------------------------------------------------------------------
# Guards.


def describe_error(error: BaseException) -> str:
    """One line for the table: the exception's type and the first line of its message."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")
    return text if len(text) <= 200 else text[:197] + "..."


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def guarded(work: Callable[[], dict], device: torch.device) -> dict:
    """`work()`'s figures, or its failure as the row's status; memory is released either way."""
    try:
        return work()
    except Exception as error:  # OOM, compile errors, ...: a result to record, not a reason to stop
        return {"status": f"error: {describe_error(error)}"}
    finally:
        free_memory(device)


def budgeted_rows(ctx: RunContext, units: list[dict], measure: Callable[[dict], dict],
                  first_estimate_s: float) -> list[dict]:
    """Run `measure(unit)` for each unit (a dict of labels) while its estimate fits the budget; the
    estimate is the last unit's time with a margin."""
    rows, estimate = [], first_estimate_s
    for unit in units:
        if not ctx.budget.allows(estimate):
            rows.append({**unit, "status": NOT_RUN_BUDGET})
            continue
        started = ctx.budget.elapsed()
        rows.append({**unit, **guarded(lambda: measure(unit), ctx.device)})
        estimate = 1.3 * (ctx.budget.elapsed() - started)
        print(f"  {format_unit(rows[-1])}")
    return rows


def format_unit(row: dict) -> str:
    keys = ("precision", "batch", "compile", "mode", "path", "workers", "status", "images_per_s", "pairs_per_s")
    return ", ".join(f"{k} {row[k]:.1f}" if isinstance(row[k], float) else f"{k} {row[k]}" for k in keys if k in row)


@contextlib.contextmanager
def backend_flags() -> Iterator[None]:
    """Restore cuDNN autotuning and the TF32 switches afterwards, so the inference section runs with
    PyTorch's defaults whatever the training section set."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved


# --------------------------------------------------------------------------------------------------
# The training step.


def time_train_row(ctx: RunContext, precision_name: str, batch: int, backend: str | None) -> dict:
    """Build the networks as training does (channels_last), time the first step apart (compiling,
    cuDNN autotuning), then the steady steps; peak GPU memory covers weights, Adam state and activations."""
    plan, device = ctx.plan, ctx.device
    # As asked, unchecked: fp16 on a CPU is the T4's code path, exercised by the dry run (autocast
    # and GradScaler("cpu") run there). fp32 runs on TF32 tensor cores on CUDA (configure_backends).
    precision = Precision.named(precision_name, device.type)
    config = TrainConfig(ngf=plan.ngf, ndf=plan.ngf, image_size=plan.image_size, device=device.type)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    nets = build_networks(config, device, precision, channels_last=True)
    if backend:
        torch._dynamo.reset()  # a fresh compile per row, so its time is this row's
    # torch.compile as training's --compile does (there with inductor; the CPU dry run uses dynamo's cheap `eager`)
    nets = wrap_for_step(nets, DistInfo(), device, backend)
    edges, photo = random_pair(batch, plan.image_size, device, channels_last=True)
    started = time.perf_counter()
    train_step(nets, edges, photo).sum().item()
    first = time.perf_counter() - started
    seconds = time_steps(nets, edges, photo, plan.steps, max(plan.warmup - 1, 1 if backend else 0), device)
    row = {"status": "ok", "images_per_s": batch / seconds, "ms_per_step": 1000 * seconds, "first_step_s": first,
           "peak_memory_gib": torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None}
    if backend:
        row["compile_s"] = max(first - seconds, 0.0)
    return row


def train_section(ctx: RunContext, compiled: bool) -> dict:
    """Rows of (precision, batch), eager or compiled, with channels_last, as the training loop sets
    the backends (cuDNN autotuning, TF32)."""
    plan = ctx.plan
    if compiled and plan.compile_backend is None:
        return {"status": "not run: --no-compile", "rows": []}
    backend = plan.compile_backend if compiled else None
    pairs = plan.compile_rows if compiled else [(p, b) for p in plan.precisions for b in plan.train_batches]
    units = [{"precision": p, "batch": b, "compile": backend or "no", "channels_last": True} for p, b in pairs]
    gflop = ctx.sections.get("train", {}).get("gflop_per_image")
    with backend_flags():
        configure_backends(ctx.device)
        if gflop is None:
            gflop = guarded(lambda: {"gflop": count_step_gflop(plan.image_size, plan.ngf, plan.ngf, ctx.device)},
                            ctx.device).get("gflop")
        rows = budgeted_rows(ctx, units, lambda u: time_train_row(ctx, u["precision"], u["batch"], backend),
                             first_estimate_s=60.0 if compiled and not plan.quick else 5.0)
    for row in rows:
        if gflop and "images_per_s" in row:
            row["achieved_tflops"] = row["images_per_s"] * gflop / 1000
    math_note = "TF32 tensor cores" if ctx.device.type == "cuda" else "plain fp32 (TF32 is CUDA only)"
    return {"status": section_status(rows), "gflop_per_image": gflop, "image_size": plan.image_size,
            "ngf": plan.ngf, "ndf": plan.ngf, "steps": plan.steps, "fp32_row_math": math_note, "rows": rows}


def section_status(rows: list[dict]) -> str:
    """"ok" when every row ran; else how many rows ran, failed, or did not fit the budget."""
    ok = sum(r["status"] == "ok" for r in rows)
    if rows and ok == len(rows):
        return "ok"
    failed = sum(r["status"].startswith("error") for r in rows)
    skipped = len(rows) - ok - failed
    return f"partial: {ok} ok, {failed} failed, {skipped} not run (time budget)" if rows else "no rows"


# --------------------------------------------------------------------------------------------------
# Inference.


def infer_section(ctx: RunContext) -> dict:
    """Latency at batch 1 and throughput at the large batch, eval and train mode, plain eager fp32
    (the yardstick) against the fast path, interleaved in the same run (`bench infer`'s rows)."""
    plan, device = ctx.plan, ctx.device
    generator = calibrated_random_generator(GeneratorConfig(ngf=plan.ngf, levels=plan.levels), seed=0).to(device)
    options = argparse.Namespace(seed=0, precision="auto", fp32_row=False, compile=False,
                                 warmup=plan.infer_warmup, repeats=plan.infer_repeats)
    inputs = {b: torch.cat([sketch_like_input(plan.image_size, seed=i) for i in range(b)]).to(device)
              for b in plan.infer_batches}

    def measure(unit: dict) -> dict:
        rows = bench_mode(generator, inputs[unit["batch"]], unit["mode"], device, options)
        return {"status": "ok", "rows": rows}

    units = [{"batch": b, "mode": m} for b in plan.infer_batches for m in MODES]
    rows = []
    for unit in budgeted_rows(ctx, units, measure, first_estimate_s=5.0):
        for row in unit.pop("rows", None) or [{}]:
            row = {**unit, **row}
            if "median_ms" in row:
                row["images_per_s"] = 1000 * unit["batch"] / row["median_ms"]
            rows.append(row)
    return {"status": section_status(rows), "image_size": plan.image_size, "ngf": plan.ngf,
            "repeats": plan.infer_repeats, "tf32_flags": _tf32_flags(), "rows": rows}


def _tf32_flags() -> dict[str, bool]:
    return {"cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.benchmark": torch.backends.cudnn.benchmark}


# --------------------------------------------------------------------------------------------------
# The data loader.


def loader_section(ctx: RunContext) -> dict:
    """pairs/s of the training DataLoader (jitter included) with 1, 2, 4 and 8 workers on synthetic
    JPEG pairs of the real set's format, set against the fastest eager training step."""
    plan = ctx.plan
    root = make_synthetic(ctx.tmp / "loader-set", n=plan.loader_files, size=plan.image_size, seed=0, n_val=1,
                          workers=max(1, min(8, (os.cpu_count() or 1) - 1)))
    dataset = PairsDataset(root, "train", image_size=plan.image_size, jitter=True)
    units = [{"workers": w} for w in plan.loader_workers]
    rows = budgeted_rows(ctx, units, lambda u: {"status": "ok", **time_loader(
        dataset, u["workers"], plan.loader_batch, plan.loader_pairs)}, first_estimate_s=5.0)
    reference = fastest_step(ctx.sections)
    for row in rows:
        if reference and "pairs_per_s" in row:
            row["x_fastest_step"] = row["pairs_per_s"] / reference["images_per_s"]
            row["keeps_up"] = row["x_fastest_step"] >= 1.0
    one = next((r for r in rows if r.get("workers") == 1 and "pairs_per_s" in r), None)
    needed = math.ceil(reference["images_per_s"] / one["pairs_per_s"]) if reference and one else None
    return {"status": section_status(rows), "files": plan.loader_files,
            "source_size": f"{2 * plan.image_size}x{plan.image_size}",
            "batch": plan.loader_batch, "pairs_timed": plan.loader_pairs, "cpu_count": os.cpu_count(),
            "fastest_step": reference, "workers_needed_estimate": needed, "rows": rows}


def fastest_step(sections: dict[str, dict]) -> dict | None:
    """The fastest eager training row (training's default; the compiled rows run last): what the
    loader must feed."""
    rows = [r for r in sections.get("train", {}).get("rows", []) if r.get("status") == "ok"]
    best = max(rows, key=lambda r: r["images_per_s"], default=None)
    if best is None:
        return None
    return {k: best[k] for k in ("precision", "batch", "compile", "images_per_s")}


__all__ = ["describe_error", "fastest_step", "guarded", "infer_section", "loader_section", "train_section"]
