"""Read any known weights file into our generator or discriminator, without running code from it.

`load_generator(source)` reads our exports, epoch files and training checkpoints, the official
implementation's state dicts, and TF-tutorial U-Nets (a state dict with any names, or a whole
notebook module pickled with `torch.save(model)`); `load_discriminator` reads ours, the official
PatchGAN and the TF tutorial's. Pickles go through `safe_unpickle`; the layout mappings live in
`official_layout`, `tf_unet`, `tf_patchgan` and `huggan_layout` (PyTorch-GAN's U-Net). A named
source ("kaggle", "pix2pix-official", "huggan") is fetched first (`fetch`). A folder written by
`save_pretrained` (what `weights publish` uploads, fetched as `hub:`, `kaggle-model:` or given as a
path) loads through the network's `from_pretrained`. These two are the way to get a network from any
source; `read_weights` is the reader behind both, also saying how it read the file.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors.torch import load_file
from torch import nn

from ..nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator, count_parameters
from ..nets.hub import saved_weights
from ..util.errors import ConfigError, WeightsError
from . import exports, formats
from .fetch import Downloader, fetch_weights
from .huggan_layout import huggan_generator, is_huggan_generator
from .integrity import check_config_values, check_weight, reason, verify_safetensors_digest, verify_zip_checksums
from .layout_mapping import (
    Converted,
    build,
    fit_state,
    infer_our_discriminator_config,
    infer_our_generator_config,
    is_our_discriminator,
    is_our_generator,
    skeleton,
    strip_wrappers,
)
from .official_layout import is_official_discriminator, is_official_generator, official_discriminator, official_generator
from .safe_unpickle import is_module_like, load_restricted, own_tensors
from .tf_layers import layers_from_module, layers_from_state_dict
from .tf_patchgan import tf_discriminator
from .tf_unet import tf_generator


@dataclass(frozen=True)
class LoadOptions:
    """How to fetch and read weights: what a plain state dict cannot say about the network that saved
    it, and where a named source comes from. Values found in the file win unless given here."""

    leaky_slope: float | None = None  # TF layout's LeakyReLU slope (default 0.3, the Keras default)
    dropout: bool | None = None  # generator only: build with dropout (default on)
    norm: str | None = None  # generator only: official layout without norm tensors (default "instance")
    skip_first: bool = False  # generator only, TF layout: the notebook concatenated [skip, upsampled]
    cache_dir: str | os.PathLike | None = None  # where named sources are cached (see fetch.default_cache_dir)
    downloader: Downloader | None = None  # replaces kagglehub.dataset_download ("kaggle") or fetch.hub_download ("huggan")
    epoch: int = 9  # which {role}_N.pt of the Kaggle set

    @classmethod
    def of(cls, options: LoadOptions | None, overrides: Mapping[str, Any], caller: str, role: str) -> LoadOptions:
        """`options` (or the defaults) with the keyword arguments given to `caller` folded in; the
        generator-only fields are not keywords of the discriminator readers."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        if role == "discriminator":
            allowed -= set(_GENERATOR_ONLY)
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise TypeError(f"{caller}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
        return dataclasses.replace(options or cls(), **overrides)


_GENERATOR_ONLY = ("dropout", "norm", "skip_first")


@dataclass
class LoadedWeights:
    """A network read from a file, and how it was read (what `weights info` prints)."""

    path: Path
    layout: str  # e.g. "official pix2pix U-Net", "TF-tutorial U-Net (pickled notebook module)", "edges2shoes"
    container: str  # e.g. "edges2shoes epoch file", "state dict", "pickled module"
    model: nn.Module
    notes: list[str] = field(default_factory=list)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)


# --------------------------------------------------------------------------------------------------
# Files and containers.


