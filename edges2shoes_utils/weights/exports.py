"""Generator exports: safetensors files whose metadata carries the GeneratorConfig, the package
version and the sha256 of the tensor data, so an export rebuilds its network without our code's
defaults and a damaged file is refused. What inference, publishing and `weights convert` write;
`load.load_generator` reads them back.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping

from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..nets import GeneratorConfig
from ..util.atomic import atomic_open
from ..util.errors import CheckpointError
from ..util.version import __version__
from .formats import plain_config, unwrap_model
from .integrity import DIGEST_KEY, reason, refuse_empty, safetensors_digest

EXPORT_FORMAT = "edges2shoes/generator-export/v1"
_DIGEST_PLACEHOLDER = "?" * 64  # as long as a sha256 in hex


def export_generator(
    generator: nn.Module, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Save the generator's weights (buffers included) as safetensors, atomically.

    The metadata holds the format tag, the GeneratorConfig as JSON, the package version and the
    sha256 of the tensor data (`integrity.DIGEST_KEY`, checked on every load), plus `metadata`
    (values that are not strings are stored as JSON).
    """
    path = Path(path)
    model = unwrap_model(generator)
    config = getattr(model, "config", None)
    if not isinstance(config, GeneratorConfig):
        raise CheckpointError(f"{path}: can only export a UNetGenerator, not a {type(model).__name__}")
    header = {str(k): v if isinstance(v, str) else json.dumps(plain_config(v)) for k, v in (metadata or {}).items()}
    header.update(
        format=EXPORT_FORMAT,
        config=json.dumps(dataclasses.asdict(config)),
        edges2shoes_version=__version__,
    )
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # The digest covers the tensor data, which the metadata does not move: serialise once with a
    # placeholder of the digest's length, then put the digest in its place.
    body = safetensors_bytes(tensors, metadata={**header, DIGEST_KEY: _DIGEST_PLACEHOLDER})
    header_end = 8 + int.from_bytes(body[:8], "little")
    head = body[:header_end].replace(_DIGEST_PLACEHOLDER.encode(), safetensors_digest(body).encode(), 1)
    try:
        with atomic_open(path, "wb") as handle:
            handle.write(head)
            handle.write(memoryview(body)[header_end:])
    except OSError as exc:
        raise CheckpointError(f"{path}: could not write the export ({exc}); any previous file is unchanged") from exc
    return path


def read_export_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (CheckpointError naming the file if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such generator export")
    refuse_empty(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason(exc)})") from exc


def export_config(path: Path, metadata: Mapping[str, str]) -> dict:
    """The generator settings an export's metadata holds as JSON (CheckpointError if unreadable)."""
    try:
        config = json.loads(metadata["config"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: its generator config is not readable JSON ({reason(exc)})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its generator config is a {type(config).__name__}, not a dict of settings")
    return config


__all__ = ["EXPORT_FORMAT", "export_generator", "read_export_metadata", "export_config"]
