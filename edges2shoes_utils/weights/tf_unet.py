"""The TensorFlow pix2pix tutorial's U-Net, as a PyTorch port with its own names, mapped onto our
`UNetGenerator(layout="tf")` layer by layer in registration order (see `tf_layers`).

The port defines down-sampling blocks, then up-sampling blocks from the bottleneck out, then the
last layer; each layer must fit the next slot of our generator. A layer or tensor that does not fit
raises `WeightsError` naming it and the slot it was tried for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..nets import GeneratorConfig, UNetGenerator
from ..util.errors import WeightsError
from .layout_mapping import Converted, fit_state, skeleton
from .tf_layers import FOLDED_NOTE, Layer, batch_norm_eps, container_kind, map_norm, misfit, uniform_slope

NAME = "TF-tutorial U-Net"
Block = dict[str, Any]  # {"conv": Layer, "norm": Layer | None, "dropout": Layer | None}


def tf_generator(
    layers: list[Layer],
    source: str,
    *,
    from_module: bool,
    leaky_slope: float | None = None,
    dropout: bool | None = None,
    skip_first: bool = False,
) -> Converted:
    """Fit a layer sequence onto `UNetGenerator(layout="tf")`: encoder convs (a batch norm after each
    but the first), then the decoder's transposed convs from the bottleneck out (a batch norm after
    each but the last, which has a bias and feeds tanh).

    The tutorial concatenates [upsampled, skip]; `skip_first=True` reads a port that concatenated
    [skip, upsampled] (no file records this) by swapping the input halves of the weights that
    read the concatenation, which is exact."""
    notes: list[str] = []
    blocks, slopes = _blocks(layers, source)
    encoder, decoder = _encoder_and_decoder(blocks, from_module)
    levels = len(encoder)
    if levels < 2:
        raise WeightsError(f"{source}: found {levels} down-sampling convolution(s); a U-Net needs at least 2")
    for block in blocks:
        _check_conv_settings(block["conv"], source)

    leaky_slope = uniform_slope(slopes, leaky_slope, source, "U-Net", notes)
    dropout = _dropout_setting(decoder, levels, from_module, dropout, source, notes)
    bn_eps = batch_norm_eps(blocks, source, "U-Net", notes)

    first = encoder[0]["conv"].tensors.get("weight")
    last = decoder[-1]["conv"].tensors.get("weight") if decoder else None
    if first is None or last is None:
        raise WeightsError(f"{source}: found no weights for the first or the last convolution")
    config = GeneratorConfig(in_channels=first.shape[1], out_channels=last.shape[1], ngf=first.shape[0],
                             levels=levels, norm="batch", dropout=dropout, layout="tf", leaky_slope=leaky_slope)
    target = skeleton(UNetGenerator, config)

    mapped, folded = _map_blocks(encoder, decoder, levels, last.shape[1], source)
    if skip_first:
        _swap_skip_halves(mapped, levels)
        notes.append("skip connections read as concatenated [skip, upsampled] (skip_first)")
    if folded:
        notes.append(FOLDED_NOTE)
    return Converted(config, fit_state(target, mapped, source, NAME), f"{NAME} ({container_kind(from_module)})", notes, bn_eps)


def _blocks(layers: list[Layer], source: str) -> tuple[list[Block], list[tuple[Layer, float]]]:
    """Attach each batch norm / dropout to the convolution registered just before it; collect the
    LeakyReLU slopes."""
    blocks: list[Block] = []
    slopes: list[tuple[Layer, float]] = []
    for layer in layers:
        if layer.kind in ("conv", "deconv", "conv?"):
            blocks.append({"conv": layer, "norm": None, "dropout": None})
        elif layer.kind == "leaky":
            slopes.append((layer, float(layer.module.negative_slope)))
        elif layer.kind == "act":
            continue
        elif not blocks or blocks[-1][layer.kind] is not None:
            what = "batch norm" if layer.kind == "norm" else layer.kind
            raise misfit(layer, source, NAME, f"a {what} with no convolution of its own before it")
        else:
            blocks[-1][layer.kind] = layer
    return blocks, slopes


def _encoder_and_decoder(blocks: list[Block], from_module: bool) -> tuple[list[Block], list[Block]]:
    """The two convolutions without a batch norm are the first (encoder[0]) and the last (the tanh
    head); a port may register the head anywhere, so place both by that, not by position."""
    plain = [b for b in blocks if b["norm"] is None]
    if from_module:
        encoder = [b for b in blocks if b["conv"].kind == "conv"]
        decoder = [b for b in blocks if b["conv"].kind == "deconv"]
        if sum(b["norm"] is None for b in encoder) == 1:
            encoder = sorted(encoder, key=lambda b: b["norm"] is not None)
        if sum(b["norm"] is None for b in decoder) == 1:
            decoder = sorted(decoder, key=lambda b: b["norm"] is None)
        return encoder, decoder
    if len(plain) == 2 and len(blocks) % 2 == 0 and all("weight" in b["conv"].tensors for b in plain):
        first, head = plain
        if head["conv"].tensors["weight"].shape[0] * 2 == first["conv"].tensors["weight"].shape[0]:
            first, head = head, first  # the head reads [upsampled, skip]: twice encoder[0]'s channels
        normed = [b for b in blocks if b["norm"] is not None]
        half = len(blocks) // 2 - 1
        return [first] + normed[:half], normed[half:] + [head]
    half = len(blocks) // 2
    return blocks[:half], blocks[half:]


def _check_conv_settings(layer: Layer, source: str) -> None:
    module = layer.module
    if module is None:
        return
    wanted = {"kernel_size": (4, 4), "stride": (2, 2), "padding": (1, 1), "dilation": (1, 1), "groups": 1}
    if isinstance(module, nn.ConvTranspose2d):
        wanted["output_padding"] = (0, 0)
    for attr, value in wanted.items():
        if getattr(module, attr, value) != value:
            raise WeightsError(f"{source}: layer '{layer.name}' has {attr}={getattr(module, attr)}; the "
                               f"TF-tutorial U-Net needs {attr}={value}")
    if getattr(module, "padding_mode", "zeros") != "zeros":
        raise WeightsError(f"{source}: layer '{layer.name}' pads with '{module.padding_mode}'; the U-Net pads with zeros")


def _dropout_setting(decoder: list[Block], levels: int, from_module: bool, dropout: bool | None, source: str,
                     notes: list[str]) -> bool:
    """Dropout as a pickled module places it (after the three innermost up-sampling convolutions, or
    nowhere), unless `dropout` says otherwise; a state dict cannot say, so on unless asked."""
    if not from_module:
        if dropout is None:
            notes.append("dropout is not stored in a state dict: assumed on (as in the TF tutorial)")
            return True
        return dropout
    flags = [b["dropout"] is not None for b in decoder]
    found = any(flags)
    wanted = [found and j < 3 and j < levels - 1 for j in range(len(decoder))]
    for j, (have, want) in enumerate(zip(flags, wanted)):
        if have != want:
            layer = decoder[j]["dropout"] or decoder[j]["conv"]
            raise WeightsError(f"{source}: layer '{layer.name}': the TF-tutorial U-Net has dropout after the "
                               "three innermost up-sampling convolutions only")
    for block in decoder:
        if block["dropout"] is not None and abs(block["dropout"].module.p - 0.5) > 1e-9:
            raise WeightsError(f"{source}: layer '{block['dropout'].name}' drops with p={block['dropout'].module.p}; the U-Net uses 0.5")
    if dropout is not None and dropout != found:
        notes.append(f"dropout {'on' if dropout else 'off'} as asked, though the file says {'on' if found else 'off'}")
        return dropout
    return found


def _map_blocks(encoder: list[Block], decoder: list[Block], levels: int, out_channels: int,
                source: str) -> tuple[dict[str, tuple[str, torch.Tensor]], bool]:
    """Our key -> (foreign name, tensor), in the file's order so that the first misfit reported is the
    first in the file; and whether a convolution bias was folded into a batch norm."""
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    folded = False
    for position, block in enumerate(encoder + decoder):
        is_decoder = position >= levels
        level = (2 * levels - 1 - position) if is_decoder else position
        if is_decoder and level < 0:
            raise WeightsError(f"{source}: tensor '{block['conv'].tensor_name('weight')}' does not fit the {NAME} "
                               f"layout (more up-sampling layers than the {levels} down-sampling ones)")
        folded |= _map_block(mapped, block, "decoder" if is_decoder else "encoder", level, out_channels, source)
    if len(decoder) < levels:
        raise WeightsError(f"{source}: no tensor in the file fits decoder[{levels - 1 - len(decoder)}] of the {NAME} "
                           f"layout ({levels} down-sampling layers but {len(decoder)} up-sampling ones)")
    return mapped, folded


def _map_block(mapped: dict, block: Block, side: str, level: int, out_channels: int, source: str) -> bool:
    """Map one conv (and its batch norm) to `side[level]`; True if its bias was folded into the norm."""
    conv, norm = block["conv"], block["norm"]
    is_head = side == "decoder" and level == 0
    wants_norm = level > 0  # every level but the outermost, on both sides
    folded = False
    for tname, tensor in conv.tensors.items():
        if tname == "weight":
            mapped[f"{side}.{level}.conv.weight"] = (conv.tensor_name(tname), tensor)
        elif tname == "bias" and is_head:
            mapped["decoder.0.conv.bias"] = (conv.tensor_name(tname), tensor)
        elif tname == "bias" and norm is not None and wants_norm:
            folded = True  # exact: a per-channel shift before batch norm only moves its mean
        else:
            raise WeightsError(f"{source}: tensor '{conv.tensor_name(tname)}' does not fit the {NAME} layout "
                               f"(no place for it in {side}[{level}])")
    if is_head and "bias" not in conv.tensors:
        mapped["decoder.0.conv.bias"] = (conv.tensor_name("bias"), torch.zeros(out_channels))
    if norm is not None and not wants_norm:
        raise WeightsError(f"{source}: tensor '{norm.tensor_name(next(iter(norm.tensors)))}' does not fit the {NAME} "
                           f"layout ({side}[{level}] has no batch norm)")
    if norm is None and wants_norm:
        raise WeightsError(f"{source}: tensor '{conv.tensor_name('weight')}' does not fit the {NAME} layout "
                           f"({side}[{level}] needs a batch norm after its convolution, the file has none)")
    if norm is not None:
        map_norm(mapped, f"{side}.{level}.norm", norm, conv, source, NAME)
    return folded


def _swap_skip_halves(mapped: dict[str, tuple[str, torch.Tensor]], levels: int) -> None:
    """Read a port that concatenated [skip, upsampled]: swap the input halves of every decoder weight
    that reads a concatenation (all but the innermost)."""
    for level in range(levels - 1):
        key = f"decoder.{level}.conv.weight"
        if key in mapped and mapped[key][1].shape[0] % 2 == 0:
            foreign, weight = mapped[key]
            half = weight.shape[0] // 2
            mapped[key] = (foreign, torch.cat([weight[half:], weight[:half]], dim=0))


__all__ = ["tf_generator"]
