"""Map weights saved by other pix2pix implementations onto our networks, by structure.

Three foreign layouts are understood (Isola et al. 2017, arXiv 1611.07004, for the networks):

- the official PyTorch implementation (junyanz/pytorch-CycleGAN-and-pix2pix). Its U-Net is
  recursive: `model.model.1.model.3.model.3...` nests one `UnetSkipConnectionBlock` per level, and
  the position inside a block says what a tensor is. The key names are parsed into (level, slot)
  and mapped onto our flat `encoder[i]` / `decoder[i]`; state-dict order plays no part (ours
  differs). Its PatchGAN is one `nn.Sequential` (`model.0`, `model.2`, ...).
- the TensorFlow pix2pix tutorial's U-Net, as a PyTorch port with its own names (the original
  edges2shoes notebook followed that tutorial). Names carry no meaning here, so the weights are
  read as a sequence of layers in registration order (the order a port defines them:
  down-sampling blocks, then up-sampling blocks from the bottleneck out, then the last layer), and
  each layer must fit the next slot of our `layout="tf"` generator. From a pickled module the layer
  types, the LeakyReLU slope, dropout placement and batch-norm epsilon are read too; a plain state
  dict cannot carry those, so they are options.
- the TF tutorial's PatchGAN (concat -> conv 64 without bias or norm -> conv, norm 128, 256 ->
  zero-pad, conv 512 stride 1, norm -> zero-pad, conv 1 with bias), read the same way: layers in
  registration order, each fitted to the next slot of our `PatchGANDiscriminator` with
  `first_bias=False` (a zero-pad 1 then an unpadded conv equals our padded conv).
- our own layout, for files that lack the config we normally store beside the weights.

A layer or tensor that does not fit raises `WeightsError` naming it and the slot it was tried for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..util.errors import WeightsError
from ..nets.models import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator
from .safe_unpickle import NotebookObject, class_name

KERAS_LEAKY_SLOPE = 0.3  # tf.keras.layers.LeakyReLU() default, used by the TF tutorial
DEFAULT_BN_EPS = 1e-5  # nn.BatchNorm2d default
_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _batch_norm_eps(blocks: list, source, network: str, notes: list[str]) -> float | None:
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


def _map_norm(mapped: dict, prefix: str, norm, conv, source, name: str) -> None:
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


@dataclass
class Converted:
    """Weights in our key layout, the config that fits them, and what was assumed on the way."""

    config: Any  # GeneratorConfig or DiscriminatorConfig
    state_dict: dict[str, torch.Tensor]
    layout_name: str  # human-readable: "official pix2pix", "TF tutorial (pickled notebook module)", ...
    notes: list[str] = field(default_factory=list)
    bn_eps: float | None = None  # a batch-norm epsilon other than PyTorch's default, to set on the instance


# --------------------------------------------------------------------------------------------------
# Shared helpers.


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
    saved by old PyTorch, lacks it). Raises naming the first foreign tensor that does not fit."""
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
        if ours in mapped:
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


def build(cls: type, config: Any, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """The network holding exactly `state` (a complete state dict that passed `fit_state`)."""
    model = skeleton(cls, config)
    model.load_state_dict(state, assign=True)
    return model


def _ordered_by_file(mapped: dict[str, tuple[str, torch.Tensor]], order: list[str]) -> dict[str, tuple[str, torch.Tensor]]:
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(mapped.items(), key=lambda item: rank.get(item[1][0], math.inf)))


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


# --------------------------------------------------------------------------------------------------
# The official implementation.


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
    return bool(state) and all(k.startswith("model.") and k.split(".")[1].isdigit() for k in state)


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


def is_our_discriminator(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(k.startswith("model.") and not k.split(".")[1].isdigit() for k in state)


def infer_our_discriminator_config(state: Mapping[str, torch.Tensor], source: str) -> DiscriminatorConfig:
    try:
        first = state["model.conv0.weight"]
    except KeyError:
        raise WeightsError(f"{source}: looks like our PatchGAN but has no model.conv0.weight") from None
    convs = [k for k in state if k.startswith("model.conv") and k.endswith(".weight")]
    return DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=len(convs) - 1,
                               norm="batch" if any(k.endswith("running_mean") for k in state) else "instance",
                               first_bias="model.conv0.bias" in state)


