"""The official PyTorch pix2pix implementation's layout (junyanz/pytorch-CycleGAN-and-pix2pix;
Isola et al. 2017, arXiv 1611.07004), mapped onto our networks by structure.

Its U-Net is recursive: `model.model.1.model.3.model.3...` nests one `UnetSkipConnectionBlock` per
level, and the position inside a block says what a tensor is. The key names are parsed into (level,
slot) and mapped onto our flat `encoder[i]` / `decoder[i]`; state-dict order plays no part (ours
differs). Its PatchGAN is one `nn.Sequential` (`model.0`, `model.2`, ...). The same role tables map
our networks back (`to_official_generator`, `to_official_discriminator`): the files its `test.py`
loads as `latest_net_G.pth` / `latest_net_D.pth`, with the options that rebuild the network there.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from ..nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator
from ..util.errors import WeightsError
from .layout_mapping import Converted, fit_state, skeleton


def is_official_generator(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(k.startswith("model.model.") for k in state)


def _official_slot(key: str) -> tuple[int, int, str] | None:
    """`model.model.1.model.3.model.2.weight` -> (level 2, index 2 in that block, "weight")."""
    parts = key.split(".")
    depth, i = 0, 1
    while parts[0] == "model" and i + 2 < len(parts) and parts[i] == "model" and parts[i + 1].isdigit():
        index, rest = parts[i + 1], parts[i + 2:]
        if len(rest) == 1:
            return depth, int(index), rest[0]
        if rest[0] != "model" or index != ("1" if depth == 0 else "3"):  # the submodule's position
            return None
        depth, i = depth + 1, i + 2
    return None


def _generator_roles(levels: int) -> dict[int, dict[int, str]]:
    """level -> {index inside that level's block: our layer}. The outermost block is [downconv,
    submodule, relu, upconv, tanh]; the innermost [leaky, downconv, relu, upconv, norm]; the others
    [leaky, downconv, norm, submodule, relu, upconv, norm(, dropout)]."""
    inner = levels - 1
    roles = {0: {0: "encoder.0.conv", 3: "decoder.0.conv"}}
    for level in range(1, inner):
        roles[level] = {1: f"encoder.{level}.conv", 2: f"encoder.{level}.norm", 5: f"decoder.{level}.conv", 6: f"decoder.{level}.norm"}
    roles[inner] = {1: f"encoder.{inner}.conv", 3: f"decoder.{inner}.conv", 4: f"decoder.{inner}.norm"}
    return roles


def _submodule_path(level: int) -> list[int]:
    """Where a level's block sits: index 1 in the outermost block, index 3 in every other."""
    return [1] + [3] * (level - 1) if level else []


def _official_key(level: int, index: int, tensor_name: str) -> str:
    """The inverse of `_official_slot`: (2, 2, "weight") -> `model.model.1.model.3.model.2.weight`."""
    return "model." + "".join(f"model.{position}." for position in _submodule_path(level)) + f"model.{index}.{tensor_name}"


def official_generator(
    state: Mapping[str, torch.Tensor], source: str, *, dropout: bool | None = None, norm: str | None = None
) -> Converted:
    """Convert the official recursive U-Net's state dict (e.g. the model zoo's edges2shoes) to ours."""
    slots = {k: _official_slot(k) for k in state}
    for key, slot in slots.items():
        if slot is None:
            raise WeightsError(f"{source}: tensor '{key}' does not fit the official pix2pix U-Net layout")
    levels = 1 + max(slot[0] for slot in slots.values())
    if levels < 2:
        raise WeightsError(f"{source}: the official U-Net in this file has only one level")
    notes = []
    has_bn = any(slot[2] == "running_mean" for slot in slots.values())
    if norm is None:
        norm = "batch" if has_bn else "instance"
        if not has_bn:
            notes.append("no batch-norm tensors: assumed instance norm (the official code's other choice)")
    if dropout is None:
        dropout = True
        notes.append("dropout is not stored in a state dict: assumed on (the official pix2pix default)")
    roles = _generator_roles(levels)
    mapped = {}
    for key, (level, index, tensor_name) in slots.items():
        prefix = roles[level].get(index)
        if prefix is None:
            raise WeightsError(f"{source}: tensor '{key}' does not fit the official pix2pix U-Net layout (no layer at that position)")
        mapped[f"{prefix}.{tensor_name}"] = (key, state[key])
    try:
        first, last = state["model.model.0.weight"], state["model.model.3.weight"]
    except KeyError as missing:
        raise WeightsError(f"{source}: the official U-Net in this file has no '{missing.args[0]}'") from None
    config = GeneratorConfig(
        in_channels=first.shape[1], out_channels=last.shape[1], ngf=first.shape[0], levels=levels,
        norm=norm, dropout=dropout, layout="official",
    )
    target = skeleton(UNetGenerator, config)
    name = "official pix2pix U-Net"
    return Converted(config, fit_state(target, mapped, source, name), name, notes)


