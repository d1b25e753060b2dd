"""The generator as ONNX for the browser: both test-time modes, small enough to download.

The static page (`apps/web_site.py`) runs pix2pix's generator (Isola et al. 2017, arXiv
1611.07004) in onnxruntime-web. Three changes to the plain export make that practical:

* **Train mode as a graph.** The paper runs the generator in train mode at test time. At batch
  size 1 train-mode batch norm is instance normalisation with the same affine parameters, and each
  dropout layer is a multiplication by a mask the page draws and feeds in (inputs `dropout_0`, ...,
  in the order the forward pass meets them; values 0 or 1 / (1 - p)). Eval mode is a second graph
  (running statistics, no dropout).
* **Weight-only int8.** Every convolution and transposed-convolution weight is stored as int8 with
  one scale per output channel (axis 0 of a Conv weight, axis 1 of a ConvTranspose one), behind a
  `DequantizeLinear` node; arithmetic stays in float, and the page has onnxruntime fold the
  dequantisation into float weights once, at load. The paper-size generator's 218 MB of fp32 weights
  become about a quarter of that. The two graphs keep their int8 weights in one shared external-data
  file, so the page downloads them once whichever mode it runs. (onnxruntime's own quantiser skips
  ConvTranspose; storing weights this way needs no quantiser. The transposed convolutions stay
  ConvTranspose: onnxruntime-web's WASM kernels ran the sub-pixel form, a 2x2 convolution plus a
  depth-to-space of slices, slower than them.)
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..nets import UNetGenerator
from ..util.atomic import atomic_open, atomic_write_text
from ..util.errors import WeightsError
from ..data.synthetic import make_pair
from ..nets.runner import NoiseSource
from .sketch import prepare_sketch, sample_sketches

WEB_MODES: tuple[str, ...] = ("train", "eval")
WEB_FORMAT = 1  # bumped whenever the page and the files it loads change in a way the other cannot read
MANIFEST = "model.json"
WEIGHTS_FILE = "generator.weights"  # the int8 convolution weights both graphs share
DROPOUT_P = 0.5


# --------------------------------------------------------------------------------------------------
# Layers of the exported graphs.


class ImageStatNorm(nn.Module):
    """Train-mode batch norm at batch size 1: instance normalisation with the norm's affine."""

    def __init__(self, norm: nn.BatchNorm2d) -> None:
        super().__init__()
        channels = norm.num_features
        weight = norm.weight.detach().float() if norm.weight is not None else torch.ones(channels)
        bias = norm.bias.detach().float() if norm.bias is not None else torch.zeros(channels)
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", bias.clone())
        self.eps = norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] * x.shape[-1] == 1:
            # One value per channel (the TF layout's innermost block): it equals its own mean, so
            # the norm gives its shift, as `nets.layers.SingleValueBatchNorm2d` does.
            return x * 0.0 + self.bias.view(1, -1, 1, 1)
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


@dataclass
class MaskFeed:
    """The dropout masks of one forward pass, taken in the order the layers are met."""

    masks: list[torch.Tensor] = field(default_factory=list)
    shapes: list[tuple[int, ...]] = field(default_factory=list)  # what each layer received (a dry run)


class MaskedDropout(nn.Module):
    """Dropout whose mask is a graph input: `x * mask`, the mask already scaled by 1 / (1 - p)."""

    def __init__(self, feed: MaskFeed) -> None:
        super().__init__()
        self.feed = feed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.feed.masks:  # the dry run that finds the shapes
            self.feed.shapes.append(tuple(x.shape))
            return x
        return x * self.feed.masks.pop(0)