def read_object(path: Path) -> Any:
    """Unpickle a .pt/.pth file without running code from it: `torch.load(weights_only=True)` for
    plain tensors and containers, the restricted unpickler for pickled notebook modules. A zip
    archive's checksums are verified first (torch does not)."""
    verify_zip_checksums(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # needs more than tensors and containers: a pickled module, or something unsafe
    except Exception as error:  # damaged bytes make torch's parsers raise anything (IndexError, ...)
        if "weights_only" not in str(error):
            raise WeightsError(f"{path}: not a readable PyTorch file ({reason(error)})") from None
    return load_restricted(path)


def _state_from_safetensors(path: Path) -> tuple[Any, dict | None, str]:
    metadata = exports.read_export_metadata(path)
    verify_safetensors_digest(path, metadata)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:
        raise WeightsError(f"{path}: not a readable safetensors file ({reason(error)})") from None
    config = exports.export_config(path, metadata) if "config" in metadata else None
    return tensors, config, "edges2shoes export" if config else "safetensors state dict"


_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "network")
_ROLE_KEYS = {
    "generator": ("generator", "netG", "G", "gen", "generator_state_dict", "state_dict_G", "model_G"),
    "discriminator": ("discriminator", "netD", "D", "disc", "discriminator_state_dict", "state_dict_D", "model_D"),
}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def find_network(obj: Any, role: str, path: Path) -> tuple[Any, dict | None, str]:
    """(state dict or pickled module, saved config or None, container name) for `role` in `obj`."""
    if isinstance(obj, Mapping):
        fmt = obj.get("format")
        if fmt == formats.TRAINING_FORMAT and role in obj:
            return obj[role], obj.get(f"{role}_config") or None, "edges2shoes training checkpoint"
        epoch_formats = {formats.GENERATOR_EPOCH_FORMAT: "generator", formats.DISCRIMINATOR_EPOCH_FORMAT: "discriminator"}
        if fmt in epoch_formats:
            if epoch_formats[fmt] != role:
                raise WeightsError(f"{path}: holds a {epoch_formats[fmt]}, not a {role} (pass the matching {role}_N.pt)")
            return obj["state_dict"], obj.get("config") or None, "edges2shoes epoch file"
        if _is_state_dict(obj):
            return obj, None, "state dict"
        other = "discriminator" if role == "generator" else "generator"
        for key in _ROLE_KEYS[role] + _WRAPPER_KEYS:
            if key in obj:
                inner, config, container = find_network(obj[key], role, path)
                saved = obj.get(f"{role}_config") or obj.get("config")
                return inner, config or (saved if isinstance(saved, Mapping) else None), f"{container} in a dict ['{key}']"
        if any(key in obj for key in _ROLE_KEYS[other]):
            raise WeightsError(f"{path}: holds a {other} but no {role}")
        keys = ", ".join(repr(k) for k in list(obj)[:12])
        raise WeightsError(f"{path}: a dict with keys {keys}, none of which holds {role} weights")
    if is_module_like(obj):
        return obj, None, "pickled module"
    raise WeightsError(f"{path}: holds a {type(obj).__name__}, not {role} weights")


def _module_state(root: Any) -> dict[str, torch.Tensor]:
    """The state-dict view of a pickled module tree (real layers inside placeholders)."""
    state: dict[str, torch.Tensor] = {}

    def visit(obj: Any, prefix: str) -> None:
        state.update({prefix + name: tensor for name, tensor in own_tensors(obj).items()})
        for name, child in (vars(obj).get("_modules") or {}).items():
            if child is not None:
                visit(child, f"{prefix}{name}.")

    visit(root, "")
    return state


def _our_config(saved_config: Mapping | None, state: Mapping[str, torch.Tensor], cls: type, infer: Callable,
                source: str, notes: list[str]) -> Any:
    """The config saved beside our own weights (unknown fields dropped, with a note), else one inferred
    from the tensor shapes; WeightsError if the saved one cannot describe a network."""
    if not saved_config:
        config = infer(state, source)
        notes.append("no config in the file: settings inferred from the tensor shapes")
        return config
    if not isinstance(saved_config, Mapping):
        raise WeightsError(f"{source}: its saved config is a {type(saved_config).__name__}, not a dict of settings")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, saved_config)) - names)
    if unknown:
        notes.append(f"ignored unknown config fields {unknown}")
    config = cls(**{k: v for k, v in saved_config.items() if k in names})
    check_config_values(config, source)
    return config


