"""`python -m edges2shoes_utils bench {data,train,infer,sketch,gpu,app,all}`: speed and memory, measured.

Each benchmark lives in its own module (`bench.data`, `bench.train`, `bench.infer`, `bench.sketch`, `bench.gpu`,
`bench.app`) with
`configure(parser)` and `run(args) -> int`; this module only dispatches. Benchmarks print their
report (`report(result)`: a title, tables, notes) and, with `--json PATH`, write their figures
atomically with the machine, the date and the command (`figures.py`), from which
`tools/benchmarks_doc.py` writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from types import ModuleType

from . import app, data, gpu, infer, sketch, train

BENCHMARKS: dict[str, tuple[ModuleType, str]] = {
    "data": (data, "pairs/s per worker: JPEG decode + training jitter"),
    "train": (train, "images/s of the paper-size training step, in fp32 and in bf16 or fp16"),
    "infer": (infer, "ms per 256x256 image: plain eager fp32 vs the fast path"),
    "sketch": (sketch, "ms of the sketch clean-up (canvas, samples, 12 MP photo) and end to end, vs plain eager"),
    # without a GPU (and no --device cpu) it prints a note and returns 0, so `bench all` passes on a CPU
    "gpu": (gpu, "the GPU path in one command: gpu tests, training, inference, loader, torchrun (JSON + Markdown)"),
    "app": (app, "the drawing app soaked: latency, requests/s, failures, server memory and log (needs the [app] extra)"),
}


def configure_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, (module, help_text) in BENCHMARKS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(run=module.run)
    everything = sub.add_parser("all", help="run every benchmark with its defaults")
    everything.set_defaults(run=run_all)


def run_all(args: argparse.Namespace) -> int:
    status = 0
    for name, (module, _) in BENCHMARKS.items():
        parser = argparse.ArgumentParser(prog=f"edges2shoes bench {name}")
        module.configure(parser)
        print(f"== bench {name}")
        status |= int(module.run(parser.parse_args([])) or 0)
    return status
