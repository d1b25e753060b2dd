"""A generator as ONNX, for runtimes without PyTorch, and a check that onnxruntime computes the same.

Users of the official implementation report ONNX exports that give wrong output
(junyanz/pytorch-CycleGAN-and-pix2pix#748), so every export from the command line is compared with
PyTorch's output on random inputs (`check_onnx`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from ..nets import UNetGenerator
from ..util.atomic import atomic_open
from ..util.errors import WeightsError


def export_onnx(generator: UNetGenerator, path: str | os.PathLike, *, image_size: int = 256) -> Path:
    """Write the generator (eval mode: running batch-norm statistics, no dropout) as ONNX, with a
    dynamic batch size; the image side is fixed at `image_size`. Written atomically."""
    path = Path(path)
    generator.check_size(image_size, image_size)
    was_training = generator.training
    device = next(generator.parameters()).device
    generator.eval().cpu()
    example = torch.zeros(1, generator.config.in_channels, image_size, image_size)
    try:
        with atomic_open(path, "wb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                generator, (example,), handle, dynamo=False, opset_version=17,
                input_names=["edges"], output_names=["photo"],
                dynamic_axes={"edges": {0: "batch"}, "photo": {0: "batch"}},
            )
    except ModuleNotFoundError as error:
        raise WeightsError(f"{path}: ONNX export needs the onnx package (pip install onnx onnxruntime): {error}") from None
    finally:
        generator.train(was_training).to(device)
    return path


def check_onnx(generator: UNetGenerator, path: str | os.PathLike, *, image_size: int = 256, batch: int = 2, seed: int = 0) -> float:
    """Max absolute difference between onnxruntime's and PyTorch's outputs on random inputs."""
    import onnxruntime  # lazy: optional dependency

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = torch.randn(batch, generator.config.in_channels, image_size, image_size,
                         generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    with torch.no_grad():
        expected = generator.eval()(inputs.to(next(generator.parameters()).device)).cpu()
    generator.train(was_training)
    got = torch.from_numpy(session.run(None, {"edges": inputs.numpy()})[0])
    return float((got - expected).abs().max())


__all__ = ["export_onnx", "check_onnx"]
