"""`python -m edges2shoes_utils bench {data,train,infer,all}`: speed and memory, measured.

Each benchmark lives in its own module (`bench_data`, `bench_train`, `bench_infer`) with
`configure(parser)` and `run(args) -> int`; this module only dispatches. Benchmarks print a table
and, with `--json PATH`, write their figures atomically for notes and reports.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS: dict[str, tuple[str, str]] = {
    "data": ("bench_data", "pairs/s per worker: JPEG decode + training jitter"),
    "train": ("bench_train", "images/s of the paper-size training step, fp32 and mixed precision"),
    "infer": ("bench_infer", "ms per 256x256 image: plain eager fp32 vs the fast path"),
}


def configure_cli(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        try:
            module = importlib.import_module(f".{module_name}", __package__)
        except ModuleNotFoundError as missing:
            if missing.name != f"{__package__}.{module_name}":
                raise
            continue
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(run=module.run)
    everything = sub.add_parser("all", help="run every benchmark with its defaults")
    everything.set_defaults(run=run_all)


def run_all(args: argparse.Namespace) -> int:
    status = 0
    for name, (module_name, _) in BENCHMARKS.items():
        module = importlib.import_module(f".{module_name}", __package__)
        parser = argparse.ArgumentParser(prog=f"edges2shoes bench {name}")
        module.configure(parser)
        print(f"== bench {name}")
        status |= int(module.run(parser.parse_args([])) or 0)
    return status
