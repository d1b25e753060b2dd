"""Layers in registration order, from a plain state dict or a pickled module tree, and the settings
both TF-tutorial readers (`tf_unet`, `tf_patchgan`) read from them.

The original edges2shoes notebook followed the TensorFlow pix2pix tutorial; its networks come as
PyTorch ports with their own names. Names carry no meaning, so the weights are read as a sequence of
layers in the order a port defines them, and each layer must fit the next slot of our network. From
a pickled module the layer types, the LeakyReLU slope, dropout placement and batch-norm epsilon are
read too; a plain state dict cannot carry those, so they are options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from ..util.errors import WeightsError
from .safe_unpickle import NotebookObject, class_name, own_tensors

KERAS_LEAKY_SLOPE = 0.3  # tf.keras.layers.LeakyReLU() default, used by the TF tutorial
DEFAULT_BN_EPS = 1e-5  # nn.BatchNorm2d default
FOLDED_NOTE = "convolution biases before batch norms folded into the norms' running means (exact)"
_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_PARAMLESS_OK = (nn.ReLU, nn.Tanh, nn.Identity)


@dataclass
class Layer:
    name: str  # foreign module path, e.g. "up_stack.2.bn"
    kind: str  # conv | deconv | conv? (a state dict does not say which) | norm | leaky | act | dropout | pad
    tensors: dict[str, torch.Tensor]
    module: Any = None  # the real torch.nn layer when read from a pickle (for its settings)

    def tensor_name(self, name: str) -> str:
        return f"{self.name}.{name}" if self.name else name


def layers_from_state_dict(state: Mapping[str, torch.Tensor], source: str) -> list[Layer]:
    """Group a state dict's tensors by module path, keeping the file's order."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise WeightsError(f"{source}: entry '{key}' is not a tensor")
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, {})[name] = tensor
    layers = []
    for prefix, tensors in groups.items():
        weight = tensors.get("weight")
        if "running_mean" in tensors or "running_var" in tensors:
            kind = "norm"
        elif weight is not None and weight.dim() == 4:
            kind = "conv?"
        else:
            first = next(iter(tensors))
            raise WeightsError(f"{source}: tensor '{prefix + '.' + first if prefix else first}' is neither a "
                               "convolution nor a batch norm, so it does not fit a pix2pix U-Net")
        layers.append(Layer(prefix, kind, tensors))
    return layers


def _leaf_kind(obj: Any, own: dict[str, torch.Tensor], network: str) -> str | None:
    """What a leaf of a pickled module tree is to our readers; None for a layer with no place."""
    if isinstance(obj, nn.ConvTranspose2d):
        return "deconv"
    if isinstance(obj, nn.Conv2d):
        return "conv"
    if isinstance(obj, nn.BatchNorm2d):
        return "norm"
    if isinstance(obj, nn.LeakyReLU):
        return "leaky"
    if isinstance(obj, nn.ZeroPad2d) and network == "PatchGAN" and not own:
        return "pad"
    if type(obj) is nn.Dropout:
        return "dropout"
    if isinstance(obj, _PARAMLESS_OK) and not own:
        return "act"
    return None


def layers_from_module(root: Any, source: str, network: str = "pix2pix U-Net") -> list[Layer]:
    """Walk a pickled module tree (real torch.nn layers inside notebook placeholders) in
    registration order and list its leaf layers. Zero-padding layers are listed only for
    `network="PatchGAN"` (the TF tutorial's discriminator has them; its U-Net does not)."""
    layers: list[Layer] = []

    def visit(obj: Any, path: str) -> None:
        children = vars(obj).get("_modules") or {}
        own = own_tensors(obj)
        label = path or "(root)"
        if children and own:
            raise WeightsError(f"{source}: module '{label}' ({class_name(obj)}) holds its own tensors "
                               f"('{path + '.' if path else ''}{next(iter(own))}'), which a {network} layer does not")
        if children:
            for name, child in children.items():
                if child is not None:
                    visit(child, f"{path}.{name}" if path else name)
            return
        kind = _leaf_kind(obj, own, network)
        if kind is not None:
            layers.append(Layer(path, kind, own, obj))
        elif not (isinstance(obj, NotebookObject) and not own):  # skip a notebook helper without tensors
            raise WeightsError(f"{source}: layer '{label}' ({class_name(obj)}) has no place in a {network}")

    visit(root, "")
    return layers


