"""`python -m edges2shoes_utils bench gpu`: the GPU path exercised and measured, in one command.

    PYTHONPATH=. python -m edges2shoes_utils bench gpu --out runs/bench-gpu     # on a GPU (tools/gpu_check.sh)
    PYTHONPATH=. python -m edges2shoes_utils bench gpu --device cpu --quick     # the dry run (tests)

Sections, in this order (the costly compiled rows last, so the budget cuts them first):

* gpu_tests: `pytest -m gpu tests/test_gpu.py` from the checkout (pass / fail / skip counts);
* train: the paper-size training step (`train_step`, networks built as training builds them, with
  channels_last) at batch 4, 16 and 64 in fp16 + GradScaler, bf16 and TF32: images/s, peak memory;
* infer: batch 1 latency and batch 64 throughput in eval and train mode, plain eager fp32 (the
  yardstick) against the fast path, interleaved in the same run;
* loader: the training DataLoader with 1, 2, 4 and 8 workers on synthetic 512x256 JPEG pairs,
  set against the fastest training step: does loading keep up with the GPU?
* torchrun: the real `train` command over every visible GPU (NCCL), two short epochs;
* train_compiled: the training rows again under torch.compile, compile time apart.

An overall budget (default 7.5 minutes) bounds it: what does not fit is recorded as "not run: time
budget". The JSON and the Markdown table are rewritten (atomically) after every section, so even
an interrupted run leaves its figures. Only torch and this package are needed (pytest for the
gpu tests); kagglehub, onnx, gradio and the metrics packages are never imported here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..training.device import check_cuda_supported, pick_device
from ..util.atomic import atomic_write_text
from ..util.version import __version__
from .figures import cpu_name
from .gpu_launch import gpu_tests_section, torchrun_section
from .gpu_plan import DEFAULT_BUDGET_S, NOT_RUN_BUDGET, Budget, GpuPlan, RunContext, make_plan
from .gpu_report import render
from .gpu_sections import describe_error, free_memory, infer_section, loader_section, train_section

SECTIONS: dict[str, Callable[[RunContext], dict]] = {
    "gpu_tests": gpu_tests_section,
    "train": lambda ctx: train_section(ctx, compiled=False),
    "infer": infer_section,
    "loader": loader_section,
    "torchrun": torchrun_section,
    "train_compiled": lambda ctx: train_section(ctx, compiled=True),
}
JSON_NAME, MARKDOWN_NAME = "bench-gpu.json", "bench-gpu.md"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                        help="auto: the GPU, or skip with a note when there is none (so `bench all` passes "
                             "on a CPU machine); cpu: the dry run (use with --quick)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-gpu"),
                        help=f"folder for {JSON_NAME} and {MARKDOWN_NAME} (default runs/bench-gpu)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (ngf 8, 64x64, batch 1-2, 1 timed step, 2 gloo processes): the dry run")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="SECONDS",
                        help="overall deadline; sections past it are recorded as not run "
                             f"(default {DEFAULT_BUDGET_S:.0f})")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="the torch.compile rows (default on; a --quick CPU run uses dynamo's cheap eager backend)")
    parser.add_argument("--skip", nargs="+", default=[], choices=list(SECTIONS), metavar="SECTION",
                        help=f"sections to leave out: {', '.join(SECTIONS)}")


def run(args: argparse.Namespace) -> int:
    if args.device == "auto" and not torch.cuda.is_available():
        print("bench gpu: no CUDA GPU here, skipped (for the CPU dry run: bench gpu --device cpu --quick)")
        return 0
    device = pick_device(args.device)
    check_cuda_supported(device)
    plan = make_plan(args.quick, device, args.compile)
    budget = Budget(args.budget)
    result = {
        "benchmark": "gpu", "version": __version__, "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine_info(device), "plan": asdict(plan), "budget_s": args.budget, "elapsed_s": 0.0,
        "sections": {name: {"status": "not run: --skip" if name in args.skip else NOT_RUN_BUDGET}
                     for name in SECTIONS},
    }
    print(f"bench gpu on {result['machine']['gpu'] or device}; budget {args.budget:.0f} s; results in {args.out}")
    threads = torch.get_num_threads()
    if plan.quick:
        # tiny tensors gain nothing from more threads, and on a busy machine every op would wait at
        # a thread barrier for a descheduled thread (seconds per step instead of milliseconds)
        torch.set_num_threads(1)
    try:
        run_sections(args, result, plan, device, budget)
    finally:
        torch.set_num_threads(threads)
    result["elapsed_s"] = budget.elapsed()
    markdown = write_results(args.out, result)
    print(markdown)
    print(f"results: {args.out / JSON_NAME} and {args.out / MARKDOWN_NAME}")
    failed = [n for n, s in result["sections"].items() if s["status"].startswith(("error", "failed"))]
    if failed:
        print(f"bench gpu: sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run_sections(args: argparse.Namespace, result: dict, plan: GpuPlan, device: torch.device, budget: Budget) -> None:
    """Each section in order while the budget lasts, the results rewritten after each one."""
    with tempfile.TemporaryDirectory(prefix="edges2shoes-bench-gpu-") as tmp:
        ctx = RunContext(plan=plan, device=device, budget=budget, tmp=Path(tmp), sections=result["sections"])
        for name, section in SECTIONS.items():
            if name in args.skip or not ctx.budget.allows(10.0):
                continue
            print(f"== {name} ({ctx.budget.remaining():.0f} s left)")
            result["sections"][name] = run_section(section, ctx)
            print(f"   {result['sections'][name]['status']} ({result['sections'][name]['seconds']:.1f} s)")
            result["elapsed_s"] = ctx.budget.elapsed()
            write_results(args.out, result)


def run_section(section: Callable[[RunContext], dict], ctx: RunContext) -> dict:
    """One section's figures; an exception in it is recorded and the next section runs."""
    started = time.perf_counter()
    try:
        figures = section(ctx)
    except Exception as error:  # a section that breaks must not cost the others their figures
        figures = {"status": f"error: {describe_error(error)}"}
    finally:
        free_memory(ctx.device)
    figures["seconds"] = time.perf_counter() - started
    return figures


def write_results(out: Path, result: dict) -> str:
    """Write the JSON and the Markdown table atomically; returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = render(result)
    atomic_write_text(out / JSON_NAME, json.dumps(result, indent=2, default=str) + "\n")
    atomic_write_text(out / MARKDOWN_NAME, markdown)
    return markdown


def machine_info(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {"device": str(device), "gpu": None, "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version(), "cpu": cpu_name(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_count=torch.cuda.device_count(), capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 1024**3, 1), cudnn=torch.backends.cudnn.version())
    return info