class WebGraph(nn.Module):
    """The generator with its layers swapped for the browser's versions in one test-time mode;
    `forward(edges, *masks)` (masks in train mode only)."""

    def __init__(self, generator: UNetGenerator, mode: str) -> None:
        super().__init__()
        self.net = copy.deepcopy(generator).cpu().float().eval()
        self.feed = MaskFeed()
        self.mode = mode
        _swap_layers(self.net, mode, self.feed)

    def forward(self, edges: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
        self.feed.masks = list(masks)
        return self.net(edges)

    def mask_shapes(self, image_size: int) -> list[tuple[int, ...]]:
        """The shape of every dropout mask, in the order the graph takes them."""
        self.feed.shapes = []
        with torch.no_grad():
            self(torch.zeros(1, self.net.config.in_channels, image_size, image_size))
        return list(self.feed.shapes)


def _swap_layers(module: nn.Module, mode: str, feed: MaskFeed) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and mode == "train":
            setattr(module, name, ImageStatNorm(child))
        elif isinstance(child, nn.Dropout):
            setattr(module, name, MaskedDropout(feed) if mode == "train" else nn.Identity())
        else:
            _swap_layers(child, mode, feed)


# --------------------------------------------------------------------------------------------------
# Export.


@dataclass(frozen=True)
class WebModel:
    """What `export_web_model` wrote: the manifest and the files it names, in one folder."""

    folder: Path
    manifest: dict

    def graph(self, mode: str) -> Path:
        return self.folder / self.manifest["modes"][mode]["file"]

    def mask_shapes(self, mode: str) -> list[tuple[int, ...]]:
        return [tuple(mask["shape"]) for mask in self.manifest["modes"][mode]["masks"]]

    def files(self) -> list[Path]:
        return [self.folder / MANIFEST, self.folder / self.manifest["weights"]] + [self.graph(m) for m in WEB_MODES]


def export_web_model(
    generator: UNetGenerator,
    folder: str | os.PathLike,
    *,
    image_size: int | None = None,
    quantize: bool = True,
    source: str = "",
) -> WebModel:
    """Write `generator_train.onnx`, `generator_eval.onnx`, their shared `generator.weights` and
    `model.json` (the manifest the page reads) into `folder`.

    `quantize=False` keeps fp32 weights (still shared and external): the exact reference the int8
    files are measured against. Raises WeightsError for a generator that cannot be exported.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = image_size or generator.config.multiple
    try:
        generator.check_size(size, size)
    except Exception as error:
        raise WeightsError(f"cannot export this generator for the page: {error}") from None
    graphs, modes = {}, {}
    for mode in WEB_MODES:
        graph = WebGraph(generator, mode)
        shapes = graph.mask_shapes(size) if mode == "train" else []
        graphs[mode] = _to_onnx(graph, size, shapes)
        if quantize:
            _quantize_weights(graphs[mode])
        modes[mode] = {"file": f"generator_{mode}.onnx",
                       "masks": [{"name": f"dropout_{i}", "shape": list(s)} for i, s in enumerate(shapes)]}
    _share_weights(graphs, folder / WEIGHTS_FILE)
    for mode, model in graphs.items():
        with atomic_open(folder / modes[mode]["file"], "wb") as handle:
            handle.write(model.SerializeToString())
    manifest = {
        "format": WEB_FORMAT,
        "image_size": size,
        "in_channels": generator.config.in_channels,
        "out_channels": generator.config.out_channels,
        "weights": WEIGHTS_FILE,
        "weights_bytes": (folder / WEIGHTS_FILE).stat().st_size,
        "quantized": "int8 per output channel" if quantize else "none",
        "dropout_p": DROPOUT_P,
        "default_mode": "train",
        "modes": modes,
        "config": dataclasses.asdict(generator.config),
        "source": source,
    }
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1))
    return WebModel(folder, manifest)


def _to_onnx(graph: WebGraph, size: int, mask_shapes: Sequence[tuple[int, ...]]):
    """The graph as an onnx ModelProto (opset 17, batch 1), through the TorchScript exporter."""
    try:
        import onnx  # lazy: optional dependency
    except ModuleNotFoundError as error:
        raise WeightsError(f"the web model needs the onnx package (pip install onnx onnxruntime): {error}") from None
    edges = torch.zeros(1, graph.net.config.in_channels, size, size)
    masks = tuple(torch.ones(shape) for shape in mask_shapes)
    names = ["edges"] + [f"dropout_{i}" for i in range(len(masks))]
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            # No constant folding: it would fold eval-mode batch norm into the convolutions, and the
            # two graphs could no longer share their convolution weights.
            torch.onnx.export(graph, (edges, *masks), buffer, dynamo=False, opset_version=17,
                              input_names=names, output_names=["photo"], do_constant_folding=False)
    except Exception as error:  # an op or shape the exporter cannot write
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise WeightsError(f"cannot export this generator for the page ({graph.mode} mode): "
                           f"{type(error).__name__}: {first_line}") from None
    return onnx.load_from_string(buffer.getvalue())


def quantize_per_channel(weight: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per output channel (along `axis`): (int8 values, float32
    scales), weight ~= values * scales broadcast along `axis`."""
    moved = np.moveaxis(weight, axis, 0)
    flat = moved.reshape(moved.shape[0], -1).astype(np.float64)
    peak = np.abs(flat).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0)
    values = np.clip(np.rint(flat / scales[:, None]), -127, 127).astype(np.int8)
    return np.moveaxis(values.reshape(moved.shape), 0, axis), scales.astype(np.float32)


