"""`edges2shoes weights fetch | convert | info | publish`: fetch named weights, convert any known layout
to our safetensors export and/or ONNX, print what a weights file holds, and publish a generator."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from torch import nn

from ..util.errors import ConfigError, WeightsError
from . import exports
from .fetch import CACHE_ENV, OFFICIAL_URL_ENV, fetch_weights, sha256_of
from .load import LoadedWeights, LoadOptions, read_weights
from .official_export import export_official
from .onnx_export import check_onnx, export_onnx
from .publish import CARD_FILE, Target, publish

ONNX_TOLERANCE = 1e-4  # largest difference between onnxruntime's and PyTorch's outputs accepted


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=lambda args: (parser.print_help(), 1)[1])
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")

    fetch = actions.add_parser("fetch", help="download weights into the cache and print their path",
                               description="Download weights (kaggle, pix2pix-official, huggan) into the cache and print their path.")
    fetch.add_argument("source", help="'kaggle', 'pix2pix-official', 'huggan', a published hub:USER/NAME or kaggle-model:OWNER/MODEL/pyTorch/VARIATION, or a file path")
    _add_fetch_options(fetch)
    fetch.add_argument("--url", help=f"download the official file from this mirror (also ${OFFICIAL_URL_ENV})")
    fetch.set_defaults(run=_run_fetch)

    convert = actions.add_parser("convert", help="write any known weights as our safetensors export, the official layout and/or ONNX",
                                 description="Read weights in any known layout; write our safetensors export (or, with --to official, "
                                             "the official pix2pix code's latest_net_G.pth / latest_net_D.pth) and/or an ONNX generator.")
    convert.add_argument("source", help="'kaggle', 'pix2pix-official', 'huggan' or a weights file")
    convert.add_argument("--to", choices=["ours", "official"], default="ours",
                         help="ours: --out is a .safetensors file with the config in its metadata; official: --out is a folder "
                              "for the official code's checkpoints (latest_net_G.pth, and latest_net_D.pth from a run's last.pt "
                              "or epoch files), and the options that rebuild the networks there are printed")
    convert.add_argument("--out", type=Path, help="our export (a .safetensors file) or, with --to official, a folder")
    convert.add_argument("--onnx", type=Path, help="an ONNX generator (eval mode, dynamic batch)")
    convert.add_argument("--image-size", type=int, default=256, help="the ONNX model's image side (default 256)")
    _add_fetch_options(convert)
    _add_layout_options(convert)
    convert.set_defaults(run=_run_convert)

    info = actions.add_parser("info", help="print the layout, parameter count and config found in weights",
                              description="Print the layout, parameter count and config found in a weights file.")
    info.add_argument("source", help="a weights file or save_pretrained folder, 'kaggle', 'pix2pix-official', 'huggan', hub:USER/NAME or kaggle-model:OWNER/MODEL/pyTorch/VARIATION")
    info.add_argument("--discriminator", action="store_true", help="read a discriminator instead of a generator")
    _add_fetch_options(info)
    _add_layout_options(info)
    info.set_defaults(run=_run_info)

    share = actions.add_parser("publish", help="upload a generator you trained to the Hugging Face Hub or Kaggle Models, with a model card",
                               description="Upload a generator as save_pretrained writes it (model.safetensors + config.json + a model "
                                           "card README.md) to the Hugging Face Hub or Kaggle Models; it loads back with "
                                           "UNetGenerator.from_pretrained or --weights hub:USER/NAME / kaggle-model:OWNER/MODEL/pyTorch/VARIATION.")
    share.add_argument("source", metavar="RUN_OR_FILE", help="a run folder (its newest generator_N.pt) or a weights file")
    where = share.add_mutually_exclusive_group(required=True)
    where.add_argument("--hub", metavar="USER/NAME", help="a Hugging Face model repository (created if needed; needs `hf auth login`)")
    where.add_argument("--kaggle-model", metavar="OWNER/MODEL/pyTorch/VARIATION",
                       help="a Kaggle Model variation (created private, a new version if it exists; needs a Kaggle login)")
    share.add_argument("--report", type=Path, help="the evaluation report whose scores go on the card (default: the newest under the run folder that scored this file)")
    share.add_argument("--out", type=Path, help="write the folder to upload here (kept); default: a temporary folder")
    share.add_argument("--dry-run", action="store_true", help="write the folder to --out and show it; upload nothing")
    share.add_argument("--license", default="mit", help="the license on the card (a Hub license id; default mit)")
    share.add_argument("--private", action="store_true", help="Hub: create the repository private")
    share.add_argument("--message", help="commit message / Kaggle Model version notes")
    share.set_defaults(run=_run_publish)


def _add_fetch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, help=f"cache folder (default ${CACHE_ENV}, else weights/ of the checkout)")
    parser.add_argument("--epoch", type=int, default=9, help="which generator_N.pt of the Kaggle set (default 9, the last)")


def _add_layout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaky-slope", type=float, help="TF-layout state dicts: LeakyReLU slope (default 0.3; also for --discriminator)")
    parser.add_argument("--no-dropout", dest="dropout", action="store_const", const=False, default=None,
                        help="build the generator without dropout (state dicts cannot say)")
    parser.add_argument("--norm", choices=["batch", "instance", "none"], help="official layout without norm tensors")
    parser.add_argument("--skip-first", action="store_true",
                        help="TF layout: the notebook concatenated [skip, upsampled] (the tutorial: [upsampled, skip])")


def _load_options(args: argparse.Namespace) -> LoadOptions:
    """The layout and fetch options given on the command line (the discriminator reader uses only
    the slope and the fetch options)."""
    return LoadOptions(leaky_slope=args.leaky_slope, dropout=args.dropout, norm=args.norm, skip_first=args.skip_first,
                       cache_dir=args.cache_dir, epoch=args.epoch)


def _run_fetch(args: argparse.Namespace) -> int:
    print(fetch_weights(args.source, cache_dir=args.cache_dir, epoch=args.epoch, url=args.url))
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    if args.to == "official":
        if args.out is None or args.onnx is not None:
            raise ConfigError("--to official writes the official checkpoints into a folder: give --out DIR (and no --onnx)")
        return _run_convert_official(args)
    if args.out is None and args.onnx is None:
        raise ConfigError("say what to write: --out G.safetensors and/or --onnx G.onnx")
    loaded = read_weights(args.source, "generator", _load_options(args))
    _print_notes(loaded)
    if args.out is not None:
        if any(isinstance(m, nn.BatchNorm2d) and m.eps != 1e-5 for m in loaded.model.modules()):
            print("warning: the export cannot carry the file's batch-norm epsilon; it will load with 1e-5", file=sys.stderr)
        exports.export_generator(loaded.model, args.out, metadata={"converted_from": str(loaded.path), "source_layout": loaded.layout})
        print(f"wrote {args.out} ({loaded.layout}, {loaded.parameters:,} parameters)")
    if args.onnx is not None:
        export_onnx(loaded.model, args.onnx, image_size=args.image_size)
        try:
            difference = check_onnx(loaded.model, args.onnx, image_size=args.image_size)
        except ImportError:
            print(f"wrote {args.onnx} (install onnxruntime to check it)")
            return 0
        if difference > ONNX_TOLERANCE:
            raise WeightsError(f"{args.onnx}: onnxruntime's output differs from PyTorch's by {difference:.2e}")
        print(f"wrote {args.onnx}: onnxruntime's output differs from PyTorch's by at most {difference:.2e}")
    return 0


def _run_convert_official(args: argparse.Namespace) -> int:
    written = export_official(args.source, args.out, _load_options(args))
    for note in written.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in (written.generator, written.discriminator):
        if path is not None:
            print(f"wrote {path}")
    print(f"the official code builds these networks with: {' '.join(written.options)}")
    print(f"copy {args.out} to checkpoints/NAME/ of pytorch-CycleGAN-and-pix2pix and run:\n  {written.test_command()}")
    return 0


def _print_notes(loaded: LoadedWeights) -> None:
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)


def _run_info(args: argparse.Namespace) -> int:
    loaded = read_weights(args.source, "discriminator" if args.discriminator else "generator", _load_options(args))
    print(f"file:       {loaded.path}")
    print(f"sha256:     {sha256_of(loaded.path)}")
    print(f"container:  {loaded.container}")
    print(f"layout:     {loaded.layout}")
    print(f"parameters: {loaded.parameters:,}")
    print(f"config:     {json.dumps(dataclasses.asdict(loaded.config))}")
    for note in loaded.notes:
        print(f"note:       {note}")
    return 0


def _run_publish(args: argparse.Namespace) -> int:
    target = Target("hub", args.hub) if args.hub else Target("kaggle-model", args.kaggle_model)
    staged = publish(args.source, target, out=args.out, report=args.report, dry_run=args.dry_run,
                     license=args.license, private=args.private, message=args.message)
    if args.dry_run:
        print(f"dry run: nothing uploaded; {target.url} would receive {staged.folder}:")
        print(staged.listing())
        print(f"\n{staged.folder / CARD_FILE}:\n")
        print(staged.card)
    return 0


__all__ = ["configure_cli"]
