"""`edges2shoes data fetch official [--out DIR] [--url URL]`: the edges2shoes dataset from the
pix2pix authors' server (or a mirror), unpacked into the layout training and evaluation read."""

from __future__ import annotations

import argparse
from pathlib import Path

from .official import DATASET_URL_ENV, OFFICIAL_DATASET_URL, fetch_official_dataset

SOURCES = ("official",)


def configure_cli(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(run=lambda args: (parser.print_help(), 1)[1])
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    fetch = actions.add_parser(
        "fetch", help="download and unpack a public copy of edges2shoes, then print its folder",
        description="Download the official edges2shoes tarball (about 2.2 GB; an interrupted download resumes), "
                    "check its sha256, unpack it safely and print the dataset folder (train/ and val/).")
    fetch.add_argument("source", choices=SOURCES, help=f"'official': {OFFICIAL_DATASET_URL}")
    fetch.add_argument("--out", type=Path,
                       help="the dataset folder to create (default data/edges2shoes of the checkout, else ~/.cache/edges2shoes/...)")
    fetch.add_argument("--url", help=f"download from this mirror instead (also ${DATASET_URL_ENV})")
    fetch.add_argument("--keep-archive", action="store_true", help="keep edges2shoes.tar.gz beside the folder after unpacking")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars or counts, only the folder")
    fetch.set_defaults(run=_run_fetch)


def _run_fetch(args: argparse.Namespace) -> int:
    root = fetch_official_dataset(args.out, url=args.url, keep_archive=args.keep_archive, progress=not args.quiet)
    print(root)
    return 0
