"""The official PyTorch pix2pix implementation's layout (junyanz/pytorch-CycleGAN-and-pix2pix;
Isola et al. 2017, arXiv 1611.07004), mapped onto our networks by structure.

Its U-Net is recursive: `model.model.1.model.3.model.3...` nests one `UnetSkipConnectionBlock` per
level, and the position inside a block says what a tensor is. The key names are parsed into (level,
slot) and mapped onto our flat `encoder[i]` / `decoder[i]`; state-dict order plays no part (ours
differs). Its PatchGAN is one `nn.Sequential` (`model.0`, `model.2`, ...).
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
    inner = levels - 1
    roles = {0: {0: "encoder.0.conv", 3: "decoder.0.conv"}}
    for level in range(1, inner):
        roles[level] = {1: f"encoder.{level}.conv", 2: f"encoder.{level}.norm", 5: f"decoder.{level}.conv", 6: f"decoder.{level}.norm"}
    roles[inner] = {1: f"encoder.{inner}.conv", 3: f"decoder.{inner}.conv", 4: f"decoder.{inner}.norm"}
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
    names = {convs[0]: "model.conv0", convs[-1]: "model.head"}
    names.update({idx: f"model.conv{k}" for k, idx in enumerate(convs[1:-1], start=1)})
    has_bn = False
    mapped = {}
    for index in sorted(by_index):
        if index in names:
            prefix = names[index]
        elif index - 1 in names and names[index - 1] not in ("model.conv0", "model.head"):
            prefix = names[index - 1].replace("conv", "norm")
            has_bn = True
        else:
            key = next(iter(by_index[index].values()))
            raise WeightsError(f"{source}: tensor '{key}' does not fit the official PatchGAN layout")
        for tensor_name, key in by_index[index].items():
            mapped[f"{prefix}.{tensor_name}"] = (key, state[key])
    first = state[by_index[convs[0]]["weight"]]
    config = DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=len(convs) - 2,
                                 norm="batch" if has_bn else "instance")
    name = "official pix2pix PatchGAN"
    mapped = _ordered_by_file(mapped, list(state))
    return Converted(config, fit_state(skeleton(PatchGANDiscriminator, config), mapped, source, name), name)


def _ordered_by_file(mapped: dict[str, tuple[str, torch.Tensor]], order: list[str]) -> dict[str, tuple[str, torch.Tensor]]:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(mapped.items(), key=lambda item: rank.get(item[1][0], math.inf)))


__all__ = ["is_official_generator", "official_generator", "is_official_discriminator", "official_discriminator"]