# --------------------------------------------------------------------------------------------------
# Layers in registration order: from a plain state dict or from a pickled module tree.


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


_PARAMLESS_OK = (nn.ReLU, nn.Tanh, nn.Identity)


def layers_from_module(root: Any, source: str, network: str = "pix2pix U-Net") -> list[Layer]:
    """Walk a pickled module tree (real torch.nn layers inside notebook placeholders) in
    registration order and list its leaf layers. Zero-padding layers are listed only for
    `network="PatchGAN"` (the TF tutorial's discriminator has them; its U-Net does not)."""
    layers: list[Layer] = []

    def tensors_of(obj: Any) -> dict[str, torch.Tensor]:
        found = {}
        for slot in ("_parameters", "_buffers"):
            for name, value in (vars(obj).get(slot) or {}).items():
                if isinstance(value, torch.Tensor):
                    found[name] = value
        return found

    def visit(obj: Any, path: str) -> None:
        children = vars(obj).get("_modules") or {}
        own = tensors_of(obj)
        label = path or "(root)"
        if children and own:
            raise WeightsError(f"{source}: module '{label}' ({class_name(obj)}) holds its own tensors "
                               f"('{path + '.' if path else ''}{next(iter(own))}'), which a {network} layer does not")
        if children:
            for name, child in children.items():
                if child is not None:
                    visit(child, f"{path}.{name}" if path else name)
            return
        if isinstance(obj, nn.ConvTranspose2d):
            layers.append(Layer(path, "deconv", own, obj))
        elif isinstance(obj, nn.Conv2d):
            layers.append(Layer(path, "conv", own, obj))
        elif isinstance(obj, nn.BatchNorm2d):
            layers.append(Layer(path, "norm", own, obj))
        elif isinstance(obj, nn.LeakyReLU):
            layers.append(Layer(path, "leaky", own, obj))
        elif isinstance(obj, nn.ZeroPad2d) and network == "PatchGAN" and not own:
            layers.append(Layer(path, "pad", own, obj))
        elif type(obj) is nn.Dropout:
            layers.append(Layer(path, "dropout", own, obj))
        elif isinstance(obj, _PARAMLESS_OK) and not own:
            layers.append(Layer(path, "act", own, obj))
        elif isinstance(obj, NotebookObject) and not own:
            return  # a notebook helper without tensors or children (e.g. an empty container)
        else:
            raise WeightsError(f"{source}: layer '{label}' ({class_name(obj)}) has no place in a {network}")

    visit(root, "")
    return layers