def is_official_discriminator(state: Mapping[str, Any]) -> bool:
    """One `nn.Sequential` (`model.N.*` keys) whose first conv has a bias: a TF-tutorial port in one
    Sequential has the same keys but no first bias, and goes to the TF mapping instead."""
    if not state or not all(k.startswith("model.") and k.split(".")[1].isdigit() for k in state):
        return False
    first = min(int(key.split(".")[1]) for key in state)
    return f"model.{first}.bias" in state


def official_discriminator(state: Mapping[str, torch.Tensor], source: str) -> Converted:
    """Convert the official NLayerDiscriminator (one Sequential: conv, act, [conv, norm, act]..., conv)."""
    by_index: dict[int, dict[str, str]] = {}
    for key in state:
        parts = key.split(".")
        if len(parts) != 3:
            raise WeightsError(f"{source}: tensor '{key}' does not fit the official PatchGAN layout")
        by_index.setdefault(int(parts[1]), {})[parts[2]] = key
    convs = [i for i in sorted(by_index) if "weight" in by_index[i] and state[by_index[i]["weight"]].dim() == 4]
    if len(convs) < 3:
        raise WeightsError(f"{source}: the official PatchGAN in this file has only {len(convs)} convolutions")
    roles = _discriminator_roles(len(convs) - 2)
    mapped = {}
    for index in sorted(by_index):
        if index not in roles:
            key = next(iter(by_index[index].values()))
            raise WeightsError(f"{source}: tensor '{key}' does not fit the official PatchGAN layout")
        for tensor_name, key in by_index[index].items():
            mapped[f"{roles[index]}.{tensor_name}"] = (key, state[key])
    has_bn = any(roles[index].startswith("model.norm") for index in by_index)
    first = state[by_index[convs[0]]["weight"]]
    config = DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=len(convs) - 2,
                                 norm="batch" if has_bn else "instance")
    name = "official pix2pix PatchGAN"
    mapped = _ordered_by_file(mapped, list(state))
    return Converted(config, fit_state(skeleton(PatchGANDiscriminator, config), mapped, source, name), name)


def _discriminator_roles(n_layers: int) -> dict[int, str]:
    """Sequential index -> our layer: conv, leaky, then [conv, norm, leaky] per layer, then the head."""
    roles = {0: "model.conv0", 3 * n_layers + 2: "model.head"}
    for k in range(1, n_layers + 1):
        roles[3 * k - 1], roles[3 * k] = f"model.conv{k}", f"model.norm{k}"
    return roles


def _ordered_by_file(mapped: dict[str, tuple[str, torch.Tensor]], order: list[str]) -> dict[str, tuple[str, torch.Tensor]]:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(mapped.items(), key=lambda item: rank.get(item[1][0], math.inf)))


# --------------------------------------------------------------------------------------------------
# Our networks in the official layout.

OFFICIAL_NETG = {7: "unet_128", 8: "unet_256"}  # the U-Nets its --netG offers, by levels
OFFICIAL_SLOPE = 0.2  # its LeakyReLU slope, fixed in its code