# --------------------------------------------------------------------------------------------------
# Settings and checks shared by both TF-tutorial networks.


def misfit(layer: Layer, source: str, layout_name: str, why: str) -> WeightsError:
    """The error for a layer that has no place in the layout, naming its first tensor if it has one."""
    first = next(iter(layer.tensors), None)
    what = f"tensor '{layer.tensor_name(first)}'" if first else f"layer '{layer.name}'"
    return WeightsError(f"{source}: {what} does not fit the {layout_name} layout ({why})")


def uniform_slope(slopes: list[tuple[Layer, float]], leaky_slope: float | None, source: str, network: str,
                  notes: list[str]) -> float:
    """The one LeakyReLU slope of a network: read from its layers if it has any, else the option,
    else the Keras default the TF tutorial uses."""
    if slopes:
        first = slopes[0][1]
        for layer, slope in slopes:
            if round(slope, 6) != round(first, 6):
                raise WeightsError(f"{source}: layer '{layer.name}' has LeakyReLU slope {slope}, others {first}; "
                                   f"our {network} uses one slope")
        if leaky_slope is not None and leaky_slope != first:
            notes.append(f"LeakyReLU slope {leaky_slope} as asked, though the file's layers use {first}")
            return leaky_slope
        notes.append(f"LeakyReLU slope {first} read from the file")
        return first
    if leaky_slope is not None:
        return leaky_slope
    notes.append(f"LeakyReLU slope not stored in the file: assumed {KERAS_LEAKY_SLOPE} (Keras default, as in the "
                 "TF tutorial); pass leaky_slope=... if the notebook used another")
    return KERAS_LEAKY_SLOPE


def batch_norm_eps(blocks: list, source: str, network: str, notes: list[str]) -> float | None:
    """The one batch-norm epsilon of a pickled network, when it is not PyTorch's default (Keras
    ports use 1e-3); None for the default or a state dict, which cannot carry it."""
    values = {float(b["norm"].module.eps) for b in blocks if b["norm"] is not None and b["norm"].module is not None}
    if len(values) > 1:
        raise WeightsError(f"{source}: batch norms with different epsilons {sorted(values)}; our {network} uses one")
    if not values or abs(next(iter(values)) - DEFAULT_BN_EPS) <= 1e-12:
        return None
    eps = next(iter(values))
    notes.append(f"batch-norm epsilon {eps} read from the file (set on the loaded model; exports cannot carry it)")
    return eps


def map_norm(mapped: dict, prefix: str, norm: Layer, conv: Layer, source: str, name: str) -> None:
    """Map a batch norm's tensors to `prefix.*`, folding the bias of the convolution before it into
    the running mean (exact: a per-channel shift before batch norm only moves its mean)."""
    for tname, tensor in norm.tensors.items():
        if tname not in _NORM_TENSORS:
            raise WeightsError(f"{source}: tensor '{norm.tensor_name(tname)}' does not fit the {name} layout")
        if tname == "running_mean" and "bias" in conv.tensors:
            bias = conv.tensors["bias"]
            if bias.shape != tensor.shape:
                raise WeightsError(f"{source}: tensor '{conv.tensor_name('bias')}' has shape {tuple(bias.shape)}, "
                                   f"but its batch norm has {tuple(tensor.shape)}")
            tensor = tensor - bias.detach().to(tensor.dtype)
        mapped[f"{prefix}.{tname}"] = (norm.tensor_name(tname), tensor)


def container_kind(from_module: bool) -> str:
    """How the network was stored, for its layout name."""
    return "pickled notebook module" if from_module else "state dict"


__all__ = [
    "KERAS_LEAKY_SLOPE",
    "Layer",
    "layers_from_state_dict",
    "layers_from_module",
    "misfit",
    "uniform_slope",
    "batch_norm_eps",
    "map_norm",
    "container_kind",
]
