"""Inputs shared by the inference tests and the GPU tests: a tiny U-Net with trained-looking batch
norms, edge-map-like batches, and a drawn sketch."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw
from torch import nn

from edges2shoes_utils.nets import UNetGenerator


def tiny_generator(seed: int = 0, **overrides) -> UNetGenerator:
    """A tiny U-Net whose batch norms carry non-trivial running statistics (as a trained one's)."""
    torch.manual_seed(seed)
    generator = UNetGenerator(ngf=8, levels=6, **overrides)
    with torch.no_grad():
        for m in generator.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.2, 0.2)
    return generator


def edge_batch(n: int = 3, size: int = 64, seed: int = 1) -> torch.Tensor:
    """Mostly white images with dark specks, in [-1, 1], like edge maps."""
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(n, 1, size, size, generator=g) < 0.1, -1.0, 1.0).expand(n, 3, size, size).contiguous()


def drawn_sketch(size: int = 200) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    outline = [(20, 140), (60, 90), (120, 80), (150, 40), (185, 45), (180, 150), (20, 150), (20, 140)]
    draw.line(outline, fill="black", width=3)
    return image
