"""Common ground of the readers that map other implementations' weights onto our networks.

A reader turns a foreign state dict into `Converted`: tensors under our key names, the config that
fits them, and notes on what was assumed. `fit_state` checks every mapped tensor against the
network the config describes and raises `WeightsError` naming the first foreign tensor that does
not fit; `build` then makes the network. Our own layout, for files that lack the config we normally
store beside the weights, is recognised and its config recovered from the tensor shapes here too.
The foreign layouts live in `official_layout` (the official PyTorch implementation) and
`tf_unet` / `tf_patchgan` (the TensorFlow tutorial's networks, as PyTorch ports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..nets import DiscriminatorConfig, GeneratorConfig
from ..util.errors import WeightsError
from .integrity import check_weight


@dataclass
class Converted:
    """Weights in our key layout, the config that fits them, and what was assumed on the way."""

    config: Any  # GeneratorConfig or DiscriminatorConfig
    state_dict: dict[str, torch.Tensor]
    layout_name: str  # human-readable: "official pix2pix", "TF tutorial (pickled notebook module)", ...
    notes: list[str] = field(default_factory=list)
    bn_eps: float | None = None  # a batch-norm epsilon other than PyTorch's default, to set on the instance


def strip_wrappers(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop the `module.` prefix DataParallel/DDP adds and the `_orig_mod.` prefix of torch.compile."""
    notes = []
    state = dict(state)
    for prefix in ("module.", "_orig_mod."):
        while state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
            notes.append(f"removed the '{prefix}' prefix from every key")
    return state, notes


def fit_state(
    model: nn.Module,
    mapped: dict[str, tuple[str, torch.Tensor]],
    source: str,
    layout_name: str,
) -> dict[str, torch.Tensor]:
    """Check mapped tensors (our key -> (foreign name, tensor)) against `model`'s own, in the order the
    foreign file lists them; return a complete state dict (num_batches_tracked filled where the file,
    saved by old PyTorch, lacks it). Raises naming the first foreign tensor that does not fit: a wrong
    shape, or values no weight can hold (integers, NaN, infinity; `integrity.check_weight`)."""
    expected = model.state_dict()
    for ours, (foreign, tensor) in mapped.items():
        if ours not in expected:
            raise WeightsError(f"{source}: tensor '{foreign}' does not fit the {layout_name} layout (nothing to put it in)")
        if tuple(tensor.shape) != tuple(expected[ours].shape):
            raise WeightsError(
                f"{source}: tensor '{foreign}' has shape {tuple(tensor.shape)}, but the {layout_name} layout "
                f"needs {tuple(expected[ours].shape)} there ({ours})"
            )
    state = {}
    for ours, ref in expected.items():
        if ours in mapped and ref.is_floating_point():
            foreign, tensor = mapped[ours]
            check_weight(tensor, foreign, source)
            state[ours] = tensor.detach().to(ref.dtype).contiguous()
            if tensor.dtype != ref.dtype:
                check_weight(state[ours], foreign, source)  # float64 beyond float32's range became inf
        elif ours in mapped:
            state[ours] = mapped[ours][1].detach().to(ref.dtype).contiguous()
        elif ours.endswith("num_batches_tracked"):
            state[ours] = torch.zeros(ref.shape, dtype=ref.dtype)
        else:
            raise WeightsError(f"{source}: no tensor in the file fits {ours} of the {layout_name} layout")
    return state


def skeleton(cls: type, config: Any) -> nn.Module:
    """The network on the meta device: its tensor names and shapes, without allocating or
    initialising 54M parameters only to overwrite them."""
    with torch.device("meta"):
        return cls(config)


def build(cls: type, converted: Converted) -> nn.Module:
    """The network holding exactly `converted.state_dict` (complete: it passed `fit_state`), with the
    file's batch-norm epsilon where it is not PyTorch's default."""
    model = skeleton(cls, converted.config)
    model.load_state_dict(converted.state_dict, assign=True)
    if converted.bn_eps is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = converted.bn_eps
    return model


# --------------------------------------------------------------------------------------------------
# Our layout without a config.


def is_our_generator(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(k.startswith(("encoder.", "decoder.")) for k in state)


def infer_our_generator_config(state: Mapping[str, torch.Tensor], source: str) -> GeneratorConfig:
    """Recover a GeneratorConfig from the shapes of our own generator's state dict."""
    try:
        first, last = state["encoder.0.conv.weight"], state["decoder.0.conv.weight"]
    except KeyError as missing:
        raise WeightsError(f"{source}: looks like our layout but has no {missing.args[0]}") from None
    levels = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("encoder."))
    has_bn = any(k.endswith("norm.running_mean") for k in state)
    if has_bn:
        layout = "tf" if f"encoder.{levels - 1}.norm.weight" in state else "official"
    else:
        layout = "official" if "encoder.1.conv.bias" in state else "tf"
    return GeneratorConfig(
        in_channels=first.shape[1], out_channels=last.shape[1], ngf=first.shape[0], levels=levels,
        norm="batch" if has_bn else "instance", layout=layout,
    )


def is_our_discriminator(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(k.startswith("model.") and not k.split(".")[1].isdigit() for k in state)


def infer_our_discriminator_config(state: Mapping[str, torch.Tensor], source: str) -> DiscriminatorConfig:
    """Recover a DiscriminatorConfig from the shapes of our own PatchGAN's state dict."""
    try:
        first = state["model.conv0.weight"]
    except KeyError:
        raise WeightsError(f"{source}: looks like our PatchGAN but has no model.conv0.weight") from None
    convs = [k for k in state if k.startswith("model.conv") and k.endswith(".weight")]
    return DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=len(convs) - 1,
                               norm="batch" if any(k.endswith("running_mean") for k in state) else "instance",
                               first_bias="model.conv0.bias" in state)


__all__ = [
    "Converted",
    "strip_wrappers",
    "fit_state",
    "skeleton",
    "build",
    "is_our_generator",
    "infer_our_generator_config",
    "is_our_discriminator",
    "infer_our_discriminator_config",
]