def _skeleton(network: type, config: Any, source: str) -> nn.Module:
    """`skeleton`, its refusal of an impossible config told as a WeightsError naming the file."""
    try:
        return skeleton(network, config)
    except (TypeError, ValueError, RuntimeError, ConfigError) as error:
        raise WeightsError(f"{source}: its {network.__name__} config is not usable ({reason(error)})") from None


def _as_is(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, torch.Tensor]]:
    """Our own key names map to themselves."""
    return {key: (key, tensor) for key, tensor in state.items()}


def _from_pretrained(path: Path, role: str, options: LoadOptions) -> LoadedWeights:
    """The weights of a folder `save_pretrained` wrote (a Hub download, a Kaggle Model, a local
    folder), through the network's `from_pretrained`, with its tensors checked as every reader does."""
    network = UNetGenerator if role == "generator" else PatchGANDiscriminator
    names = ("leaky_slope", "dropout", "norm") if role == "generator" else ("leaky_slope",)
    settings = {name: getattr(options, name) for name in names if getattr(options, name) is not None}
    model = network.from_pretrained(path.parent, **settings)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            check_weight(tensor, name, str(path))
    return LoadedWeights(path, f"edges2shoes ({getattr(model.config, 'layout', 'PatchGAN')} layout)",
                         "save_pretrained folder (config.json + safetensors)", model)


def read_weights(source: str | os.PathLike, role: str = "generator", options: LoadOptions | None = None,
                 **overrides: Any) -> LoadedWeights:
    """What `load_generator` (role "generator") or `load_discriminator` (role "discriminator")
    reads, and how it was read: the layout found, the container and what was assumed (what `weights
    info`, `weights convert`, publishing and a run's start report say). Fetches `source` if it is a
    name, finds the `role` network in the file, maps it onto ours and builds it (eval mode, CPU)."""
    if role not in _ROLE_KEYS:
        raise ConfigError(f"role must be 'generator' or 'discriminator', not {role!r}")
    options = LoadOptions.of(options, overrides, "read_weights", role)
    path = fetch_weights(source, role=role, cache_dir=options.cache_dir, downloader=options.downloader, epoch=options.epoch)
    if saved_weights(path.parent) == path:
        return _from_pretrained(path, role, options)
    if role == "generator" and path.suffix == ".safetensors":
        payload, saved_config, container = _state_from_safetensors(path)
    else:
        payload, saved_config, container = find_network(read_object(path), role, path)
    if role == "generator":
        network, converted = UNetGenerator, _convert_generator(payload, saved_config, str(path), options)
    else:
        network, converted = PatchGANDiscriminator, _convert_discriminator(payload, saved_config, str(path), options)
    return LoadedWeights(path, converted.layout_name, container, build(network, converted).eval(), converted.notes)


# --------------------------------------------------------------------------------------------------
# Generators.


def _convert_generator(payload: Any, saved_config: Mapping | None, source: str, options: LoadOptions) -> Converted:
    if is_module_like(payload):
        state, notes = strip_wrappers(_module_state(payload))
        if is_official_generator(state):
            converted = official_generator(state, source, dropout=options.dropout, norm=options.norm)
            converted.notes[:0] = notes
            return converted
        if is_huggan_generator(state):  # a whole GeneratorUNet pickled with torch.save(model)
            converted = huggan_generator(state, source, dropout=options.dropout)
            converted.notes[:0] = notes
            return converted
        return tf_generator(layers_from_module(payload, source), source, from_module=True,
                            leaky_slope=options.leaky_slope, dropout=options.dropout, skip_first=options.skip_first)
    state, notes = strip_wrappers(payload)
    if is_our_generator(state):
        config = _our_config(saved_config, state, GeneratorConfig, infer_our_generator_config, source, notes)
        overrides = {name: getattr(options, name) for name in ("leaky_slope", "dropout", "norm")}
        config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
        target = _skeleton(UNetGenerator, config, source)
        return Converted(config, fit_state(target, _as_is(state), source, "edges2shoes U-Net"),
                         f"edges2shoes ({config.layout} layout)", notes)
    if is_official_generator(state):
        converted = official_generator(state, source, dropout=options.dropout, norm=options.norm)
    elif is_huggan_generator(state):
        converted = huggan_generator(state, source, dropout=options.dropout)
    else:
        converted = tf_generator(layers_from_state_dict(state, source), source, from_module=False,
                                 leaky_slope=options.leaky_slope, dropout=options.dropout, skip_first=options.skip_first)
    converted.notes[:0] = notes
    return converted


