"""`python -m edges2shoes_utils generate SKETCH... --weights SOURCE --out DIR`: sketches to files.

Loads the generator once (`Sketch2Shoe.from_weights`), prepares every input, generates in batches
and writes, per input, the photo and a side-by-side picture (the sketch as the model saw it | the
photo). An input that cannot be used is reported and skipped, so one bad file does not lose the
others' results.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from ..util.errors import SketchError
from ..util.images import image_grid, save_image
from .fastpath import MODES
from .image_input import SUPPORTED_FORMATS
from .sketch2shoe import DEFAULT_MODE, Sketch2Shoe, Translation


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Turn sketches or edge maps into shoe photos. For each input writes NAME_shoe.png (the photo) and "
        "NAME_side_by_side.png (the sketch as the model saw it | the photo) into --out. Inputs that "
        "cannot be used are reported and skipped; the exit status is then 2."
    )
    parser.add_argument("sketches", nargs="+", metavar="SKETCH", type=Path,
                        help=f"image files: {SUPPORTED_FORMATS}")
    parser.add_argument("--weights", required=True, metavar="SOURCE",
                        help="a weights file (any format `weights` reads), 'kaggle', 'pix2pix-official' or 'huggan'")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the results")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE,
                        help="test-time mode: 'train' (paper: per-image batch statistics and dropout; "
                             "the default) or 'eval' (running statistics, deterministic)")
    parser.add_argument("--seed", type=int, default=None,
                        help="dropout seed for --mode train: the same sketch and seed give the same photo")
    parser.add_argument("--no-prepare", dest="prepare", action="store_false",
                        help="skip the sketch clean-up (inputs already look like the dataset's edge maps); "
                             "they are only resized")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default 8)")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if present), 'cpu' or 'cuda'")
    parser.add_argument("--plain", dest="fast", action="store_false",
                        help="run the generator's own fp32 layers instead of the fast path")
    parser.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    model = Sketch2Shoe.from_weights(args.weights, device=args.device, mode=args.mode, seed=args.seed,
                                     fast=args.fast)
    print(f"generating with {model.describe()}")
    written, failed = generate_files(model, args.sketches, args.out, prepare=args.prepare,
                                     batch_size=args.batch_size)
    for source, photo_path, pair_path in written:
        print(f"{source} -> {photo_path}  (side by side: {pair_path})")
    for message in failed:
        print(f"skipped {message}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(args.sketches)} input(s) could not be used", file=sys.stderr)
        return 2
    return 0


def generate_files(
    model: Sketch2Shoe,
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    prepare: bool = True,
    batch_size: int = 8,
) -> tuple[list[tuple[Path, Path, Path]], list[str]]:
    """For each input file write OUT/NAME_shoe.png (the photo) and OUT/NAME_side_by_side.png (model
    input | photo), never over an input or another output. Files that cannot be used are skipped,
    not fatal: returns ([(input, photo, pair)], ["file: reason", ...])."""
    out = Path(out_dir)
    prepared: list[Translation] = []
    failed: list[str] = []
    for path in paths:
        try:
            prepared.append(model.prepare(path, prepare=prepare, name=str(path)))
        except SketchError as error:
            failed.append(str(error))
    done = model.translate(prepared, batch_size=batch_size)
    written = []
    targets = _output_paths([Path(item.label) for item in done], out, avoid=[Path(p) for p in paths])
    for item, (photo_target, pair_target) in zip(done, targets):
        photo_path = save_image(item.shoe, photo_target)
        pair = image_grid({"Sketch (model input)": [item.preview], "Generated": [item.shoe]}, cell=model.image_size)
        pair_path = save_image(pair, pair_target)
        written.append((Path(item.label), photo_path, pair_path))
    return written, failed


OUTPUT_SUFFIXES = ("_shoe.png", "_side_by_side.png")


def _output_paths(inputs: Sequence[Path], out: Path, avoid: Sequence[Path] = ()) -> list[tuple[Path, Path]]:
    """(photo, side-by-side) paths per input: the input's stem plus OUTPUT_SUFFIXES, numbered _2,
    _3, ... when a name is already taken by another output or by any input file."""
    taken = {path.resolve() for path in avoid}
    result = []
    for path in inputs:
        stem = path.stem or "sketch"
        base, count = stem, 1
        while any((out / f"{base}{suffix}").resolve() in taken for suffix in OUTPUT_SUFFIXES):
            count += 1
            base = f"{stem}_{count}"
        pair = tuple(out / f"{base}{suffix}" for suffix in OUTPUT_SUFFIXES)
        taken.update(p.resolve() for p in pair)
        result.append(pair)
    return result


__all__ = ["OUTPUT_SUFFIXES", "configure_cli", "generate_files", "run_generate"]
