"""The `train` command: every TrainConfig field is a flag.

    python -m edges2shoes_utils train --data DIR --out runs/shoes --epochs 15 --batch-size 4
    torchrun --nproc_per_node 2 -m edges2shoes_utils train --data DIR --out runs/shoes   # T4 x2
    python -m edges2shoes_utils train --resume runs/shoes                               # continue
    python -m edges2shoes_utils train --data DIR --out runs/more --init kaggle          # from published weights

A flag's name, type, choices and help come from the field (`lambda_l1` -> `--lambda-l1`; booleans
get a `--no-` form). With `--resume`, the flags given override the run's saved config. With `--init*`,
architecture flags given must match the weights (`initial_weights`).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from .config import AMP_WORDS, OLD_SPELLINGS, TrainConfig
from .distributed import dist_info_from_env
from .initial_weights import ADOPTED_FIELDS, check_explicit_architecture
from .loop import train


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; a flag not given keeps the default (or the resumed run's value)."""
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        kind = hints[spec.name]
        help_text = spec.metadata.get("help", "")
        default = spec.default
        shown = f" (default: {default})" if default is not None else ""
        options: dict[str, Any] = {"dest": spec.name, "default": argparse.SUPPRESS, "help": help_text + shown}
        if "choices" in spec.metadata:
            options["choices"] = spec.metadata["choices"]
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
            options["help"] = help_text + f" (default: {'on' if default else 'off'})"
        elif typing.get_origin(kind) is tuple:
            options.update(nargs=len(typing.get_args(kind)), type=typing.get_args(kind)[0], metavar="X")
        else:
            base = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
            options["type"] = base[0]
            if "choices" not in options:
                options["metavar"] = spec.metadata.get("metavar", spec.name.upper())
        parser.add_argument(flag, **options)
    # The flags of earlier versions, kept out of --help: TrainConfig reads them into --precision.
    parser.add_argument("--amp", dest="amp", choices=AMP_WORDS, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--cpu-bf16", dest="cpu_bf16", action=argparse.BooleanOptionalAction,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(run=run_cli)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Flags given on the command line over the defaults, or over the saved config with --resume."""
    names = {f.name for f in dataclasses.fields(TrainConfig)} | set(OLD_SPELLINGS)
    given = {k: v for k, v in vars(args).items() if k in names}
    if "betas" in given:
        given["betas"] = tuple(given["betas"])
    if given.get("resume"):
        return TrainConfig.from_run(given["resume"], **{k: v for k, v in given.items() if k != "resume"})
    return TrainConfig(**given)


def run_cli(args: argparse.Namespace) -> int:
    """Train as the flags say; only rank 0 reports the end."""
    config = config_from_args(args)
    check_explicit_architecture(config, [name for name in ADOPTED_FIELDS if name in vars(args)])
    result = train(config)
    if result.finished and dist_info_from_env().is_main:
        print(f"done: {result.epochs_completed} epoch(s), {result.steps} steps; weights and logs in {result.run_dir}")
    return 0


__all__ = ["configure_cli", "config_from_args", "run_cli"]
