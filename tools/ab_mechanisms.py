"""Does each speed mechanism of the sketch clean-up and the CPU fast path earn its place?

Each mechanism is something that exists only for speed and has a simpler alternative giving the
same output. For each one this times the package as it is (A, with the mechanism) against the same
call with the simple alternative swapped in (B), interleaved A/B round by round (`util.timing`),
and reports the median over rounds of the per-round ratio A/B: below 1 the mechanism saves time.
A mechanism is kept where it saves at least 5% (ratio <= 0.95) on its own input: for the clean-up,
the `bench sketch` input it was written for (the live 512x512 canvas, or the bundled phone photo of
paper for the paper statistics); for the fast path, the paper-size generator at 256x256, batch 1, in the mode
the web app runs (train) or the mode the mechanism serves. A and B must give the same output: the
same 8-bit pixels on every `bench sketch` input for the clean-up, PSNR >= `bench infer`'s goal for
the fast path (bf16 changes the rounding).

    PYTHONPATH=. nice -n -5 python tools/ab_mechanisms.py --rounds 20 --json ab.json [--threads N] [--only NAME ...]

It prints a markdown table for docs/benchmarks.md. Run it on a quiet machine: under load, two
torch threads make every extra parallel region wait for a descheduled thread, and the fast path's
ratios then measure the load more than the mechanism.

The simple alternatives live here, not in the package: a mechanism that loses is removed from the
package, and its row in docs/benchmarks.md names the commit it was measured at.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import statistics
import subprocess
from typing import Callable, Iterator
from unittest import mock

import numpy as np
import torch
from PIL import Image
from torch import nn

from edges2shoes_utils.bench.figures import load_average, machine, machine_line
from edges2shoes_utils.bench.infer import GOAL_PSNR, calibrated_random_generator, psnr
from edges2shoes_utils.bench.infer import sketch_like_input
from edges2shoes_utils.inference import fastpath, filters, prepare_sketch, sample_sketches, sketch, thinning
from edges2shoes_utils.inference.drawings import canvas_drawing, photo_of_drawing
from edges2shoes_utils.nets import GeneratorConfig
from edges2shoes_utils.util.atomic import atomic_write_text
from edges2shoes_utils.util.tables import Table
from edges2shoes_utils.util.timing import interleaved_times

KEEP_AT_MOST = 0.95  # median ratio A/B: a mechanism must save at least 5%
CPU = torch.device("cpu")

# --------------------------------------------------------------------------------------------------
# The clean-up: each simple alternative, swapped in by patching the package's name for the piece.


def _numpy_level_and_spread(values: np.ndarray) -> tuple[float, float]:
    sample = sketch._sample(values)
    level = float(np.median(sample))
    return level, 1.4826 * float(np.median(np.abs(sample - np.float32(level))))


def _plain_drop_small_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    import cv2

    labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[1]
    keep = np.bincount(labels.ravel()) >= min_area
    keep[0] = False  # the paper
    return keep[labels]


def _whole_canvas_mask(ink: np.ndarray, box: thinning.Box, size: int) -> np.ndarray:
    n = thinning._SUPERSAMPLE * size
    left, top, right, bottom = box
    reach = max(1.0, (right - left) / n) + 1.0
    sy, sx = int(np.floor(top - reach)), int(np.floor(left - reach))
    region = thinning._crop(ink, sy, int(np.ceil(bottom + reach)), sx, int(np.ceil(right + reach)))
    inside = (left - sx, top - sy, right - sx, bottom - sy)
    values = Image.fromarray(region, "F").resize((n, n), Image.Resampling.BILINEAR, box=inside)
    return np.asarray(values, dtype=np.float32) > 0.3


CANVAS, PAPER = "canvas 512x512", "loafer_paper_photo.jpg"

# name -> (what it does, its input: the `bench sketch` input it was written for, the patches that
# swap in the simple alternative)
CLEAN_UP: dict[str, tuple[str, str, list[tuple[object, str, object]]]] = {
    "opencv filters": ("OpenCV instead of scipy.ndimage for the filters", CANVAS, [(filters, "cv2", None)]),
    "median by one sort": ("np.sort and the middle instead of np.median", PAPER,
                           [(sketch, "_median", lambda values: float(np.median(values)))]),
    "bisected median absolute deviation": ("one sort and a bisection instead of two np.median calls", PAPER,
                                           [(sketch, "_level_and_spread", _numpy_level_and_spread)]),
    "components counted on ink only": ("bincount of the ink's labels, the mask returned when all stay", CANVAS,
                                       [(sketch, "drop_small_components", _plain_drop_small_components)]),
    "canvas mask near the ink only": ("the thinning canvas resized only where the ink reaches", CANVAS,
                                      [(thinning, "_canvas_mask", _whole_canvas_mask)]),
    "skeletonize the bounding box only": ("skeletonize the mask's bounding box, not the canvas", CANVAS,
                                          [(thinning, "_skeletonize", thinning.skeletonize)]),
}


@contextlib.contextmanager
def _patched(patches: list[tuple[object, str, object]]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for owner, name, value in patches:
            stack.enter_context(mock.patch.object(owner, name, value))
        yield


def sketch_inputs() -> dict[str, object]:
    """`bench sketch`'s inputs: the 512 x 512 canvas, the bundled samples, the 12-megapixel photo."""
    inputs: dict[str, object] = {"canvas 512x512": canvas_drawing(512, seed=0)}
    inputs.update({path.name: path for path in sample_sketches()})
    inputs["photo 4000x3000"] = photo_of_drawing(4000, 3000, seed=0)
    return inputs