# The output-channel axis of each weight kind: Conv (out, in, kh, kw), ConvTranspose (in, out, kh, kw).
_OUTPUT_AXIS = {"Conv": 0, "ConvTranspose": 1}


def _quantize_weights(model) -> None:
    """Replace every (transposed) convolution's fp32 weight initializer by int8 behind a DequantizeLinear."""
    from onnx import helper, numpy_helper  # lazy: optional dependency

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes = []
    for node in graph.node:
        axis = _OUTPUT_AXIS.get(node.op_type)
        weight = initializers.get(node.input[1]) if axis is not None else None
        if weight is not None and weight.data_type == 1:  # FLOAT
            values, scales = quantize_per_channel(numpy_helper.to_array(weight), axis)
            name = weight.name
            graph.initializer.remove(weight)
            del initializers[name]
            graph.initializer.extend([
                numpy_helper.from_array(values, f"{name}_int8"),
                numpy_helper.from_array(scales, f"{name}_scale"),
                numpy_helper.from_array(np.zeros(len(scales), np.int8), f"{name}_zero"),
            ])
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"],
                                          [name], name=f"{name}_dequantize", axis=axis))
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _share_weights(graphs: dict, path: Path, threshold: int = 1024) -> None:
    """Move every initializer of at least `threshold` bytes into one external-data file; tensors with
    the same bytes in several graphs (the convolution weights) are stored once."""
    from onnx import TensorProto  # lazy: optional dependency

    offsets: dict[str, tuple[int, int]] = {}
    with atomic_open(path, "wb") as out:
        position = 0
        for model in graphs.values():
            for tensor in model.graph.initializer:
                data = tensor.raw_data
                if len(data) < threshold:
                    continue
                key = hashlib.sha256(data).hexdigest() + str(tensor.data_type)
                if key not in offsets:
                    padding = (-position) % 64  # aligned starts
                    out.write(b"\0" * padding)
                    position += padding
                    out.write(data)
                    offsets[key] = (position, len(data))
                    position += len(data)
                offset, length = offsets[key]
                tensor.ClearField("raw_data")
                tensor.data_location = TensorProto.EXTERNAL
                del tensor.external_data[:]
                for k, v in (("location", path.name), ("offset", str(offset)), ("length", str(length))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = k, v


def quality_inputs(size: int, synthetic: int = 3) -> dict[str, torch.Tensor]:
    """What the int8 model is checked on: the bundled sketches, cleaned as `prepare_sketch` cleans
    them, and synthetic edge maps, as (1, 3, size, size) inputs in [-1, 1]."""
    inputs = {path.name: prepare_sketch(path, size=size)[0] for path in sample_sketches()}
    for index in range(synthetic):
        edges = np.asarray(make_pair(seed=7, index=index, size=size).edges, dtype=np.float32)
        inputs[f"synthetic_{index}"] = torch.from_numpy(edges.transpose(2, 0, 1)[None] / 127.5 - 1.0)
    return inputs


def run_web_model(model: WebModel, mode: str, edges: torch.Tensor, masks: Sequence[np.ndarray] = ()) -> torch.Tensor:
    """onnxruntime's output of one graph, loaded as the page loads it (DequantizeLinear folded at load)."""
    import onnxruntime  # lazy: optional dependency

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    session = onnxruntime.InferenceSession(str(model.graph(mode)), options, providers=["CPUExecutionProvider"])
    feeds = {"edges": edges.numpy(), **{f"dropout_{i}": np.asarray(m, np.float32) for i, m in enumerate(masks)}}
    return torch.from_numpy(session.run(None, feeds)[0])


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two images in [-1, 1], on the [0, 1] scale."""
    mse = float(((a.double() - b.double()) / 2).pow(2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def check_quality(generator: UNetGenerator, model: WebModel, seed: int = 0) -> dict[str, dict[str, float]]:
    """PSNR in dB of the written model against PyTorch's fp32 output of the same input, per mode and
    per input (`quality_inputs`); train mode with the same dropout masks fed to both."""
    scores: dict[str, dict[str, float]] = {}
    inputs = quality_inputs(model.manifest["image_size"])
    for mode in WEB_MODES:
        masks = draw_masks(model.mask_shapes(mode), seed) if mode == "train" else []
        scores[mode] = {name: psnr_db(run_web_model(model, mode, edges, masks),
                                      reference_output(generator, edges, mode, masks).clamp(-1, 1))
                        for name, edges in inputs.items()}
    return scores


def draw_masks(shapes: Sequence[Sequence[int]], seed: int, p: float = DROPOUT_P) -> list[np.ndarray]:
    """Dropout masks for the train graph: each element 0 with probability p, else 1 / (1 - p), drawn
    as the PyTorch runners draw them (`nets.runner.NoiseSource`), so a seed gives the same shoe."""
    source = NoiseSource([seed])
    return [source.mask(torch.empty(tuple(shape)), p).numpy() for shape in shapes]


def reference_output(generator: UNetGenerator, edges: torch.Tensor, mode: str,
                     masks: Sequence[np.ndarray] = ()) -> torch.Tensor:
    """PyTorch's fp32 output for one (1, C, H, W) input in `mode`, with the given dropout masks in
    train mode: the generator's own layers (train-mode batch norm on this one image, dropout layers
    multiplying by the masks), no export-time rewriting."""
    net = copy.deepcopy(generator).cpu().float()
    net.train(mode == "train")
    queue = [torch.tensor(np.asarray(m, dtype=np.float32)) for m in masks]
    hooks = []
    for layer in net.modules():
        if isinstance(layer, nn.Dropout) and mode == "train":
            hooks.append(layer.register_forward_hook(lambda _m, inputs, _out: inputs[0] * queue.pop(0)))
        elif isinstance(layer, nn.BatchNorm2d) and mode == "train":
            layer.track_running_stats = False  # statistics of this image; the copy's running stats stay
            layer.running_mean = layer.running_var = None
    try:
        with torch.no_grad():
            return net(edges.float().cpu())
    finally:
        for hook in hooks:
            hook.remove()
        if queue:
            raise ValueError(f"{len(queue)} dropout masks left over: the mask count does not match the generator")


__all__ = ["WEB_MODES", "WEB_FORMAT", "MANIFEST", "WebModel", "export_web_model", "draw_masks",
           "reference_output", "quantize_per_channel", "check_quality", "quality_inputs",
           "run_web_model"]
