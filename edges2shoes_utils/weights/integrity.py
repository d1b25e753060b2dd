"""Is a weights file intact, and are its tensors usable? Checked before any network is built from it.

A damaged weights file must never turn into a picture. Three checks stand between the two:

- checksums. A torch.save archive is a zip holding a CRC-32 per record, which torch itself does
  not verify: a flipped bit in the tensor data loads silently, and a flipped exponent bit turns a
  weight of 0.02 into 1e36, finite but ruinous. We verify the CRCs first. Our safetensors exports
  carry a sha256 of their tensor data in the metadata (`DIGEST_KEY`); other safetensors files have
  no checksum, so only the value checks below protect them.
- tensor values. Weights must be floating point (an integer, boolean or complex tensor is not a
  network's weight, whatever its shape; any float precision is) and finite (NaN or infinity means a diverged run or a damaged
  file, and spreads to every output pixel).
- saved configs. Each field must have its type (a count that is a non-negative int, a finite number,
  a string, a bool) before a network is built from it.

Parsers fed damaged bytes raise whatever their code happens to hit (IndexError, OverflowError,
struct.error, ...); `reason` turns any of them into the one line a WeightsError carries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from ..util.errors import WeightsError

DIGEST_KEY = "weights_sha256"  # our exports' metadata: sha256 (hex) of the tensor data after the header
_CHUNK = 1 << 24


def reason(error: BaseException) -> str:
    """The first non-empty line of an error (at most 200 characters), or its type's name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


# --------------------------------------------------------------------------------------------------
# Checksums.


def refuse_empty(path: str | os.PathLike) -> None:
    """A zero-byte file gets its own message: it is what an interrupted download or copy leaves."""
    if os.path.getsize(path) == 0:
        raise WeightsError(f"{path}: the file is empty (0 bytes): an interrupted download or copy? Fetch it again")


def is_torch_zip(path: str | os.PathLike) -> bool:
    """Whether torch.load reads `path` as a zip archive: it starts with a zip local header (torch's own
    test; `zipfile.is_zipfile` looks for an end record anywhere in the last 64 KiB, which the raw
    tensor bytes of a legacy file can happen to contain)."""
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def verify_zip_checksums(path: str | os.PathLike) -> None:
    """Raise a WeightsError if `path` is empty, or a zip archive (a torch.save file) whose records do
    not match their CRC-32. Files that are not zip archives are left to their reader. Records saved without a
    checksum (CRC 0, torch's `compute_crc32=False`) are not checked."""
    path = Path(path)
    try:
        refuse_empty(path)
        if not is_torch_zip(path):
            return
    except OSError as error:
        raise WeightsError(f"{path}: cannot read it ({reason(error)})") from None
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.CRC == 0 and info.file_size:
                    continue
                with archive.open(info) as record:
                    while record.read(_CHUNK):
                        pass
    except zipfile.BadZipFile as error:
        if "CRC" in str(error):
            raise WeightsError(f"{path}: damaged: {error} (the file changed after it was saved; "
                               "download or copy it again)") from None
        raise WeightsError(f"{path}: not a readable PyTorch file (a truncated or damaged zip archive: {reason(error)})") from None
    except (OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as error:
        raise WeightsError(f"{path}: not a readable PyTorch file (a truncated or damaged zip archive: {reason(error)})") from None


def safetensors_digest(data: bytes | memoryview) -> str:
    """What `DIGEST_KEY` holds: the sha256 of a safetensors file's tensor data (after the header)."""
    header_length = int.from_bytes(bytes(data[:8]), "little")
    return hashlib.sha256(memoryview(data)[8 + header_length:]).hexdigest()


def verify_safetensors_digest(path: str | os.PathLike, metadata: Mapping[str, str]) -> None:
    """Raise a WeightsError if the file's metadata records a digest its tensor data does not match."""
    recorded = metadata.get(DIGEST_KEY)
    if recorded is None:
        return  # an export from before digests, or a file from elsewhere
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(8 + int.from_bytes(handle.read(8), "little"))
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    if digest.hexdigest() != recorded:
        raise WeightsError(f"{path}: damaged: its tensor data does not match the sha256 recorded in it "
                           "(the file changed after it was saved; export or copy it again)")


# --------------------------------------------------------------------------------------------------
# Tensor values.


def check_weight(tensor: torch.Tensor, name: str, source: str) -> None:
    """Raise a WeightsError naming `name` unless the tensor can fill a floating-point weight or
    buffer: floating point (any precision) and finite."""
    if not tensor.is_floating_point():
        raise WeightsError(f"{source}: tensor '{name}' holds {str(tensor.dtype).replace('torch.', '')} values, "
                           "not floating-point ones: not usable weights")
    if not bool(torch.isfinite(tensor).all()):
        raise WeightsError(f"{source}: tensor '{name}' holds NaN or infinite values (a run that diverged, or "
                           "a damaged file): refusing to build a network from it")


def check_finite_tree(obj: Any, source: str, where: str = "") -> None:
    """`check_weight` on every floating tensor in nested dicts, lists and tuples (a checkpoint)."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            raise WeightsError(f"{source}: {where or 'a tensor'} holds NaN or infinite values (a run that "
                               "diverged, or a damaged file)")
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            check_finite_tree(value, source, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            check_finite_tree(value, source, f"{where}[{index}]")


# --------------------------------------------------------------------------------------------------
# Saved configs.


def check_config_values(config: Any, source: str) -> None:
    """Raise a WeightsError unless every field of a config dataclass has its default's type: counts are
    non-negative ints, numbers finite, strings strings, switches bools (the network's own checks then
    judge the values)."""
    for item in dataclasses.fields(config):
        value, default = getattr(config, item.name), item.default
        if default is None or default is dataclasses.MISSING:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise WeightsError(f"{source}: its saved config has {item.name}={value!r}, which no network can have")


__all__ = [
    "DIGEST_KEY",
    "reason",
    "refuse_empty",
    "is_torch_zip",
    "verify_zip_checksums",
    "safetensors_digest",
    "verify_safetensors_digest",
    "check_weight",
    "check_finite_tree",
    "check_config_values",
]