def clean_up_rows(names: list[str], rounds: int, warmup: int) -> list[dict]:
    if not names:
        return []
    rows = []
    inputs = sketch_inputs()
    with_outputs = {label: prepare_sketch(image)[0] for label, image in inputs.items()}
    for name in names:
        what, label, patches = CLEAN_UP[name]
        image = inputs[label]

        def with_it(image=image) -> torch.Tensor:
            return prepare_sketch(image)[0]

        def without(image=image, patches=patches) -> torch.Tensor:
            with _patched(patches):
                return prepare_sketch(image)[0]

        same = all(torch.equal(with_outputs[other], without(inputs[other])) for other in inputs)
        timing = _paired(with_it, without, rounds, warmup)
        rows.append({"area": "clean-up", "mechanism": name, "what": what, "input": label, **timing,
                     "same_output": same, "keep": timing["median_ratio"] <= KEEP_AT_MOST})
        print(f"  {name:<45} {label:<24} A/B {timing['median_ratio']:.3f} same on every input: {same}", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# The fast path: the package's runner against one assembled with a mechanism left out.


def without_packing(generator: nn.Module, like: fastpath.Runner) -> fastpath.Runner:
    """`like` rebuilt as if torch had no oneDNN packed convolutions: the same layers and dtype, each
    convolution an `F.conv2d` call."""
    with mock.patch.object(fastpath, "_mkldnn_packing_available", lambda: False):
        return fastpath.build_runner(generator, mode=like.mode, precision=like.precision)


# name -> (what it does, mode, the runner without it)
FAST_PATH: dict[str, tuple[str, str, Callable[[nn.Module, fastpath.Runner], fastpath.Runner]]] = {
    "bf16 where the CPU has it": ("bf16 compute instead of fp32", "train",
                                  lambda generator, a: fastpath.build_runner(generator, mode=a.mode, precision="fp32")),
    "weights packed per input shape": ("oneDNN pointwise ops on pre-packed weights instead of F.conv2d", "train",
                                       without_packing),
}


def fast_path_rows(names: list[str], rounds: int, warmup: int) -> list[dict]:
    if not names:
        return []
    generator = calibrated_random_generator(GeneratorConfig(), seed=0)
    x, seeds = sketch_like_input(256), [0]
    built = {mode: fastpath.choose_runner(generator, mode=mode) for mode in {FAST_PATH[name][1] for name in names}}
    rows = []
    for name in names:
        what, mode, without = FAST_PATH[name]
        a = built[mode]
        b = without(generator, a)
        quality = psnr(b.run(x, seeds=seeds), a.run(x, seeds=seeds))
        timing = _paired(lambda: a.run(x, seeds=seeds), lambda: b.run(x, seeds=seeds), rounds, warmup)
        rows.append({"area": "fast path", "mechanism": name, "what": what,
                     "input": f"paper-size generator, 256x256, batch 1, {mode} mode", **timing,
                     "a": a.precision, "b": b.precision,
                     "psnr_db": round(quality, 1) if np.isfinite(quality) else "inf",
                     "same_output": not np.isfinite(quality) or quality >= GOAL_PSNR,
                     "keep": timing["median_ratio"] <= KEEP_AT_MOST})
        print(f"  {name:<45} A/B {timing['median_ratio']:.3f} PSNR {rows[-1]['psnr_db']}", flush=True)
    return rows


# --------------------------------------------------------------------------------------------------


def _paired(with_it: Callable[[], object], without: Callable[[], object], rounds: int, warmup: int) -> dict:
    times = interleaved_times({"A": with_it, "B": without}, warmup, rounds, CPU)
    ratios = [a / b for a, b in zip(times["A"], times["B"])]
    quartiles = statistics.quantiles(ratios, n=4)
    return {"rounds": rounds, "median_ratio": round(statistics.median(ratios), 4),
            "ratio_quartiles": [round(quartiles[0], 4), round(quartiles[2], 4)],
            "a_ms": round(statistics.median(times["A"]), 2), "b_ms": round(statistics.median(times["B"]), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="interleaved A/B rounds per figure (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="these mechanisms only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON (atomically)")
    args = parser.parse_args(argv)
    if args.rounds < 4:
        parser.error("--rounds must be at least 4 (quartiles of the ratios)")
    fast_names = list(FAST_PATH)
    wanted = set(args.only or [*CLEAN_UP, *fast_names])
    unknown = wanted - set(CLEAN_UP) - set(fast_names)
    if unknown:
        parser.error(f"unknown mechanisms: {sorted(unknown)}; known: {[*CLEAN_UP, *fast_names]}")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = load_average()
    rows = clean_up_rows([n for n in CLEAN_UP if n in wanted], args.rounds, args.warmup)
    rows += fast_path_rows([n for n in fast_names if n in wanted], args.rounds, args.warmup)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": "tools/ab_mechanisms.py", "rounds": args.rounds, **machine(), "filters": filters.backend(),
              "date": datetime.date.today().isoformat(), "commit": commit, "ratio": "A/B (with / without)",
              "keep_at_most": KEEP_AT_MOST, "load_average_before": load_before, "load_average_after": load_average(),
              "rows": rows}
    print(f"\n{machine_line(result)}; {result['date']}, commit {commit}\n")
    table = Table(["area", "mechanism", "input", "rounds", "A/B (with / without), median", "quartiles", "same output",
                   "decision"])
    for row in rows:
        low, high = row["ratio_quartiles"]
        same = "yes" if row["same_output"] else "NO"
        if "psnr_db" in row:
            same += f" (PSNR {row['psnr_db']} dB)"
        table.rows.append([row["area"], row["mechanism"], row["input"], row["rounds"], f"{row['median_ratio']:.3f}",
                           f"{low:.2f}-{high:.2f}", same, "keep" if row["keep"] else "remove"])
    print(table.markdown())
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"rows written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
