"""The command line: one sub-command per job, each defined beside the code it runs.

A module that offers a command defines `configure_cli(parser)`, which adds its arguments and sets
`parser.set_defaults(run=function)`; `function(args)` returns an exit code. Errors the user can fix
(`Edges2ShoesError`) are printed as one clear message with exit code 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Sequence

from ..util.version import __version__
from ..util.errors import Edges2ShoesError
from .. import bench
from ..weights import command_line as weights_cli
from ..data import command_line as data_cli, synthetic
from ..evaluation import command_line as evaluation_cli
from ..inference import command_line as inference_cli
from ..training import command_line as training_command
from . import demo, web_app, web_command

# command name -> (module that defines configure_cli, one-line help)
COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "make-synthetic": (synthetic, "write a synthetic mini edges2shoes set in the real layout"),
    "data": (data_cli, "fetch the edges2shoes dataset from its official source (or a mirror)"),
    "train": (training_command, "train pix2pix (single process, or DDP under torchrun)"),
    "evaluate": (evaluation_cli, "score one or more generators on a val set and write a report"),
    "generate": (inference_cli, "turn sketches or edge maps into shoe photos"),
    "weights": (weights_cli, "fetch, convert, inspect and publish generator weights"),
    "bench": (bench, "measure speed: data loading, training step, inference"),
    "demo": (demo, "offline demo: synthetic data -> train -> evaluate -> generate"),
    "app": (web_app, "serve the drawing app: draw a shoe in the browser, see it as you draw"),
    "web": (web_command, "build the static draw-a-shoe page that runs the generator in the browser; preview it; time it"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edges2shoes",
        description="pix2pix for shoes: train, evaluate, and turn edge maps or hand-drawn sketches into shoe photos.",
    )
    parser.add_argument("--version", action="version", version=f"edges2shoes {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure_cli(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for what records it (bench's JSON)
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except Edges2ShoesError as error:
        print(f"edges2shoes {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edges2shoes {args.command}: interrupted", file=sys.stderr)
        return 130
