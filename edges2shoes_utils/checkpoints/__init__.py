"""Checkpoints: our file formats, fetching pretrained weights, and reading other projects' files.

`formats` (training checkpoints, epoch files), `exports` (safetensors exports), `fetch` (named
sources and the cache), `load` (`load_generator` and `load_discriminator`, the one way to get a
network from any weights file or named source, through `layout_mapping`, `official_layout`,
`tf_layers`, `tf_unet`, `tf_patchgan` and the restricted unpickler `safe_unpickle`), `integrity`
(checksums, tensor values and saved configs checked before any network is built from a file),
`onnx_export`, and `command_line` (`edges2shoes weights ...`).
"""

from .fetch import SOURCES, default_cache_dir, fetch_weights, sha256_of
from .exports import export_generator, read_export_metadata
from .formats import restore_training_state, save_checkpoint, save_epoch_weights, training_state
from .load import LoadOptions, load_discriminator, load_generator
from .onnx_export import check_onnx, export_onnx

__all__ = [
    # Reading weights of any known layout, fetched by name or from a path: the one way in.
    "load_generator",
    "load_discriminator",
    "LoadOptions",
    "fetch_weights",
    "default_cache_dir",
    "sha256_of",
    "SOURCES",
    # Our formats: training state, epoch files, exports.
    "save_checkpoint",
    "save_epoch_weights",
    "export_generator",
    "training_state",
    "restore_training_state",
    "read_export_metadata",
    "export_onnx",
    "check_onnx",
]
