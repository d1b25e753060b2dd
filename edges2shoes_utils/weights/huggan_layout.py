"""PyTorch-GAN's pix2pix `GeneratorUNet` state dict (the `huggan/pix2pix-edge2shoes` file on the
Hugging Face Hub), mapped onto our `UNetGenerator(layout="pytorch-gan")`.

Its keys name the blocks: `down{k}.model.0.weight` (k = 1..levels, outermost first),
`up{k}.model.0.weight` (k = 1..levels-1, innermost first) and `final.2.weight` / `final.2.bias` (the
output convolution after upsampling and padding). Its convolutions are the only tensors: the
instance norms have no affine parameters and no running statistics, and nothing records dropout.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from ..nets import GeneratorConfig, UNetGenerator
from ..util.errors import WeightsError
from .layout_mapping import Converted, fit_state, skeleton

NAME = "PyTorch-GAN U-Net (huggan)"
_KEY = re.compile(r"(?:(down|up)(\d+)\.model\.(\d+)|final\.(\d+))\.(weight|bias)")


def is_huggan_generator(state: Mapping[str, Any]) -> bool:
    """Every key has PyTorch-GAN's block names, and the first down block is there."""
    return bool(state) and "down1.model.0.weight" in state and all(_KEY.fullmatch(k) for k in state)


def _our_key(key: str, levels: int, source: str) -> str:
    """`down3.model.0.weight` -> `encoder.2.conv.weight`; `up1...` -> the innermost decoder level."""
    kind, block, index, final_index, tensor_name = _KEY.fullmatch(key).groups()  # type: ignore[union-attr]
    if kind is None:
        if final_index != "2":
            raise WeightsError(f"{source}: tensor '{key}' does not fit the {NAME} layout (its output block "
                               "holds one convolution, final.2)")
        return f"decoder.0.conv.{tensor_name}"
    if index != "0":
        raise WeightsError(f"{source}: tensor '{key}' does not fit the {NAME} layout (its blocks hold one "
                           "convolution each, model.0; norms without affine parameters store nothing)")
    k = int(block)
    level = k - 1 if kind == "down" else levels - k
    if not 0 <= level < levels or (kind == "up" and level == 0):
        raise WeightsError(f"{source}: tensor '{key}' does not fit the {NAME} layout ({levels} down blocks)")
    return f"{'encoder' if kind == 'down' else 'decoder'}.{level}.conv.{tensor_name}"


def huggan_generator(state: Mapping[str, torch.Tensor], source: str, *, dropout: bool | None = None) -> Converted:
    """Convert a PyTorch-GAN `GeneratorUNet` state dict to ours (any depth and width)."""
    levels = max(int(m.group(2)) for m in map(_KEY.fullmatch, state) if m and m.group(1) == "down")
    expected = [f"down{k}.model.0.weight" for k in range(1, levels + 1)]
    expected += [f"up{k}.model.0.weight" for k in range(1, levels)] + ["final.2.weight"]
    missing = [key for key in expected if key not in state]
    if missing:
        raise WeightsError(f"{source}: the {NAME} in this file has {levels} down blocks but no '{missing[0]}'")
    if levels < 2:
        raise WeightsError(f"{source}: the {NAME} in this file has only one level")
    notes = ["instance norm without affine parameters (PyTorch-GAN's InstanceNorm2d stores no tensors)"]
    if dropout is None:
        dropout = True
        notes.append("dropout is not stored in a state dict: assumed on (PyTorch-GAN's GeneratorUNet has it)")
    first, last = state["down1.model.0.weight"], state["final.2.weight"]
    config = GeneratorConfig(in_channels=first.shape[1], out_channels=last.shape[0], ngf=first.shape[0],
                             levels=levels, norm="instance", dropout=dropout, layout="pytorch-gan")
    mapped = {_our_key(key, levels, source): (key, tensor) for key, tensor in state.items()}
    return Converted(config, fit_state(skeleton(UNetGenerator, config), mapped, source, NAME), NAME, notes)


__all__ = ["NAME", "is_huggan_generator", "huggan_generator"]