def load_generator(path_or_source: str | os.PathLike, options: LoadOptions | None = None, *,
                   device: str | torch.device = "cpu", **overrides: Any) -> UNetGenerator:
    """A ready UNetGenerator (eval mode, on `device`) from any known weights file or source.

    Reads our exports, epoch files and training checkpoints; the official pix2pix state dict
    (also without num_batches_tracked, with a `module.` prefix, or wrapped in {"state_dict": ...} /
    {"model": ...}); TF-tutorial U-Nets as a state dict or a pickled notebook module; PyTorch-GAN's
    `GeneratorUNet` ("huggan"). Never runs
    code from the file. `options` (a `LoadOptions`), or its fields as keyword arguments, say what a
    plain state dict cannot: `leaky_slope` (TF layout; default 0.3, the Keras default), `dropout`
    (default on), `norm` (official layout without norm tensors; default "instance"), `skip_first`
    (TF layout: the notebook concatenated [skip, upsampled] rather than the tutorial's
    [upsampled, skip]); and where a named source comes from: `cache_dir`, `downloader`, `epoch`.
    Values found in the file win unless given here.
    """
    options = LoadOptions.of(options, overrides, "load_generator", "generator")
    return read_weights(path_or_source, "generator", options).model.to(device)


# --------------------------------------------------------------------------------------------------
# Discriminators.


def _convert_discriminator(payload: Any, saved_config: Mapping | None, source: str, options: LoadOptions) -> Converted:
    module = payload if is_module_like(payload) else None
    state, notes = strip_wrappers(_module_state(payload) if module is not None else payload)
    if is_our_discriminator(state):
        config = _our_config(saved_config, state, DiscriminatorConfig, infer_our_discriminator_config, source, notes)
        if options.leaky_slope is not None:
            config = dataclasses.replace(config, leaky_slope=options.leaky_slope)
        target = _skeleton(PatchGANDiscriminator, config, source)
        return Converted(config, fit_state(target, _as_is(state), source, "edges2shoes PatchGAN"), "edges2shoes PatchGAN", notes)
    if is_official_discriminator(state):
        converted = official_discriminator(state, source)
    else:
        layers = layers_from_module(module, source, "PatchGAN") if module is not None else layers_from_state_dict(state, source)
        converted = tf_discriminator(layers, source, from_module=module is not None, leaky_slope=options.leaky_slope)
    converted.notes[:0] = notes
    return converted


def load_discriminator(path_or_source: str | os.PathLike, options: LoadOptions | None = None, *,
                       device: str | torch.device = "cpu", **overrides: Any) -> PatchGANDiscriminator:
    """A PatchGANDiscriminator (eval mode, on `device`) from our files, the official implementation's
    state dict, or the TF tutorial's discriminator (a state dict with any names or a pickled notebook
    module). `leaky_slope` (in `options` or as a keyword): for TF-tutorial state dicts, which cannot
    carry it (default 0.3, the Keras default); a pickled module's own slope is used unless this is
    given. `cache_dir`, `downloader`, `epoch`: where a named source comes from. Generator-only
    options in `options` are ignored."""
    options = LoadOptions.of(options, overrides, "load_discriminator", "discriminator")
    return read_weights(path_or_source, "discriminator", options).model.to(device)


__all__ = [
    "LoadOptions",
    "LoadedWeights",
    "read_object",
    "find_network",
    "read_weights",
    "load_generator",
    "load_discriminator",
]
