"""The TensorFlow pix2pix tutorial's PatchGAN, as a PyTorch port with its own names, mapped onto our
`PatchGANDiscriminator` layer by layer in registration order (see `tf_layers`).

The tutorial's discriminator: concat -> conv 64 without bias or norm -> conv, norm 128, 256 ->
zero-pad, conv 512 stride 1, norm -> zero-pad, conv 1 with bias. It maps onto ours with
`first_bias=False`: a zero-pad of 1 then an unpadded conv equals our padded conv.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nets import DiscriminatorConfig, PatchGANDiscriminator
from ..util.errors import WeightsError
from .layout_mapping import Converted, fit_state, skeleton
from .tf_layers import FOLDED_NOTE, Layer, batch_norm_eps, container_kind, map_norm, misfit, uniform_slope

NAME = "TF-tutorial PatchGAN"
Block = dict[str, Any]  # {"conv": Layer, "norm": Layer | None, "pad": Layer | None}


def tf_discriminator(layers: list[Layer], source: str, *, from_module: bool, leaky_slope: float | None = None) -> Converted:
    """Fit a layer sequence onto our `PatchGANDiscriminator`: a first conv without norm (its bias,
    absent in the tutorial, is kept if present), convs each followed by a batch norm, and a last
    conv (the logits) without norm. The number of normed convs gives n_layers (3 in the tutorial)."""
    notes: list[str] = []
    blocks, slopes = _blocks(layers, source)
    if len(blocks) < 3:
        raise WeightsError(f"{source}: found {len(blocks)} convolution(s); the {NAME} needs at least 3")
    n_layers = len(blocks) - 2
    for position, block in enumerate(blocks):
        _check_patch_conv(block["conv"], block["pad"], 2 if position < n_layers else 1, source)
    slope = uniform_slope(slopes, leaky_slope, source, "PatchGAN", notes)
    bn_eps = batch_norm_eps(blocks, source, "PatchGAN", notes)

    first = blocks[0]["conv"].tensors.get("weight")
    if first is None:
        raise WeightsError(f"{source}: found no weight for the first convolution '{blocks[0]['conv'].name}'")
    config = DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=n_layers, norm="batch",
                                 first_bias="bias" in blocks[0]["conv"].tensors, leaky_slope=slope)
    target = skeleton(PatchGANDiscriminator, config)

    mapped, folded = _map_blocks(blocks, source, notes)
    if folded:
        notes.append(FOLDED_NOTE)
    return Converted(config, fit_state(target, mapped, source, NAME), f"{NAME} ({container_kind(from_module)})", notes, bn_eps)


def _blocks(layers: list[Layer], source: str) -> tuple[list[Block], list[tuple[Layer, float]]]:
    """Group the layers into convolutions, each with the zero-padding registered just before it and
    the batch norm just after; collect the LeakyReLU slopes."""
    blocks: list[Block] = []
    slopes: list[tuple[Layer, float]] = []
    pending_pad: Layer | None = None
    for layer in layers:
        if layer.kind in ("conv", "conv?"):
            blocks.append({"conv": layer, "norm": None, "pad": pending_pad})
            pending_pad = None
        elif layer.kind == "pad":
            if pending_pad is not None:
                raise misfit(layer, source, NAME, "two zero-paddings in a row")
            pending_pad = layer
        elif layer.kind == "leaky":
            slopes.append((layer, float(layer.module.negative_slope)))
        elif layer.kind == "norm" and blocks and blocks[-1]["norm"] is None and pending_pad is None:
            blocks[-1]["norm"] = layer
        elif layer.kind == "act" and isinstance(layer.module, nn.Identity):
            continue
        elif layer.kind == "norm":
            raise misfit(layer, source, NAME, "a batch norm with no convolution of its own before it")
        else:
            what = type(layer.module).__name__ if layer.module is not None else layer.kind
            raise misfit(layer, source, NAME, f"a PatchGAN has no {what} layer")
    if pending_pad is not None:
        raise misfit(pending_pad, source, NAME, "a zero-padding after the last convolution")
    return blocks, slopes


def _check_patch_conv(conv: Layer, pad: Layer | None, stride: int, source: str) -> None:
    """A pickled conv must be k4 with the given stride and an overall zero padding of 1 on every
    side, from its own padding, a ZeroPad2d registered just before it, or both."""
    module = conv.module
    if module is None:
        return
    wanted = {"kernel_size": (4, 4), "stride": (stride, stride), "dilation": (1, 1), "groups": 1}
    for attr, value in wanted.items():
        if getattr(module, attr, value) != value:
            raise WeightsError(f"{source}: layer '{conv.name}' has {attr}={getattr(module, attr)}; the TF-tutorial "
                               f"PatchGAN needs {attr}={value} there")
    if getattr(module, "padding_mode", "zeros") != "zeros" or isinstance(module.padding, str):
        raise WeightsError(f"{source}: layer '{conv.name}' pads with {module.padding_mode!r}/{module.padding!r}; "
                           "the PatchGAN needs zero padding of 1")
    ph, pw = module.padding
    left, right, top, bottom = pad.module.padding if pad is not None else (0, 0, 0, 0)
    total = (pw + left, pw + right, ph + top, ph + bottom)
    if total != (1, 1, 1, 1):
        where = f"'{pad.name}' and '{conv.name}'" if pad is not None else f"'{conv.name}'"
        raise WeightsError(f"{source}: layers {where} pad by (left, right, top, bottom)={total}; the PatchGAN needs 1 on every side")


def _map_blocks(blocks: list[Block], source: str, notes: list[str]) -> tuple[dict[str, tuple[str, torch.Tensor]], bool]:
    """Our key -> (foreign name, tensor), in the file's order; and whether a convolution bias was
    folded into a batch norm."""
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    folded = False
    for position, block in enumerate(blocks):
        ours = "model.conv0" if position == 0 else "model.head" if position == len(blocks) - 1 else f"model.conv{position}"
        conv, norm = block["conv"], block["norm"]
        wants_norm = 0 < position < len(blocks) - 1
        if norm is not None and not wants_norm:
            raise misfit(norm, source, NAME, f"{ours} has no batch norm after it")
        if norm is None and wants_norm:
            raise WeightsError(f"{source}: tensor '{conv.tensor_name('weight')}' does not fit the {NAME} layout "
                               f"({ours} needs a batch norm after its convolution, the file has none)")
        for tname, tensor in conv.tensors.items():
            if tname == "weight" or (tname == "bias" and not wants_norm):
                mapped[f"{ours}.{tname}"] = (conv.tensor_name(tname), tensor)
            elif tname == "bias":
                folded = True  # exact: a per-channel shift before batch norm only moves its mean
            else:
                raise WeightsError(f"{source}: tensor '{conv.tensor_name(tname)}' does not fit the {NAME} layout")
        if ours == "model.head" and "bias" not in conv.tensors:
            mapped["model.head.bias"] = (conv.tensor_name("bias"), torch.zeros(1))
            notes.append("the last convolution has no bias: used zero")
        if norm is not None:
            map_norm(mapped, ours.replace("conv", "norm"), norm, conv, source, NAME)
    return mapped, folded


__all__ = ["tf_discriminator"]
