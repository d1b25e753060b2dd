"""Our checkpoint formats: safe .pt reading and writing, per-epoch weights, and generator exports.

Three kinds of file, kept apart like NVlabs' EDM keeps training state apart from network snapshots:

- a *training checkpoint* (last.pt, tagged `TRAINING_FORMAT`): the networks, both optimisers, the
  GradScaler, every RNG state, the run's position and config. Its layout is defined, written and
  read in `training.checkpointing`; this stage reads only the networks' weights from it (`load`).
- *epoch files* `generator_{epoch}.pt` / `discriminator_{epoch}.pt` (epochs count from 0): the
  names of the original edges2shoes notebook, holding a state dict plus the model config.
- a *generator export* (safetensors, config JSON in its metadata): what inference loads; see
  `exports`.

Every `.pt` file holds only tensors and plain containers, so it loads with
`torch.load(..., weights_only=True)`; we never load any other way, so opening a file can never
execute code from it. Every write is atomic (`util.atomic`): a crash or a full disk
during a save leaves the previous file intact.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..util.version import __version__
from ..util.atomic import atomic_open
from ..util.errors import CheckpointError
from .integrity import check_finite_tree, reason, verify_zip_checksums

TRAINING_FORMAT = "edges2shoes/training-checkpoint/v1"  # last.pt (training.checkpointing)
GENERATOR_EPOCH_FORMAT = "edges2shoes/generator-epoch/v1"
DISCRIMINATOR_EPOCH_FORMAT = "edges2shoes/discriminator-epoch/v1"

# --------------------------------------------------------------------------------------------------
# Reading and writing .pt files safely.


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write `state` with torch.save, atomically (temporary file, flush, fsync, rename).

    The state must consist of tensors and plain containers (dict, list, tuple, str, int, float,
    bool, None) so that it loads with weights_only=True; anything else is refused before a byte is
    written, rather than producing a file we could not open again.
    """
    path = Path(path)
    _check_plain(state, "state")
    try:
        with atomic_open(path, "wb") as handle:
            torch.save(dict(state), handle)
    except (OSError, RuntimeError) as exc:
        # torch.save's zip writer reports a failed write (a full disk, even a Ctrl-C) as a
        # RuntimeError from its own clean-up, with the real exception as context: re-raise an
        # interrupt as itself, and name the OSError, the one a user can fix.
        chain = _exception_chain(exc)
        for seen in chain:
            if not isinstance(seen, Exception):
                raise seen  # KeyboardInterrupt / SystemExit: never turn them into a CheckpointError
        cause = next((seen for seen in chain if isinstance(seen, OSError)), exc)
        raise CheckpointError(
            f"{path}: could not write the checkpoint ({cause}); any previous file is unchanged"
        ) from exc
    return path


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a .pt file with torch.load(weights_only=True): tensors and plain containers only. The
    training loop's reader of its own checkpoints (to resume); a network from any file comes from
    `load.load_generator` or `load.load_discriminator`.

    A file whose unpickling would import or call anything else (a pickled nn.Module, a malicious
    payload) is refused with a CheckpointError naming the file; its code never runs. Missing,
    truncated or corrupt files (checked against the archive's CRC-32s, which torch ignores) and
    files holding NaN or infinite values also raise a CheckpointError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file")
    verify_zip_checksums(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it then reads fine
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(_unpickling_message(path, exc)) from exc
    except Exception as exc:  # damaged bytes make torch's parsers raise anything (IndexError, OverflowError, ...)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt? {reason(exc)})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a checkpoint dictionary")
    check_finite_tree(state, str(path))
    return state


def _unpickling_message(path: Path, exc: Exception) -> str:
    """Name what the file wanted to import, if torch told us; never suggest weights_only=False."""
    names = re.findall(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
    if not names:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # a legacy or corrupt file: we only wanted a better message
            names = []
    if names:
        return (
            f"{path}: refused to load: unpickling it would run code ({', '.join(sorted(set(names)))}). "
            "Checkpoints are loaded with weights_only=True and may hold only tensors and plain containers; "
            "if you trust this file, convert it to a state dict with the code that made it"
        )
    last = str(exc).strip().split("\n")[-1].strip()[:200] or type(exc).__name__
    return f"{path}: refused to load: not a plain-tensor checkpoint (corrupt, or it needs code to unpickle: {last})"


_PLAIN_SCALARS = (str, int, float, bool, type(None), torch.dtype, torch.device, torch.Size)


def _check_plain(value: Any, where: str) -> None:
    """Raise a CheckpointError naming the first value weights_only=True could not load.

    Types are checked exactly: subclasses (a str-valued enum, torch's TorchVersion, a namedtuple)
    pickle by class name and would be refused on load."""
    if isinstance(value, torch.Tensor) or type(value) in _PLAIN_SCALARS:
        return
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise CheckpointError(f"cannot save {where}: key {key!r} is a {type(key).__name__}, not str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    raise CheckpointError(
        f"cannot save {where}: a {type(value).__name__} would not load with weights_only=True "
        "(store tensors, numbers, strings, lists and dicts only)"
    )


def plain_config(value: Any, json_ready: bool = False) -> Any:
    """Turn a run config into plain data: dataclasses -> dicts, paths -> strings, numpy -> Python.

    `json_ready`: tuples become lists too, as they read back from JSON, so a saved config and the
    current one compare equal."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain_config(dataclasses.asdict(value), json_ready)
    if isinstance(value, Mapping):
        return {plain_config(k) if isinstance(k, (str, int)) else str(k): plain_config(v, json_ready) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain_config(v, json_ready) for v in value]
        return tuple(items) if type(value) is tuple and not json_ready else items
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if type(value) in (bool, int, float, str):  # already plain (a bool must not become an int below)
        return value
    for plain in (bool, int, float, str):  # enums and other subclasses -> the plain value
        if isinstance(value, plain):
            return plain(getattr(value, "value", value))
    return value


# --------------------------------------------------------------------------------------------------
# Networks as our files store them.


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def network_config(model: nn.Module) -> dict:
    """A network's architecture config as a dict, stored beside its weights ({} if it has none)."""
    config = getattr(unwrap_model(model), "config", None)
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}


# --------------------------------------------------------------------------------------------------
# Per-epoch weight files (the original notebook's names).


def _cpu_state_dict(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in unwrap_model(model).state_dict().items()}


def save_epoch_weights(
    run_dir: str | os.PathLike, epoch: int, generator: nn.Module, discriminator: nn.Module
) -> tuple[Path, Path]:
    """Write `generator_{epoch}.pt` and `discriminator_{epoch}.pt` into `run_dir` (epochs from 0).

    Each holds {"format", "version", "epoch", "config", "state_dict"} with CPU tensors, so
    `torch.load(path, weights_only=True)` opens it anywhere; rebuild the generator with
    `UNetGenerator(GeneratorConfig(**obj["config"]))`.
    """
    run_dir = Path(run_dir)
    paths = []
    for name, model, fmt in (
        ("generator", generator, GENERATOR_EPOCH_FORMAT),
        ("discriminator", discriminator, DISCRIMINATOR_EPOCH_FORMAT),
    ):
        state = {
            "format": fmt,
            "version": __version__,
            "epoch": int(epoch),
            "config": network_config(model),
            "state_dict": _cpu_state_dict(model),
        }
        paths.append(save_checkpoint(run_dir / f"{name}_{epoch}.pt", state))
    return paths[0], paths[1]


__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "save_epoch_weights",
    "plain_config",
    "unwrap_model",
    "network_config",
    "TRAINING_FORMAT",
]