# --------------------------------------------------------------------------------------------------
# The TF-tutorial U-Net.


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
    # Attach each batch norm / dropout to the convolution registered just before it.
    blocks: list[dict[str, Any]] = []
    slopes: list[tuple[Layer, float]] = []
    for layer in layers:
        if layer.kind in ("conv", "deconv", "conv?"):
            blocks.append({"conv": layer, "norm": None, "dropout": None})
        elif layer.kind == "leaky":
            slopes.append((layer, float(layer.module.negative_slope)))
        elif layer.kind == "act":
            continue
        elif not blocks or blocks[-1][layer.kind] is not None:
            first = next(iter(layer.tensors), None)
            what = f"tensor '{layer.tensor_name(first)}'" if first else f"layer '{layer.name}'"
            raise WeightsError(f"{source}: {what} does not fit the TF-tutorial U-Net layout "
                               f"(a {'batch norm' if layer.kind == 'norm' else layer.kind} with no convolution of its own before it)")
        else:
            blocks[-1][layer.kind] = layer

    # The two convolutions without a batch norm are the first (encoder[0]) and the last (the tanh
    # head); a port may register the head anywhere, so place both by that, not by position.
    plain = [b for b in blocks if b["norm"] is None]
    if from_module:
        encoder = [b for b in blocks if b["conv"].kind == "conv"]
        decoder = [b for b in blocks if b["conv"].kind == "deconv"]
        if sum(b["norm"] is None for b in encoder) == 1:
            encoder = sorted(encoder, key=lambda b: b["norm"] is not None)
        if sum(b["norm"] is None for b in decoder) == 1:
            decoder = sorted(decoder, key=lambda b: b["norm"] is None)
    elif len(plain) == 2 and len(blocks) % 2 == 0 and all("weight" in b["conv"].tensors for b in plain):
        first, head = plain
        if head["conv"].tensors["weight"].shape[0] * 2 == first["conv"].tensors["weight"].shape[0]:
            first, head = head, first  # the head reads [upsampled, skip]: twice encoder[0]'s channels
        normed = [b for b in blocks if b["norm"] is not None]
        half = len(blocks) // 2 - 1
        encoder, decoder = [first] + normed[:half], normed[half:] + [head]
    else:
        half = len(blocks) // 2
        encoder, decoder = blocks[:half], blocks[half:]
    levels = len(encoder)
    if levels < 2:
        raise WeightsError(f"{source}: found {levels} down-sampling convolution(s); a U-Net needs at least 2")

    for block in blocks:
        _check_conv_settings(block["conv"], source)

    # Settings: LeakyReLU slope, dropout, batch-norm epsilon.
    if slopes:
        values = {round(s, 6) for _, s in slopes}
        if len(values) > 1:
            layer = next(l for l, s in slopes if round(s, 6) != round(slopes[0][1], 6))
            raise WeightsError(f"{source}: layer '{layer.name}' has LeakyReLU slope {layer.module.negative_slope}, "
                               f"others {slopes[0][1]}; our U-Net uses one slope")
        found = slopes[0][1]
        if leaky_slope is not None and leaky_slope != found:
            notes.append(f"LeakyReLU slope {leaky_slope} as asked, though the file's layers use {found}")
        else:
            leaky_slope = found
            notes.append(f"LeakyReLU slope {found} read from the file")
    elif leaky_slope is None:
        leaky_slope = KERAS_LEAKY_SLOPE
        notes.append(f"LeakyReLU slope not stored in the file: assumed {KERAS_LEAKY_SLOPE} (Keras default, as in the "
                     "TF tutorial); pass leaky_slope=... if the notebook used another")
    if from_module:
        flags = [b["dropout"] is not None for b in decoder]
        found_dropout = any(flags)
        wanted = [found_dropout and j < 3 and j < levels - 1 for j in range(len(decoder))]
        for j, (have, want) in enumerate(zip(flags, wanted)):
            if have != want:
                layer = decoder[j]["dropout"] or decoder[j]["conv"]
                raise WeightsError(f"{source}: layer '{layer.name}': the TF-tutorial U-Net has dropout after the "
                                   "three innermost up-sampling convolutions only")
        for block in decoder:
            if block["dropout"] is not None and abs(block["dropout"].module.p - 0.5) > 1e-9:
                raise WeightsError(f"{source}: layer '{block['dropout'].name}' drops with p={block['dropout'].module.p}; the U-Net uses 0.5")
        if dropout is not None and dropout != found_dropout:
            notes.append(f"dropout {'on' if dropout else 'off'} as asked, though the file says {'on' if found_dropout else 'off'}")
        else:
            dropout = found_dropout
    elif dropout is None:
        dropout = True
        notes.append("dropout is not stored in a state dict: assumed on (as in the TF tutorial)")
    bn_eps = _batch_norm_eps(blocks, source, "U-Net", notes)

    first = encoder[0]["conv"].tensors.get("weight")
    last = decoder[-1]["conv"].tensors.get("weight") if decoder else None
    if first is None or last is None:
        raise WeightsError(f"{source}: found no weights for the first or the last convolution")
    config = GeneratorConfig(in_channels=first.shape[1], out_channels=last.shape[1], ngf=first.shape[0],
                             levels=levels, norm="batch", dropout=dropout, layout="tf", leaky_slope=leaky_slope)
    name = "TF-tutorial U-Net"
    target = skeleton(UNetGenerator, config)

    # Map in the file's order so that the first misfit reported is the first in the file.
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    folded = False
    for position, block in enumerate(encoder + decoder):
        is_decoder = position >= levels
        level = (2 * levels - 1 - position) if is_decoder else position
        if is_decoder and level < 0:
            extra = block["conv"]
            raise WeightsError(f"{source}: tensor '{extra.tensor_name('weight')}' does not fit the {name} layout "
                               f"(more up-sampling layers than the {levels} down-sampling ones)")
        side = "decoder" if is_decoder else "encoder"
        conv, norm = block["conv"], block["norm"]
        wants_norm = level > 0  # every level but the outermost, on both sides
        for tname, tensor in conv.tensors.items():
            if tname == "weight":
                mapped[f"{side}.{level}.conv.weight"] = (conv.tensor_name(tname), tensor)
            elif tname == "bias" and is_decoder and level == 0:
                mapped["decoder.0.conv.bias"] = (conv.tensor_name(tname), tensor)
            elif tname == "bias" and norm is not None and wants_norm:
                folded = True  # exact: a per-channel shift before batch norm only moves its mean
            else:
                raise WeightsError(f"{source}: tensor '{conv.tensor_name(tname)}' does not fit the {name} layout "
                                   f"(no place for it in {side}[{level}])")
        if is_decoder and level == 0 and "bias" not in conv.tensors:
            mapped["decoder.0.conv.bias"] = (conv.tensor_name("bias"), torch.zeros(last.shape[1]))
        if norm is not None and not wants_norm:
            raise WeightsError(f"{source}: tensor '{norm.tensor_name(next(iter(norm.tensors)))}' does not fit the {name} "
                               f"layout ({side}[{level}] has no batch norm)")
        if norm is None and wants_norm:
            raise WeightsError(f"{source}: tensor '{conv.tensor_name('weight')}' does not fit the {name} layout "
                               f"({side}[{level}] needs a batch norm after its convolution, the file has none)")
        if norm is not None:
            _map_norm(mapped, f"{side}.{level}.norm", norm, conv, source, name)
    if len(decoder) < levels:
        raise WeightsError(f"{source}: no tensor in the file fits decoder[{levels - 1 - len(decoder)}] of the {name} layout "
                           f"({levels} down-sampling layers but {len(decoder)} up-sampling ones)")
    if skip_first:
        for level in range(levels - 1):  # every decoder level but the innermost reads a concatenation
            key = f"decoder.{level}.conv.weight"
            if key in mapped and mapped[key][1].shape[0] % 2 == 0:
                foreign, weight = mapped[key]
                half = weight.shape[0] // 2
                mapped[key] = (foreign, torch.cat([weight[half:], weight[:half]], dim=0))
        notes.append("skip connections read as concatenated [skip, upsampled] (skip_first)")
    if folded:
        notes.append("convolution biases before batch norms folded into the norms' running means (exact)")
    kind = "pickled notebook module" if from_module else "state dict"
    return Converted(config, fit_state(target, mapped, source, name), f"{name} ({kind})", notes, bn_eps)