def _refuse(source: str, network: str, problem: str | None) -> None:
    if problem:
        raise WeightsError(f"{source}: the official pix2pix code cannot build this {network}: {problem}")


def official_generator_options(config: GeneratorConfig, source: str) -> list[str]:
    """The options of the official `train.py` / `test.py` that build a U-Net of `config`;
    WeightsError naming `source` when no option matches (another layout, depth, norm or slope)."""
    _refuse(source, "generator", (
        f"its layout is {config.layout!r} (only ours named 'official' matches)" if config.layout != "official" else
        f"it has {config.levels} levels, and --netG offers unet_128 (7) and unet_256 (8)" if config.levels not in OFFICIAL_NETG else
        "norm 'none' (the official convolutions have no bias there; ours do)" if config.norm not in ("batch", "instance") else
        f"LeakyReLU slope {config.leaky_slope} (the official code fixes {OFFICIAL_SLOPE})" if config.leaky_slope != OFFICIAL_SLOPE else None))
    options = ["--netG", OFFICIAL_NETG[config.levels], "--norm", config.norm, "--ngf", str(config.ngf)]
    options += [] if config.dropout else ["--no_dropout"]
    options += ["--input_nc", str(config.in_channels)] if config.in_channels != 3 else []
    return options + (["--output_nc", str(config.out_channels)] if config.out_channels != 3 else [])


def to_official_generator(model: UNetGenerator, source: str) -> dict[str, torch.Tensor]:
    """Our U-Net's state dict under the official key names, in the official order (the order of the
    reference key list: each block's tensors before and after the block nested in it)."""
    official_generator_options(model.config, source)
    places = {prefix: (level, index) for level, slots in _generator_roles(model.config.levels).items()
              for index, prefix in slots.items()}
    renamed = []
    for key, tensor in model.state_dict().items():
        prefix, tensor_name = key.rsplit(".", 1)
        level, index = places[prefix]
        renamed.append((_submodule_path(level) + [index], _official_key(level, index, tensor_name), tensor))
    renamed.sort(key=lambda item: item[0])  # stable: weight, bias, running stats keep their order
    return {key: tensor.detach().cpu().contiguous() for _, key, tensor in renamed}


def official_discriminator_options(config: DiscriminatorConfig, source: str) -> list[str]:
    """The official options that build a PatchGAN of `config` (WeightsError when none do)."""
    _refuse(source, "PatchGAN", (
        "its first convolution has no bias (the TF tutorial's)" if not config.first_bias else
        "norm 'none' (the official convolutions have no bias there; ours do)" if config.norm not in ("batch", "instance") else
        f"LeakyReLU slope {config.leaky_slope} (the official code fixes {OFFICIAL_SLOPE})" if config.leaky_slope != OFFICIAL_SLOPE else None))
    depth = ["--netD", "basic"] if config.n_layers == 3 else ["--netD", "n_layers", "--n_layers_D", str(config.n_layers)]
    return depth + ["--ndf", str(config.ndf)]


def to_official_discriminator(model: PatchGANDiscriminator, source: str) -> dict[str, torch.Tensor]:
    """Our PatchGAN's state dict under the official key names (one Sequential), in its order."""
    official_discriminator_options(model.config, source)
    index_of = {prefix: index for index, prefix in _discriminator_roles(model.config.n_layers).items()}
    renamed = []
    for key, tensor in model.state_dict().items():
        prefix, tensor_name = key.rsplit(".", 1)
        renamed.append((index_of[prefix], f"model.{index_of[prefix]}.{tensor_name}", tensor))
    renamed.sort(key=lambda item: item[0])
    return {key: tensor.detach().cpu().contiguous() for _, key, tensor in renamed}


__all__ = ["is_official_generator", "official_generator", "is_official_discriminator", "official_discriminator",
           "official_generator_options", "to_official_generator", "official_discriminator_options",
           "to_official_discriminator"]
