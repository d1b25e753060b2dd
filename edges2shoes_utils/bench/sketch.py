"""`python -m edges2shoes_utils bench sketch`: is the sketch clean-up fast enough to redraw live?

Times, in one run and interleaved round by round (so a change in machine load hits every figure
alike), the median of `--runs` calls of:

* the clean-up (`inference.prepare_sketch`) of a 512 x 512 drawing as a browser canvas sends it, of
  each bundled sample sketch (read from its file) and of a 12-megapixel phone photo of a drawing
  (JPEG bytes); the canvas and photo are made in code (`inference.drawings`);
* end to end, for the canvas and the samples: clean-up plus the generator in train mode (batch
  statistics, seeded dropout) on the fast path, as the web app runs them;
* the yardstick: the plain eager fp32 forward of the same generator (the module itself in train
  mode under `torch.no_grad`, as the original notebook ran it); and the fast path alone, which
  shows how much of the end-to-end time is the clean-up's.

Every figure is also given as a ratio to the yardstick. Without `--ngf`/`--levels` the generator is
the paper-size one (random init, batch-norm statistics calibrated as in `bench infer`); tests pass a
tiny one. Each figure that has a goal (`GOAL_*` below: the canvas clean-up, end to end against the
yardstick, the photo's clean-up) is reported with whether it was met.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from typing import Callable

import torch

from ..inference import Sketch2Shoe, prepare_sketch, sample_sketches
from ..inference.drawings import canvas_drawing, photo_of_drawing
from ..inference.filters import backend
from ..nets import GeneratorConfig, count_parameters
from ..training.device import PRECISIONS, pick_device
from ..util.tables import Table
from .figures import Report, load_average, machine, write_figures
from .infer import calibrated_random_generator
from ..util.timing import interleaved_times

GOAL_CANVAS_MS = 20.0  # clean-up of the 512 x 512 canvas drawing
GOAL_PHOTO_MS = 150.0  # clean-up of the 12-megapixel photo
GOAL_END_TO_END_RATIO = 0.4  # clean-up + fast generator, over the plain eager fp32 forward
YARDSTICK = "plain eager fp32 forward"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=20, help="timed runs per figure; medians are reported (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--canvas-size", type=int, default=512, help="side of the canvas drawing (default 512)")
    parser.add_argument("--photo-size", type=_width_by_height, default=(4000, 3000), metavar="WxH",
                        help="size of the photo of a drawing (default 4000x3000, 12 megapixels)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (default 64, the paper's)")
    parser.add_argument("--levels", type=int, default=8, help="generator levels: 8 for 256x256 (default)")
    parser.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda' for the generator")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="fast-path precision (default auto: bf16 where the CPU has it natively, else fp32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the init, the drawings and dropout")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON (atomically)")


def _width_by_height(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 4000x3000, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"the photo must be at least 16x16 pixels, got {text!r}")
    return width, height


def run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise SystemExit("bench sketch: --runs must be at least 1 and --warmup at least 0")
    device = pick_device(args.device)
    generator = calibrated_random_generator(GeneratorConfig(ngf=args.ngf, levels=args.levels), seed=args.seed)
    generator = generator.to(device)
    size = generator.config.multiple
    fast = Sketch2Shoe(generator, mode="train", seed=args.seed, device=device, precision=args.precision)
    plain_module = copy.deepcopy(generator).train()
    width, height = args.photo_size
    inputs: dict[str, object] = {f"canvas {args.canvas_size}x{args.canvas_size}": canvas_drawing(args.canvas_size, seed=args.seed)}
    inputs.update({path.name: path for path in sample_sketches()})
    photo = f"photo {width}x{height}"
    inputs[photo] = photo_of_drawing(width, height, seed=args.seed)
    x = prepare_sketch(next(iter(inputs.values())), size=size)[0].to(device)

    def plain() -> torch.Tensor:
        with torch.no_grad():
            return plain_module(x)

    calls: dict[str, Callable[[], object]] = {YARDSTICK: plain,
                                              "generator|fast path alone": lambda: fast.generate_batch(x, [args.seed])}
    for name, image in inputs.items():
        calls[f"clean-up|{name}"] = lambda image=image: prepare_sketch(image, size=size)
    for name, image in inputs.items():
        if name != photo:
            calls[f"end-to-end|{name}"] = lambda image=image: fast.generate_batch(
                prepare_sketch(image, size=size)[0], [args.seed])

    load_before = load_average()
    times = interleaved_times(calls, args.warmup, args.runs, device)
    result = _result(args, times, generator, fast, device, load_before)
    print(report(result).text(result))
    if args.json:
        write_figures(args.json, result, args)
    return 0


def _result(args: argparse.Namespace, times: dict[str, list[float]], generator: torch.nn.Module,
            fast: Sketch2Shoe, device: torch.device, load_before: list[float] | None) -> dict:
    plain_ms = statistics.median(times[YARDSTICK])
    rows = []
    for label, samples in times.items():
        kind, _, name = label.partition("|") if label != YARDSTICK else ("yardstick", "", YARDSTICK)
        median = statistics.median(samples)
        rows.append({"kind": kind, "input": name, "median_ms": round(median, 3), "min_ms": round(min(samples), 3),
                     "ratio_to_plain": round(median / plain_ms, 4)})
    return {
        "benchmark": "sketch",
        "device": str(device),
        **machine(),
        "filters": backend(),
        "generator": {"parameters": count_parameters(generator), "image_size": generator.config.multiple,
                      "mode": "train", "fast_path_precision": fast.precision},
        "runs": args.runs,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "rows": rows,
        "goals": _goals(rows, args),
    }


def _goals(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Each goal with the figure it is judged on and whether it was met."""
    canvas = next(r for r in rows if r["kind"] == "clean-up" and r["input"].startswith("canvas"))
    photo = next(r for r in rows if r["kind"] == "clean-up" and r["input"].startswith("photo"))
    worst = max((r for r in rows if r["kind"] == "end-to-end"), key=lambda r: r["ratio_to_plain"])
    return [
        {"goal": f"clean-up of the {canvas['input']} drawing <= {GOAL_CANVAS_MS:.0f} ms",
         "value": canvas["median_ms"], "met": canvas["median_ms"] <= GOAL_CANVAS_MS},
        {"goal": f"end to end <= {GOAL_END_TO_END_RATIO} x the {YARDSTICK} (worst: {worst['input']})",
         "value": worst["ratio_to_plain"], "met": worst["ratio_to_plain"] <= GOAL_END_TO_END_RATIO},
        {"goal": f"clean-up of the {photo['input']} <= {GOAL_PHOTO_MS:.0f} ms",
         "value": photo["median_ms"], "met": photo["median_ms"] <= GOAL_PHOTO_MS},
    ]


def report(result: dict) -> Report:
    """Every figure with its ratio to the yardstick, then each goal and whether it was met."""
    generator = result["generator"]
    title = (f"bench sketch: median of {result['runs']} interleaved runs; {generator['parameters']:,}-parameter "
             f"generator at {generator['image_size']}x{generator['image_size']}, train mode, fast path "
             f"{generator['fast_path_precision']}; filters: {result['filters']}; device {result['device']}")
    table = Table(["what", "input", "median ms", "min ms", "x plain"],
                  [[row["kind"], row["input"], row["median_ms"], row["min_ms"], f"{row['ratio_to_plain']:.2f}"]
                   for row in result["rows"]])
    notes = [f"goal: {goal['goal']}: {goal['value']} -> {'met' if goal['met'] else 'NOT met'}" for goal in result["goals"]]
    return Report(title, [table], notes)