# --------------------------------------------------------------------------------------------------
# The TF-tutorial PatchGAN.


def _uniform_slope(slopes: list[tuple[Layer, float]], leaky_slope: float | None, source: str, notes: list[str]) -> float:
    """The one LeakyReLU slope of a network: read from its layers if it has any, else the option,
    else the Keras default the TF tutorial uses."""
    if slopes:
        first = slopes[0][1]
        for layer, slope in slopes:
            if round(slope, 6) != round(first, 6):
                raise WeightsError(f"{source}: layer '{layer.name}' has LeakyReLU slope {slope}, others {first}; "
                                   "our networks use one slope")
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


def tf_discriminator(layers: list[Layer], source: str, *, from_module: bool, leaky_slope: float | None = None) -> Converted:
    """Fit a layer sequence onto our `PatchGANDiscriminator`: a first conv without norm (its bias,
    absent in the tutorial, is kept if present), convs each followed by a batch norm, and a last
    conv (the logits) without norm. The number of normed convs gives n_layers (3 in the tutorial)."""
    name = "TF-tutorial PatchGAN"
    notes: list[str] = []
    blocks: list[dict[str, Any]] = []
    slopes: list[tuple[Layer, float]] = []
    pending_pad: Layer | None = None

    def misfit(layer: Layer, why: str) -> WeightsError:
        first = next(iter(layer.tensors), None)
        what = f"tensor '{layer.tensor_name(first)}'" if first else f"layer '{layer.name}'"
        return WeightsError(f"{source}: {what} does not fit the {name} layout ({why})")

    for layer in layers:
        if layer.kind in ("conv", "conv?"):
            blocks.append({"conv": layer, "norm": None, "pad": pending_pad})
            pending_pad = None
        elif layer.kind == "pad":
            if pending_pad is not None:
                raise misfit(layer, "two zero-paddings in a row")
            pending_pad = layer
        elif layer.kind == "leaky":
            slopes.append((layer, float(layer.module.negative_slope)))
        elif layer.kind == "norm" and blocks and blocks[-1]["norm"] is None and pending_pad is None:
            blocks[-1]["norm"] = layer
        elif layer.kind == "act" and isinstance(layer.module, nn.Identity):
            continue
        elif layer.kind == "norm":
            raise misfit(layer, "a batch norm with no convolution of its own before it")
        else:
            raise misfit(layer, f"a PatchGAN has no {type(layer.module).__name__ if layer.module is not None else layer.kind} layer")
    if pending_pad is not None:
        raise misfit(pending_pad, "a zero-padding after the last convolution")
    if len(blocks) < 3:
        raise WeightsError(f"{source}: found {len(blocks)} convolution(s); the {name} needs at least 3")
    n_layers = len(blocks) - 2
    for position, block in enumerate(blocks):
        _check_patch_conv(block["conv"], block["pad"], 2 if position < n_layers else 1, source)
    slope = _uniform_slope(slopes, leaky_slope, source, notes)

    bn_eps = _batch_norm_eps(blocks, source, "PatchGAN", notes)

    first = blocks[0]["conv"].tensors.get("weight")
    if first is None:
        raise WeightsError(f"{source}: found no weight for the first convolution '{blocks[0]['conv'].name}'")
    first_bias = "bias" in blocks[0]["conv"].tensors
    config = DiscriminatorConfig(in_channels=first.shape[1], ndf=first.shape[0], n_layers=n_layers, norm="batch",
                                 first_bias=first_bias, leaky_slope=slope)
    target = skeleton(PatchGANDiscriminator, config)

    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    folded = False
    for position, block in enumerate(blocks):
        ours = "model.conv0" if position == 0 else "model.head" if position == len(blocks) - 1 else f"model.conv{position}"
        conv, norm = block["conv"], block["norm"]
        wants_norm = 0 < position < len(blocks) - 1
        if norm is not None and not wants_norm:
            raise misfit(norm, f"{ours} has no batch norm after it")
        if norm is None and wants_norm:
            raise WeightsError(f"{source}: tensor '{conv.tensor_name('weight')}' does not fit the {name} layout "
                               f"({ours} needs a batch norm after its convolution, the file has none)")
        for tname, tensor in conv.tensors.items():
            if tname == "weight" or (tname == "bias" and not wants_norm):
                mapped[f"{ours}.{tname}"] = (conv.tensor_name(tname), tensor)
            elif tname == "bias":
                folded = True  # exact: a per-channel shift before batch norm only moves its mean
            else:
                raise WeightsError(f"{source}: tensor '{conv.tensor_name(tname)}' does not fit the {name} layout")
        if ours == "model.head" and "bias" not in conv.tensors:
            mapped["model.head.bias"] = (conv.tensor_name("bias"), torch.zeros(1))
            notes.append("the last convolution has no bias: used zero")
        if norm is not None:
            _map_norm(mapped, ours.replace("conv", "norm"), norm, conv, source, name)
    if folded:
        notes.append("convolution biases before batch norms folded into the norms' running means (exact)")
    kind = "pickled notebook module" if from_module else "state dict"
    return Converted(config, fit_state(target, mapped, source, name), f"{name} ({kind})", notes, bn_eps)
